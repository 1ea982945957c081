"""An MLflow-compatible tracking server for tests, with fault injection (work in progress)."""

__all__: list[str] = []
