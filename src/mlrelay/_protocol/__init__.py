"""The MLflow wire protocol: pydantic entities, request/response messages, the endpoint table.

No I/O and no global state live here.
"""

from .entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunTag,
)
from .messages import ENDPOINTS, Endpoint

__all__ = [
    "ENDPOINTS",
    "Dataset",
    "DatasetInput",
    "Endpoint",
    "Experiment",
    "ExperimentTag",
    "InputTag",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunTag",
]
