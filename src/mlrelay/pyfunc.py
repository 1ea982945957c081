"""``mlrelay.pyfunc``: MLflow's ``mlflow.pyfunc`` for classic ML, without MLflow.

- :func:`load_model` loads any model mlrelay or MLflow logged with a flavor mlrelay reads
  (sklearn, xgboost, lightgbm, onnx, MLflow's and mlrelay's ``PythonModel``, a
  ``loader_module`` of your own) as a :class:`PyFuncModel`, whose ``predict`` takes a
  DataFrame, a numpy array, a dict or a list, shaped by the model's signature as MLflow does;
- :class:`PythonModel` / :class:`PythonModelContext` and :func:`log_model` /
  :func:`save_model` write custom models in MLflow's own format (``loader_module:
  mlflow.pyfunc.model``): MLflow's ``mlflow.pyfunc.load_model`` loads them too (with mlrelay
  installed, as their requirements say); ``artifacts=`` are copied into the model and given
  back to ``load_context`` as local paths.

>>> class AddN(mlrelay.pyfunc.PythonModel):  # doctest: +SKIP
...     def __init__(self, n):
...         self.n = n
...     def predict(self, context, model_input, params=None):
...         return model_input + self.n
>>> info = mlrelay.pyfunc.log_model(name="add_n", python_model=AddN(5))  # doctest: +SKIP
>>> mlrelay.pyfunc.load_model(info.model_uri).predict(pd.DataFrame({"x": [1]}))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlrelay._errors import ValidationError
from mlrelay._fluent_models import (
    flavor_spec,
    local_artifacts,
    local_model,
    log_spec,
    model_name,
    save_spec,
    unsupported,
)
from mlrelay._formats.flavors import ModelSpec, flavor_conf, load_pyfunc, read_mlmodel
from mlrelay._formats.pyfunc import PythonModel, PythonModelContext, PythonModelWrapper
from mlrelay._formats.schema import ModelSignature, enforce
from mlrelay._registry import ModelInfo
from mlrelay.models.model import Model

__all__ = [
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "get_model_dependencies",
    "load_model",
    "log_model",
    "save_model",
]


class PyFuncModel:
    """A loaded model with MLflow's pyfunc interface: ``predict(data, params=None)``.

    ``data`` is a pandas DataFrame, a numpy array, a dict or a list (or a scalar); with a
    signature, it is shaped as the signature describes before the model sees it (columns in
    the signature's order, tensors of its dtype; see
    :func:`mlrelay._formats.schema.enforce`), as MLflow does.
    """

    def __init__(
        self,
        model_meta: Model,
        model_impl: Any,
        predict_fn: str = "predict",
        predict_stream_fn: str | None = None,  # noqa: ARG002 - no streaming models here
        model_id: str | None = None,
    ) -> None:
        self._model_meta = model_meta
        self._model_impl = model_impl
        self._predict_fn = predict_fn
        self._model_id = model_id or model_meta.model_id

    @property
    def metadata(self) -> Model:
        """The model's MLmodel content."""
        return self._model_meta

    @property
    def model_id(self) -> str | None:
        """MLflow 3's logged-model id, when the model has one."""
        return self._model_id

    @property
    def loader_module(self) -> str | None:
        """The ``loader_module`` of the model's python_function flavor."""
        conf = self._model_meta.flavors.get("python_function") or {}
        module = conf.get("loader_module")
        return str(module) if module else None

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The model's prediction for ``data`` (see the class docstring).

        Raises:
            ValidationError: the input does not fit the model's signature.
        """
        data = enforce(data, self._model_meta.get_input_schema())
        predict = getattr(self._model_impl, self._predict_fn)
        if params is not None and "params" in inspect.signature(predict).parameters:
            return predict(data, params=dict(params))
        return predict(data)

    def unwrap_python_model(self) -> Any:
        """The :class:`PythonModel` object behind a custom model.

        Raises:
            ValidationError: the model is not a PythonModel.
        """
        if isinstance(self._model_impl, PythonModelWrapper):
            return self._model_impl.python_model
        raise ValidationError(
            "unwrap_python_model is for models logged with python_model=", field="model"
        )

    def get_raw_model(self) -> Any:
        """The underlying model object (an estimator, a Booster, a PythonModel, ...)."""
        for attribute in ("python_model", "model"):
            if hasattr(self._model_impl, attribute):
                return getattr(self._model_impl, attribute)
        return self._model_impl

    def __repr__(self) -> str:
        return f"mlrelay.pyfunc.loaded_model:\n  flavor: {self.loader_module}"


def load_model(
    model_uri: str,
    suppress_warnings: bool = False,  # noqa: ARG001 - mlrelay warns about nothing here
    dst_path: str | None = None,
    model_config: str | Path | dict[str, Any] | None = None,
) -> PyFuncModel:
    """Load a model as a :class:`PyFuncModel`, as ``mlflow.pyfunc.load_model``.

    Args:
        model_uri: a local path, ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
            ``models:/<name>@<alias>``, ``models:/<name>/latest``, ``models:/<model_id>``.
        suppress_warnings: accepted for MLflow's signature (mlrelay warns about nothing here).
        dst_path: where to download a remote model (a temporary folder if None).
        model_config: given to a PythonModel's ``load_context`` as ``context.model_config``
            (a dict, or a JSON/YAML file), instead of the one it was logged with.

    Raises:
        ValidationError: no model there, a flavor mlrelay does not read (the error says to
            use MLflow), or its framework package is missing (named).
        NotFoundError: no such model on the server.
    """
    folder = local_model(model_uri, dst_path)
    mlmodel = read_mlmodel(folder)
    conf = flavor_conf(mlmodel, "python_function")
    config = _model_config(model_config) if model_config is not None else conf.get("config")
    impl = load_pyfunc(folder, mlmodel, config)
    return PyFuncModel(Model.from_dict(mlmodel), impl)


def _model_config(model_config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(model_config, Mapping):
        return dict(model_config)
    import yaml

    loaded = yaml.safe_load(Path(model_config).read_text())  # JSON is YAML too
    if not isinstance(loaded, dict):
        raise ValidationError(f"{model_config}: not a mapping", field="model_config")
    return loaded


def _kind(
    loader_module: str | None,
    data_path: str | None,
    python_model: Any,
    artifacts: Mapping[str, tuple[str, str, str]],
    model_config: Mapping[str, Any] | None,
) -> tuple[str, Any, dict[str, Any]]:
    """The flavor, model and options to write for pyfunc's arguments."""
    if (python_model is None) == (loader_module is None):
        raise ValidationError(
            "give exactly one of python_model (a PythonModel or a function) and loader_module",
            field="python_model",
        )
    if loader_module is not None:
        if artifacts:
            raise ValidationError(
                "artifacts go with python_model, not loader_module", field="artifacts"
            )
        return "loader_module", None, {"loader_module": loader_module, "data_path": data_path}
    if isinstance(python_model, str | Path):
        raise ValidationError(
            "python_model as a file (MLflow's models-from-code) is not supported by mlrelay; "
            "pass a PythonModel object or a function",
            field="python_model",
        )
    if hasattr(python_model, "load_context") and hasattr(python_model, "predict"):
        return "python_model", python_model, {"artifacts": artifacts, "model_config": model_config}
    if callable(python_model):
        return "callable", python_model, {}
    raise ValidationError(
        f"python_model must be a PythonModel or a function, got {type(python_model).__name__}",
        field="python_model",
    )


@contextlib.contextmanager
def _spec(
    loader_module: str | None,
    data_path: str | None,
    python_model: Any,
    artifacts: Mapping[str, str] | None,
    model_config: Mapping[str, Any] | None,
    **common: Any,
) -> Iterator[ModelSpec]:
    """The model to write for pyfunc's arguments, its artifacts local while the block runs."""
    with local_artifacts(artifacts) as local:
        yield flavor_spec(
            *_kind(loader_module, data_path, python_model, local, model_config), **common
        )


def log_model(
    artifact_path: str | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Sequence[str] | None = None,
    infer_code_paths: bool = False,
    conda_env: Any = None,
    python_model: Any = None,
    artifacts: Mapping[str, str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    await_registration_for: float | None = 300,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    streamable: bool | None = None,
    resources: Any = None,
    auth_policy: Any = None,
    uv_project_path: str | Path | None = None,
    uv_groups: list[str] | None = None,
    uv_extras: list[str] | None = None,
    prompts: list[Any] | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
) -> ModelInfo:
    """Log a custom model into the active run (one is started when none is), as
    ``mlflow.pyfunc.log_model``: a :class:`PythonModel` (or a function) with its
    ``artifacts`` (name -> local path, ``runs:/`` or ``models:/`` URI, copied into the
    model), or your own ``loader_module`` with its ``data_path``. Returns the
    :class:`ModelInfo`, whose ``model_uri`` loads with :func:`load_model` and MLflow's.

    Raises:
        ValidationError: neither or both of python_model and loader_module, an argument
            mlrelay does not implement (named), a missing file.
        ConfigurationError, RegistryNotSupportedError: see ``_fluent_models.log_spec``.
    """
    unsupported(
        "mlrelay.pyfunc.log_model", infer_code_paths=infer_code_paths, resources=resources,
        auth_policy=auth_policy, uv_project_path=uv_project_path, uv_groups=uv_groups,
        uv_extras=uv_extras, prompts=prompts, streamable=streamable,
    )  # fmt: skip
    with _spec(
        loader_module, data_path, python_model, artifacts, model_config, code_paths=code_paths,
        conda_env=conda_env, extra_pip_requirements=extra_pip_requirements, metadata=metadata,
    ) as spec:  # fmt: skip
        return log_spec(
            spec, model_name(name, artifact_path), signature=signature,
            input_example=input_example, pip_requirements=pip_requirements,
            registered_model_name=registered_model_name,
            await_registration_for=await_registration_for, params=params, tags=tags,
            model_type=model_type, step=step, model_id=model_id,
        )  # fmt: skip


def save_model(
    path: str | Path,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Sequence[str] | None = None,
    infer_code_paths: bool = False,
    conda_env: Any = None,
    mlflow_model: Model | None = None,
    python_model: Any = None,
    artifacts: Mapping[str, str] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    streamable: bool | None = None,
    resources: Any = None,
    auth_policy: Any = None,
    uv_project_path: str | Path | None = None,
    uv_groups: list[str] | None = None,
    uv_extras: list[str] | None = None,
    **kwargs: Any,
) -> None:
    """Write a custom model to the new folder ``path``, as ``mlflow.pyfunc.save_model``
    (see :func:`log_model` for the arguments).

    Raises:
        ValidationError: ``path`` exists and is not empty, or as :func:`log_model`.
    """
    unsupported(
        "mlrelay.pyfunc.save_model", infer_code_paths=infer_code_paths,
        mlflow_model=mlflow_model, resources=resources, auth_policy=auth_policy,
        uv_project_path=uv_project_path, uv_groups=uv_groups, uv_extras=uv_extras,
        streamable=streamable, **kwargs,
    )  # fmt: skip
    with _spec(
        loader_module, data_path, python_model, artifacts, model_config, code_paths=code_paths,
        conda_env=conda_env, extra_pip_requirements=extra_pip_requirements, metadata=metadata,
    ) as spec:  # fmt: skip
        save_spec(
            spec, path, signature=signature, input_example=input_example,
            pip_requirements=pip_requirements,
        )  # fmt: skip


def get_model_dependencies(model_uri: str, format: str = "pip") -> str:
    """The local path of a model's ``requirements.txt`` (``format="pip"``) or ``conda.yaml``
    (``format="conda"``), downloaded if the model is remote.

    Raises:
        ValidationError: another format, or the model has no such file.
    """
    files = {"pip": "requirements.txt", "conda": "conda.yaml"}
    if format not in files:
        raise ValidationError(f"format must be 'pip' or 'conda', got {format!r}", field="format")
    file = local_model(model_uri) / files[format]
    if not file.is_file():
        raise ValidationError(f"the model has no {files[format]}", field="model_uri")
    return str(file)
