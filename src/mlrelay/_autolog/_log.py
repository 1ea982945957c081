"""What autologging logs, through the fluent API, in MLflow's shapes.

Params and tags are stringified with ``str()`` and, as MLflow's autologging does, cut to
MLflow's limits (keys 250 characters, param values 6,000, tag values 8,000) rather than
refused: an autologged value is not the user's to shorten, and refusing one would drop the
whole call. Keys MLflow would refuse are left out, with one warning. Everything here runs
inside :func:`mlrelay._autolog._core.guard`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from mlrelay import fluent
from mlrelay._errors import ValidationError
from mlrelay._validation import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    validate_key,
)

from ._core import warn_once

__all__ = [
    "INPUT_EXAMPLE_ROWS",
    "log_artifact_file",
    "log_dataset",
    "log_metrics",
    "log_model",
    "log_params",
    "model_signature",
    "numpy_dataset",
    "set_tags",
]

INPUT_EXAMPLE_ROWS = 5  # MLflow's INPUT_EXAMPLE_SAMPLE_ROWS


def _key(integration: str, key: Any) -> str | None:
    name = str(key)[:MAX_KEY_LENGTH]
    try:
        return validate_key(name)
    except ValidationError as exc:
        warn_once(integration, f"{name!r} was not logged: {exc}")
        return None


def _clean(integration: str, values: Mapping[str, Any], limit: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        name = _key(integration, key)
        if name is not None:
            out[name] = str(value)[:limit]
    return out


def log_params(integration: str, params: Mapping[str, Any]) -> None:
    """Log params to the active run, stringified and cut as MLflow's autologging does."""
    fluent.log_params(_clean(integration, params, MAX_PARAM_VALUE_LENGTH))


def set_tags(integration: str, tags: Mapping[str, Any]) -> None:
    """Set tags on the active run, stringified and cut as MLflow's autologging does."""
    fluent.set_tags(_clean(integration, tags, MAX_TAG_VALUE_LENGTH))


def log_metrics(
    integration: str,
    metrics: Mapping[str, Any],
    step: int | None = None,
    model_id: str | None = None,
) -> dict[str, float]:
    """Log metrics to the active run (linked to the logged model ``model_id``, if given);
    returns what was logged (as floats)."""
    values: dict[str, float] = {}
    for key, value in metrics.items():
        name = _key(integration, key)
        if name is not None:
            values[name] = float(value)
    fluent.log_metrics(values, step=step, model_id=model_id)
    return values


def log_artifact_file(name: str, write: Any, artifact_path: str | None = None) -> None:
    """Write a file named ``name`` with ``write(path)`` and log it as an artifact."""
    with tempfile.TemporaryDirectory(prefix="mlrelay-autolog-") as tmp:
        target = Path(tmp) / name
        write(target)
        fluent.log_artifact(target, artifact_path)


def log_json(name: str, data: Any, *, indent: int | None = None) -> None:
    """Log ``data`` as the JSON artifact ``name`` (MLflow's ``json.dump`` layout)."""
    log_artifact_file(name, lambda p: p.write_text(json.dumps(data, indent=indent)))


def numpy_dataset(features: Any, targets: Any = None, name: str | None = None) -> Any:
    """MLflow's ``from_numpy(features, targets)`` record: the digest, schema and profile
    cover the targets too (mlrelay's ``log_input`` takes one array)."""
    import numpy as np

    from mlrelay._formats.datasets import code_source, numpy_digest
    from mlrelay._formats.models import tensor_dtype
    from mlrelay._protocol.entities import Dataset

    def spec(array: Any) -> str:
        shape = [-1, *array.shape[1:]]
        dtype = tensor_dtype(array.dtype)
        return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}])

    x = np.asarray(features)
    y = None if targets is None else np.asarray(targets)
    profile: dict[str, Any] = {
        "features_shape": list(x.shape),
        "features_size": int(x.size),
        "features_nbytes": int(x.nbytes),
    }
    if y is not None:
        profile.update(
            targets_shape=list(y.shape), targets_size=int(y.size), targets_nbytes=int(y.nbytes)
        )
    schema = {"features": spec(x), "targets": spec(y) if y is not None else None}
    return Dataset(
        name=name or "dataset",
        digest=numpy_digest(x, y),
        source_type="code",
        source=code_source(),
        schema=json.dumps({"mlflow_tensorspec": schema}),
        profile=json.dumps(profile),
    )


def dataset_of(features: Any, targets: Any = None, name: str | None = None) -> Any:
    """The dataset MLflow's autologging records for training data: a DataFrame as
    ``from_pandas`` (no targets), an array or a sparse matrix as ``from_numpy``; None for
    anything else."""
    module = type(features).__module__
    if module.startswith("pandas") and hasattr(features, "columns"):
        return features
    if hasattr(features, "toarray") and module.startswith("scipy"):
        features = features.toarray()
        if hasattr(targets, "toarray"):
            targets = targets.toarray()
    elif module != "numpy":
        return None
    return numpy_dataset(features, targets, name)


def log_dataset(
    features: Any, targets: Any = None, *, context: str = "train", name: str | None = None
) -> Any:
    """Record the training (or evaluation) data as MLflow's autologging does; returns what
    was logged, or None for data MLflow does not record either."""
    dataset = dataset_of(features, targets, name)
    if dataset is not None:
        fluent.log_input(dataset, context, name=name)
    return dataset


def log_model(
    model: Any,
    name: str,
    *,
    flavor: str,
    example: Any,
    log_input_examples: bool,
    log_model_signatures: bool,
    registered_model_name: str | None = None,
    predict: Any = None,
    options: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    link: Literal["step", "all", "none"] = "step",
) -> str | None:
    """Log ``model`` in MLflow's ``flavor`` (``"sklearn"``, ``"xgboost"``, ``"lightgbm"``,
    written with ``options``: ``serialization_format``, ``model_format``) with the signature
    MLflow's autologging gives it and, when asked, the example (the first rows of the
    training data) as its input example; ``params`` are the logged model's own params (on
    MLflow 3, under the run's), as MLflow's autologging passes them; ``link`` says
    which of the run's metric points the model is linked to (``"all"`` steps: MLflow's
    boosting autologs log each iteration's points with the model's id).

    The signature is ``infer_signature(example, predict(example))``, as MLflow's autologging
    computes it: a prediction that is an array is a tensor output (``float64``, ``int64``,
    ...), not a column. ``predict`` replaces ``model.predict`` (an XGBoost booster wants a
    DMatrix); a model with ``transform`` and no ``predict`` is described by its transform.
    When the prediction fails, the model is logged without a signature (one warning).

    Returns:
        The MLflow 3 logged model's id (None on MLflow 2 and offline)."""
    from mlrelay._fluent_models import flavor_spec, log_spec

    signature: Any = False
    if log_model_signatures and example is not None:
        signature = model_signature(model, example, predict, integration=flavor) or False
    info = log_spec(
        flavor_spec(flavor, model, options),
        name,
        signature=signature,
        input_example=example if log_input_examples else None,
        registered_model_name=registered_model_name,
        params=params,
        link=link,
    )
    return info.model_id


def model_signature(
    model: Any, example: Any, predict: Any = None, *, integration: str | None = None
) -> Any:
    """``infer_signature(example, predict(copy of example))`` as MLflow's autologging
    infers it, or None (with one warning) when the model cannot predict on the example."""
    import copy

    from mlrelay._formats.schema import infer_signature

    call = predict
    if call is None:
        call = getattr(model, "predict", None) or getattr(model, "transform", None)
    if call is None:
        return None
    try:
        output = call(copy.deepcopy(example))
        return infer_signature(example, output)
    except Exception as exc:
        what = f"the model signature was not inferred ({type(exc).__name__}: {exc})"
        warn_once(integration or "autolog", what)
        return None
