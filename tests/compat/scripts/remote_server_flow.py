"""The remote-server flow with ``MlflowClient``, in the spirit of MLflow's remote_server
example and the tracking-API tutorial: create an experiment and runs by hand, log params,
metrics with steps and batches, tags, a folder of artifacts and a single file, nest a child
run, and terminate the runs.

The tracking server comes from MLFLOW_TRACKING_URI; the experiment's name ends with
COMPAT_SUFFIX, so that two runs of this script can be told apart.
"""

import os
import tempfile
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

if __name__ == "__main__":
    client = MlflowClient()
    experiment_id = client.create_experiment(
        "remote-flow" + os.environ.get("COMPAT_SUFFIX", ""), tags={"project": "compat"}
    )
    run = client.create_run(experiment_id, run_name="remote-parent", tags={"team": "compat"})
    run_id = run.info.run_id

    client.log_param(run_id, "learning_rate", 0.01)
    client.log_param(run_id, "optimizer", "adam")
    for step in range(5):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("accuracy", 0.5 + 0.1 * i, now + i, i) for i in range(3)],
        params=[Param("epochs", "3"), Param("batch_size", "32")],
        tags=[RunTag("stage", "batch")],
    )
    client.set_tag(run_id, "release.version", "2.2.0")

    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "outputs")
        os.makedirs(os.path.join(folder, "plots"))
        with open(os.path.join(folder, "summary.txt"), "w") as f:
            f.write("loss went down\n")
        with open(os.path.join(folder, "plots", "loss.csv"), "w") as f:
            f.write("step,loss\n" + "".join(f"{s},{1.0 / (s + 1)}\n" for s in range(5)))
        client.log_artifacts(run_id, folder, artifact_path="outputs")
        single = os.path.join(tmp, "config.yaml")
        with open(single, "w") as f:
            f.write("optimizer: adam\nlearning_rate: 0.01\n")
        client.log_artifact(run_id, single)
        client.log_text(run_id, "hello from the client\n", "notes/hello.txt")
        client.log_dict(run_id, {"layers": [64, 32]}, "model_config.json")

    child = client.create_run(
        experiment_id, run_name="remote-child", tags={"mlflow.parentRunId": run_id}
    )
    client.log_metric(child.info.run_id, "child_metric", 42.0)
    client.set_terminated(child.info.run_id)
    client.set_terminated(run_id, status="FINISHED")

    failed = client.create_run(experiment_id, run_name="remote-failed")
    client.log_param(failed.info.run_id, "attempt", 1)
    client.set_terminated(failed.info.run_id, status="FAILED")
