"""DagsHub-style set-up: one init call, then MLflow's usual calls.

    DAGSHUB_USER_TOKEN=<token> python examples/dagshub_init.py <owner> <repo> [--username U]

init() builds https://dagshub.com/<owner>/<repo>.mlflow (DAGSHUB_CLIENT_HOST for a
self-hosted DagsHub), checks it once, never opens a browser, never creates a repository
and never writes os.environ. In the test suite it runs against the bundled mock server
posing as DagsHub.
"""

from __future__ import annotations

import argparse

import mlrelay


def main() -> None:
    """Initialise for a repository and log a short run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("owner")
    parser.add_argument("repo")
    parser.add_argument("--username", help="DagsHub user name (Basic user:token)")
    args = parser.parse_args()
    uri = mlrelay.init(args.owner, args.repo, username=args.username)
    with mlrelay.start_run(run_name="from-init") as run:
        mlrelay.log_params({"lr": 0.01, "batch_size": 64})
        for epoch in range(10):
            mlrelay.log_metric("loss", 1 / (epoch + 1), step=epoch)
    print(f"logged run {run.run_id} to {uri}; delivered={mlrelay.flush(60)}")


if __name__ == "__main__":
    main()
