"""MLflow-style scripts, and the runner that compares what MLflow and mlrelay log."""
