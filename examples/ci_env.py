"""A CI job configured only through environment variables; nothing in the code names a server.

    MLFLOW_TRACKING_URI=https://mlflow.example.com \
    MLFLOW_TRACKING_USERNAME=ci-bot MLFLOW_TRACKING_PASSWORD=$TOKEN \
    MLFLOW_EXPERIMENT_NAME=nightly-benchmarks \
    python examples/ci_env.py

MLFLOW_EXPERIMENT_NAME picks the experiment; a `.env` file in the working directory or a
token stored with `mlrelay login` work the same way.
"""

from __future__ import annotations

import os
import time

import mlrelay


def main() -> None:
    """Log one benchmark run tagged with the CI job's identity."""
    tags = {"ci.job": os.environ.get("CI_JOB_NAME", "local"), "ci.commit": "abc1234"}
    with mlrelay.start_run(run_name="nightly", tags=tags) as run:
        for step in range(100):
            mlrelay.log_metric("throughput", 1000 + step, step=step)
        mlrelay.log_param("dataset", "synthetic-100")
    delivered = mlrelay.flush(60)
    print(f"run {run.run_id} logged at {time.strftime('%H:%M:%S')}, delivered={delivered}")


if __name__ == "__main__":
    main()
