"""The whole story: train, log everything, register, promote, load the champion, predict.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python examples/end_to_end.py

A classifier is trained on scikit-learn's wine data; its params, metrics, a confusion-matrix
figure, the training data and the model are logged. The model is registered, promoted to
Staging then Production, given the alias ``champion``, then fetched back by
``models:/wine-classifier@champion`` and used to predict. (MLflow's own
``mlflow.pyfunc.load_model("models:/wine-classifier@champion")`` loads the same model.)
"""

from __future__ import annotations

import mlrelay

MODEL_NAME = "wine-classifier"


def main() -> None:
    """Run the story and print what the champion predicts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    data = load_wine(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0
    )
    params = {"C": 0.5, "max_iter": 2000}

    mlrelay.set_experiment("end-to-end")
    with mlrelay.start_run(run_name="wine-logreg"):
        mlrelay.log_params(params)
        mlrelay.log_input(x_train, context="training", name="wine-train")
        model = LogisticRegression(**params).fit(x_train, y_train)
        predicted = model.predict(x_test)
        mlrelay.log_metrics(
            {
                "accuracy": accuracy_score(y_test, predicted),
                "f1_macro": f1_score(y_test, predicted, average="macro"),
            }
        )
        figure, axes = plt.subplots(figsize=(4, 4))
        ConfusionMatrixDisplay.from_predictions(y_test, predicted, ax=axes)
        mlrelay.log_figure(figure, "plots/confusion_matrix.png")
        plt.close(figure)
        info = mlrelay.log_model(
            model, "model", input_example=x_test[:3], registered_model_name=MODEL_NAME
        )

    client = mlrelay.Client()
    version = info.registered_model_version  # the version number, as MLflow's ModelInfo
    client.transition_model_version_stage(MODEL_NAME, version, "Staging")
    client.transition_model_version_stage(
        MODEL_NAME, version, "Production", archive_existing_versions=True
    )
    client.set_registered_model_alias(MODEL_NAME, "champion", version)

    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    loaded = mlrelay.sklearn.load_model(f"models:/{MODEL_NAME}@champion")  # the estimator
    same = (loaded.predict(x_test) == predicted).all()
    print(
        f"registered {MODEL_NAME} v{champion.version} "
        f"({client.get_model_version(MODEL_NAME, champion.version).current_stage}, "
        f"alias champion); champion predicts {list(loaded.predict(x_test[:5]))}; "
        f"same as trained: {bool(same)}"
    )
    client.close()


if __name__ == "__main__":
    main()
