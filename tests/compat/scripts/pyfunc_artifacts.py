"""A custom ``mlflow.pyfunc.PythonModel`` that reads its coefficients from an artifact, in
the spirit of MLflow's custom-model tutorial: log it with ``artifacts=``, load it back with
``mlflow.pyfunc.load_model`` and log what it predicts.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME.
"""

import json
import os
import tempfile

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel


class LinearScorer(PythonModel):
    """score = bias + sum(weight * column), the weights read from a JSON artifact."""

    def load_context(self, context):
        with open(context.artifacts["weights"]) as f:
            spec = json.load(f)
        self.bias = spec["bias"]
        self.weights = spec["weights"]

    def predict(self, context, model_input, params=None):
        score = pd.Series(self.bias, index=model_input.index, dtype="float64")
        for column, weight in self.weights.items():
            score = score + weight * model_input[column]
        return score


def prediction_input():
    return pd.DataFrame({"x1": [0.5, 1.0, 2.0, -3.0], "x2": [10.0, 0.0, -1.5, 4.25]})


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        weights_path = os.path.join(tmp, "weights.json")
        with open(weights_path, "w") as f:
            json.dump({"bias": 0.25, "weights": {"x1": 2.0, "x2": -0.5}}, f)
        notes_path = os.path.join(tmp, "notes.txt")
        with open(notes_path, "w") as f:
            f.write("a linear scorer with fixed weights\n")

        example = prediction_input()
        with mlflow.start_run(run_name="linear-scorer"):
            mlflow.log_param("bias", 0.25)
            model_info = mlflow.pyfunc.log_model(
                name="scorer",
                python_model=LinearScorer(),
                artifacts={"weights": weights_path, "notes": notes_path},
                signature=infer_signature(
                    example, 0.25 + 2.0 * example["x1"] - 0.5 * example["x2"]
                ),
                input_example=example,
            )
            loaded = mlflow.pyfunc.load_model(model_info.model_uri)
            predictions = loaded.predict(example)
            for step, value in enumerate(predictions):
                mlflow.log_metric("prediction", float(value), step=step)
