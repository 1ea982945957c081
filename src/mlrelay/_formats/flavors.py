"""MLflow's model flavors, written and read without MLflow.

Each flavor has a writer, which puts the model's own files into a model directory and returns
the ``flavors`` block MLflow writes for it, and a loader, which reads them back as MLflow's
``load_model`` of that flavor does (the native object) and as ``mlflow.pyfunc`` does (an object
with ``predict(data, params=None)``). The files are MLflow's, so either side can be MLflow:

| flavor        | files                                | native object                    |
| ------------- | ------------------------------------ | -------------------------------- |
| sklearn       | model.pkl (pickle, cloudpickle) or   | the estimator                    |
|               | model.skops                          |                                  |
| xgboost       | model.ubj / .json / .xgb             | Booster or XGBModel (its class)  |
| lightgbm      | model.lgb (Booster), model.pkl       | Booster or LGBMModel             |
| onnx          | model.onnx                           | onnx.ModelProto                  |
| python_model  | python_model.pkl, artifacts/         | the PythonModel                  |
| loader_module | data/<data_path>                     | whatever the module's loader     |
|               |                                      | returns                          |

The framework packages are imported only when a model of theirs is written or read; a missing
one is named in the error.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pickle
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mlrelay._errors import ValidationError

from .pyfunc import (
    CallableModel,
    ContextModel,
    PythonModelContext,
    PythonModelWrapper,
    _load_pyfunc,
    load_python_model,
)

_log = logging.getLogger("mlrelay")

__all__ = [
    "ModelSpec",
    "Written",
    "add_code_paths",
    "flavor_conf",
    "load_native",
    "load_pyfunc",
    "read_mlmodel",
    "require",
    "version_of",
    "write_flavor",
]

_PICKLE_FILE = "model.pkl"
_PYTHON_MODEL_FILE = "python_model.pkl"


@dataclass
class ModelSpec:
    """A model and how to write it, beyond the files every model has.

    Attributes:
        flavor: ``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, ``python_model``,
            ``loader_module``, or (mlrelay's own custom models) ``callable`` / ``context``.
        model: the object (None for ``loader_module``).
        options: the flavor's own options (``serialization_format``, ``pyfunc_predict_fn``,
            ``model_format``, ``artifacts``, ``loader_module``, ``data_path``, ...).
        code_paths: local files or folders copied into ``code/`` and put on ``sys.path``
            when the model loads.
        extra_files: local files copied into ``extra_files/``.
        metadata: the MLmodel's ``metadata`` block.
        conda_env: a conda environment (dict or YAML file) to write instead of the inferred
            one.
        extra_pip_requirements: added to the inferred requirements.
        infer_signature: False when the caller passed ``signature=False``.
    """

    flavor: str
    model: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)
    code_paths: Sequence[str] | None = None
    extra_files: Sequence[str] | None = None
    metadata: Mapping[str, Any] | None = None
    conda_env: Any = None
    extra_pip_requirements: Sequence[str] | None = None
    infer_signature: bool = True


@dataclass
class Written:
    """What a flavor writer wrote: the ``flavors`` block (without the environment fields,
    which :func:`mlrelay._formats.models.save_model` adds), a way to get a predictor for
    the signature's outputs, and the distributions the model needs."""

    flavors: dict[str, Any]
    predictor: Callable[[], Any] | None
    packages: list[str]


def version_of(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def require(module: str, purpose: str) -> Any:
    """Import a framework module, or raise an error that names the package to install.

    Raises:
        ValidationError: the package is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = {"sklearn": "scikit-learn", "skops.io": "skops"}.get(module, module)
        raise ValidationError(
            f"{purpose} needs the {package} package, which is not installed here "
            f"(pip install {package})",
            field="model",
        ) from exc


def _dumps(obj: Any) -> bytes:
    # cloudpickle (when installed) also handles lambdas and classes defined in __main__.
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=4)
    return bytes(cloudpickle.dumps(obj, protocol=4))


def _write_pickle(obj: Any, file: Path) -> None:
    try:
        data = _dumps(obj)
    except Exception as exc:
        raise ValidationError(f"the model cannot be pickled: {exc}", field="model") from exc
    file.write_bytes(data)


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


class _PredictFn:
    """The pyfunc face of a model with a predict method of some name."""

    def __init__(self, model: Any, predict_fn: str = "predict") -> None:
        self.model = model
        self.predict_fn = predict_fn

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:  # noqa: ARG002 - pyfunc's interface
        """``model.<predict_fn>(data)``."""
        return getattr(self.model, self.predict_fn)(data)


# --- writers ---------------------------------------------------------------------------


def _dump_skops(model: Any, file: Path, trusted: Any) -> None:
    """Write ``model`` with skops and read it back, as MLflow does, so that a model whose
    types skops does not trust fails now rather than when it is loaded.

    Raises:
        ValidationError: skops cannot write the model, or does not trust its types.
    """
    skops_io = require("skops.io", "serialization_format='skops'")
    try:
        skops_io.dump(model, file)
        skops_io.load(file, trusted=trusted)
    except Exception as exc:
        file.unlink(missing_ok=True)
        raise ValidationError(
            f"the model cannot be saved in the skops format ({exc}); skops refuses custom "
            "functions and classes unless they are listed in skops_trusted_types; or pass "
            "serialization_format='cloudpickle'",
            field="serialization_format",
        ) from exc


def _dump_sklearn(model: Any, path: Path, options: Mapping[str, Any]) -> tuple[str, str]:
    """Write the estimator in the chosen format; returns the file's name and the format.

    With no format chosen, a scikit-learn estimator is written with skops when skops is
    installed (MLflow 3's default), anything else with pickle; an estimator that skops
    refuses falls back to cloudpickle with a warning (MLflow raises).
    """
    chosen = options.get("serialization_format")
    estimator = type(model).__module__.startswith("sklearn.")
    skops = estimator and importlib.util.find_spec("skops") is not None
    serialization = chosen or ("skops" if skops else "pickle")
    if serialization not in ("pickle", "cloudpickle", "skops"):
        raise ValidationError(
            f"serialization_format {serialization!r} is not one of skops, pickle, cloudpickle",
            field="serialization_format",
        )
    if serialization == "skops":
        try:
            _dump_skops(model, path / "model.skops", options.get("skops_trusted_types"))
            return "model.skops", serialization
        except ValidationError as exc:
            if chosen:
                raise
            _log.warning("%s; the model is saved with cloudpickle instead", exc)
            serialization = "cloudpickle"
    _write_pickle(model, path / _PICKLE_FILE)
    return _PICKLE_FILE, serialization


def _write_sklearn(spec: ModelSpec, path: Path) -> Written:
    model, options = spec.model, spec.options
    predict_fn = options.get("pyfunc_predict_fn") or "predict"
    packages = ["scikit-learn", "scipy", "cloudpickle"]
    trusted = options.get("skops_trusted_types")
    file, serialization = _dump_sklearn(model, path, options)
    if serialization == "skops":
        packages.append("skops")
    module = type(model).__module__.split(".")[0]
    if module not in ("sklearn", "builtins", "__main__"):
        packages.append(module)
    flavors: dict[str, Any] = {}
    if hasattr(model, predict_fn):
        flavors["python_function"] = {
            "loader_module": "mlflow.sklearn",
            "model_path": file,
            "predict_fn": predict_fn,
        }
    flavors["sklearn"] = {
        "code": None,
        "pickled_model": file,
        "serialization_format": serialization,
        "sklearn_version": version_of("scikit-learn"),
    }
    if serialization == "skops" or not options.get("mlflow_2"):  # MLflow 3 always writes it
        flavors["sklearn"]["skops_trusted_types"] = list(trusted) if trusted else None
    return Written(flavors, lambda: _PredictFn(model, predict_fn), packages)


def _write_xgboost(spec: ModelSpec, path: Path) -> Written:
    xgb = require("xgboost", "an XGBoost model")
    model_format = spec.options.get("model_format") or "ubj"
    file = f"model.{model_format}"
    spec.model.save_model(str(path / file))
    flavors = {
        "python_function": {"data": file, "loader_module": "mlflow.xgboost"},
        "xgboost": {
            "code": None,
            "data": file,
            "model_class": _class_name(spec.model),
            "model_format": model_format,
            # the module's version, as MLflow: the distribution may be xgboost-cpu
            "xgb_version": version_of("xgboost") or getattr(xgb, "__version__", None),
        },
    }
    return Written(flavors, lambda: _XGBoostPredictor(spec.model), ["xgboost"])


_LIGHTGBM_SKOPS_TRUSTED = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
)
"""The types MLflow 3 trusts in a LightGBM model saved with skops (its builtin list)."""


def _write_lightgbm(spec: ModelSpec, path: Path) -> Written:
    """A Booster as ``model.lgb``; a scikit-learn wrapper pickled with cloudpickle (which
    MLflow 2.x and 3.x both read). The flavor has MLflow 3's ``serialization_format`` and
    ``skops_trusted_types`` keys: for a Booster (whose file format they do not affect)
    MLflow 3's defaults, ``skops`` and its trusted types, as MLflow 3 writes them."""
    lgb = require("lightgbm", "a LightGBM model")
    conf: dict[str, Any] = {"code": None}
    trusted = spec.options.get("skops_trusted_types")
    if isinstance(spec.model, lgb.Booster):
        file = "model.lgb"
        spec.model.save_model(str(path / file))
        serialization = spec.options.get("serialization_format") or "skops"
        if serialization == "skops":
            trusted = sorted({*_LIGHTGBM_SKOPS_TRUSTED, *(trusted or ())})
    else:
        file = _PICKLE_FILE
        _write_pickle(spec.model, path / file)
        serialization = "cloudpickle"
    conf.update(
        data=file,
        lgb_version=version_of("lightgbm") or getattr(lgb, "__version__", None),
        model_class=_class_name(spec.model),
        serialization_format=serialization,
        skops_trusted_types=list(trusted) if trusted else None,
    )
    flavors = {
        "lightgbm": conf,
        "python_function": {"data": file, "loader_module": "mlflow.lightgbm"},
    }
    return Written(flavors, lambda: _PredictFn(spec.model), ["lightgbm", "cloudpickle"])


def _onnx_bytes(model: Any) -> bytes:
    if isinstance(model, bytes):
        return model
    if isinstance(model, str | Path):
        source = Path(model)
        if not source.is_file():
            raise ValidationError(f"no ONNX file at {str(source)!r}", field="model")
        return source.read_bytes()
    if hasattr(model, "SerializeToString"):
        return bytes(model.SerializeToString())
    raise ValidationError(
        f"an ONNX model is bytes, a .onnx path or an onnx.ModelProto, got {type(model).__name__}",
        field="model",
    )


def _write_onnx(spec: ModelSpec, path: Path) -> Written:
    (path / "model.onnx").write_bytes(_onnx_bytes(spec.model))
    providers = list(spec.options.get("onnx_execution_providers") or ["CPUExecutionProvider"])
    flavors = {
        "onnx": {
            "code": None,
            "data": "model.onnx",
            "onnx_version": version_of("onnx"),
            "providers": providers,
        },
        "python_function": {"data": "model.onnx", "loader_module": "mlflow.onnx"},
    }

    def predictor() -> Any:
        return _OnnxPredictor(path / "model.onnx", providers)

    return Written(flavors, predictor, ["onnx", "onnxruntime"])


def _write_python_model(spec: ModelSpec, path: Path) -> Written:
    _write_pickle(spec.model, path / _PYTHON_MODEL_FILE)
    saved: dict[str, dict[str, str]] = {}
    local: dict[str, str] = {}
    given: dict[str, tuple[str, str, str]] = dict(spec.options.get("artifacts") or {})
    distinct = list(dict.fromkeys(given.values()))  # one copy per URI, as MLflow
    targets = {
        artifact: path / "artifacts" / root if root else path / "artifacts"
        for artifact, root in zip(distinct, artifact_roots([a[2] for a in distinct]), strict=True)
    }
    for artifact, target in targets.items():
        _copy(Path(artifact[0]), target)
    for name, artifact in given.items():
        target = targets[artifact]
        saved[str(name)] = {"path": target.relative_to(path).as_posix(), "uri": artifact[1]}
        local[str(name)] = str(target)
    conf: dict[str, Any] = {
        "cloudpickle_version": version_of("cloudpickle"),
        "code": None,
        "loader_module": "mlflow.pyfunc.model",
        "python_model": _PYTHON_MODEL_FILE,
        "streamable": False,
    }
    if saved:
        conf["artifacts"] = saved
    model, config = spec.model, spec.options.get("model_config")
    if config:
        conf["config"] = dict(config)

    def predictor() -> Any:
        context = PythonModelContext(local, config)
        model.load_context(context)
        return PythonModelWrapper(model, context)

    packages = ["cloudpickle", "mlrelay", *_user_packages(model)]
    return Written({"python_function": conf}, predictor, packages)


def _user_packages(model: Any) -> list[str]:
    module = type(model).__module__.split(".")[0]
    return [] if module in ("builtins", "__main__", "mlrelay") else [module]


def _write_loader_module(spec: ModelSpec, path: Path) -> Written:
    conf: dict[str, Any] = {"loader_module": str(spec.options["loader_module"])}
    data_path = spec.options.get("data_path")
    if data_path:
        source = Path(data_path)
        if not source.exists():
            raise ValidationError(
                f"no file or folder at data_path {str(source)!r}", field="data_path"
            )
        _copy(source, path / "data" / source.name)
        conf["data"] = f"data/{source.name}"
    return Written({"python_function": conf}, None, [])


def _write_custom(spec: ModelSpec, path: Path) -> Written:
    """mlrelay's own custom models: a callable, or predict(context, model_input)."""
    stored = ContextModel(spec.model) if spec.flavor == "context" else CallableModel(spec.model)
    _write_pickle(stored, path / _PYTHON_MODEL_FILE)
    conf = {"data": _PYTHON_MODEL_FILE, "loader_module": "mlrelay._pyfunc"}
    return Written({"python_function": conf}, lambda: stored, ["cloudpickle", "mlrelay"])


_WRITERS: dict[str, Callable[[ModelSpec, Path], Written]] = {
    "sklearn": _write_sklearn,
    "xgboost": _write_xgboost,
    "lightgbm": _write_lightgbm,
    "onnx": _write_onnx,
    "python_model": _write_python_model,
    "loader_module": _write_loader_module,
    "callable": _write_custom,
    "context": _write_custom,
}


def artifact_roots(roots: Sequence[str]) -> list[str]:
    """Where each of a pyfunc model's artifacts goes under ``artifacts/``, by MLflow's rule:
    at its own root (``""`` for a whole model folder) unless that root overlaps another's
    (one is a prefix of the other, compared case-insensitively), in which case every
    overlapping artifact moves under the next free numbered folder (``0/``, ``1/``, ...)."""
    parts = [tuple(p for p in root.split("/") if p) for root in roots]

    def overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
        n = min(len(a), len(b))
        return tuple(x.casefold() for x in a[:n]) == tuple(x.casefold() for x in b[:n])

    clashing = {
        i for i, a in enumerate(parts) for j, b in enumerate(parts) if i != j and overlap(a, b)
    }
    taken = {p[0] for i, p in enumerate(parts) if i not in clashing and p}
    final: list[str] = []
    namespace = 0
    for i, own in enumerate(parts):
        if i in clashing:
            while str(namespace) in taken:
                namespace += 1
            taken.add(str(namespace))
            own = (str(namespace), *own)
            namespace += 1
        final.append("/".join(own))
    return final


def _copy(source: Path, target: Path, *, skip: tuple[str, ...] = ()) -> None:
    if not source.exists():
        raise ValidationError(f"no file or folder at {str(source)!r}", field="artifacts")
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*skip) if skip else None)
    else:
        shutil.copy2(source, target)


def _copy_code(spec: ModelSpec, path: Path, flavors: dict[str, Any]) -> None:
    """Copy ``code_paths`` into ``code/`` and name that folder in every flavor."""
    if not spec.code_paths:
        return
    for code in spec.code_paths:  # without __pycache__, as MLflow copies code
        _copy(Path(code), path / "code" / Path(code).name, skip=("__pycache__",))
    for conf in flavors.values():
        conf["code"] = "code"


def _copy_extra_files(spec: ModelSpec, path: Path, flavors: dict[str, Any]) -> None:
    """Copy ``extra_files`` into ``extra_files/`` and list them in the model's own flavor."""
    if not spec.extra_files:
        return
    listed = []
    for extra in spec.extra_files:
        _copy(Path(extra), path / "extra_files" / Path(extra).name)
        listed.append({"path": f"extra_files/{Path(extra).name}"})
    own = flavors.get(spec.flavor)
    if own is not None:
        own["extra_files"] = listed


def write_flavor(spec: ModelSpec, path: Path) -> Written:
    """Write the model's own files (and its code and extra files) into ``path``.

    Raises:
        ValidationError: an unknown flavor, a model that cannot be written, a missing
            framework package or file.
    """
    writer = _WRITERS.get(spec.flavor)
    if writer is None:
        raise ValidationError(f"unknown model flavor {spec.flavor!r}", field="flavor")
    written = writer(spec, path)
    _copy_code(spec, path, written.flavors)
    _copy_extra_files(spec, path, written.flavors)
    return written


# --- readers ---------------------------------------------------------------------------


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The MLmodel file of a model directory (or the file itself), as a dict.

    Raises:
        ValidationError: there is no MLmodel file there.
    """
    import yaml

    file = model_dir if model_dir.is_file() else model_dir / "MLmodel"
    if not file.is_file():
        raise ValidationError(f"no MLmodel file in {str(model_dir)!r}", field="model_uri")
    loaded = yaml.safe_load(file.read_text())
    return loaded if isinstance(loaded, dict) else {}


def flavor_conf(mlmodel: Mapping[str, Any], flavor: str) -> dict[str, Any]:
    """One flavor's block of an MLmodel.

    Raises:
        ValidationError: the model has no such flavor (the error lists the ones it has).
    """
    flavors = mlmodel.get("flavors") or {}
    if flavor not in flavors:
        raise ValidationError(
            f"the model has no {flavor} flavor (it has: {', '.join(sorted(flavors)) or 'none'})",
            field="model_uri",
        )
    return dict(flavors[flavor] or {})


def add_code_paths(model_dir: Path, conf: Mapping[str, Any]) -> None:
    """Put the model's ``code/`` entries on ``sys.path``, as MLflow does before loading."""
    code = conf.get("code")
    if not code:
        return
    root = model_dir / str(code)
    for entry in [root, *sorted(root.iterdir())] if root.is_dir() else []:
        if str(entry) not in sys.path and (entry.is_dir() or entry.suffix == ".py"):
            sys.path.insert(0, str(entry if entry.is_dir() else entry.parent))


def _load_sklearn_file(file: Path, serialization: str, trusted: Any) -> Any:
    if serialization == "skops":
        skops_io = require("skops.io", "a model saved in the skops format")
        return skops_io.load(file, trusted=trusted)
    with open(file, "rb") as f:  # the pickle imports the packages it needs (and names them)
        return pickle.load(f)  # cloudpickle's output is read by pickle too


def _load_sklearn(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    file = model_dir / str(conf.get("pickled_model") or _PICKLE_FILE)
    return _load_sklearn_file(
        file, str(conf.get("serialization_format") or "pickle"), conf.get("skops_trusted_types")
    )


def _load_xgboost(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    require("xgboost", "an XGBoost model")
    module, _, name = str(conf.get("model_class") or "xgboost.core.Booster").rpartition(".")
    if not module.startswith("xgboost"):
        raise ValidationError(f"{module}.{name} is not an XGBoost class", field="model_class")
    model = getattr(importlib.import_module(module), name)()
    model.load_model(str(model_dir / str(conf["data"])))
    return model


def _load_lightgbm(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    lgb = require("lightgbm", "a LightGBM model")
    file = model_dir / str(conf["data"])
    if conf.get("model_class", "lightgbm.basic.Booster") == "lightgbm.basic.Booster":
        return lgb.Booster(model_file=str(file))
    serialization = str(conf.get("serialization_format") or "cloudpickle")
    return _load_sklearn_file(file, serialization, conf.get("skops_trusted_types"))


def _load_onnx(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    onnx = require("onnx", "an ONNX model")
    return onnx.load(str(model_dir / str(conf.get("data") or "model.onnx")))


_NATIVE: dict[str, Callable[[Path, Mapping[str, Any]], Any]] = {
    "sklearn": _load_sklearn,
    "xgboost": _load_xgboost,
    "lightgbm": _load_lightgbm,
    "onnx": _load_onnx,
}


def load_native(model_dir: Path, flavor: str) -> Any:
    """The model object of one flavor, as that flavor's ``mlflow.<flavor>.load_model``
    returns it (an estimator, a Booster, an ``onnx.ModelProto``).

    Raises:
        ValidationError: the model has no such flavor, or its package is missing.
    """
    conf = flavor_conf(read_mlmodel(model_dir), flavor)
    add_code_paths(model_dir, conf)
    return _NATIVE[flavor](model_dir, conf)


class _XGBoostPredictor:
    """MLflow's pyfunc face of an XGBoost model: a Booster predicts on a DMatrix."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:  # noqa: ARG002 - pyfunc's interface
        """The model's prediction (a Booster's input is wrapped in a DMatrix)."""
        xgb = require("xgboost", "an XGBoost model")
        if isinstance(self.model, xgb.Booster):
            return self.model.predict(xgb.DMatrix(data))
        return self.model.predict(data)


class _OnnxPredictor:
    """MLflow's pyfunc face of an ONNX model, run by onnxruntime: a DataFrame feeds the one
    input (or one input per column), an array the one input, a dict each input by name;
    the outputs come back as a DataFrame for a DataFrame, a dict of arrays otherwise."""

    def __init__(self, file: Path, providers: Sequence[str]) -> None:
        ort = require("onnxruntime", "running an ONNX model")
        self.session = ort.InferenceSession(str(file), providers=list(providers))
        self.inputs = [(i.name, i.type) for i in self.session.get_inputs()]

    def _feed(self, data: Any) -> dict[str, Any]:
        import numpy as np

        if isinstance(data, Mapping):
            feed = {k: np.asarray(v) for k, v in data.items()}
        elif hasattr(data, "columns"):
            if len(self.inputs) > 1:
                feed = {n: data[n].to_numpy() for n, _ in self.inputs}
            else:
                feed = {self.inputs[0][0]: data.to_numpy()}
        else:
            if len(self.inputs) != 1:
                raise ValidationError(
                    f"the ONNX model takes {len(self.inputs)} inputs: pass a dict",
                    field="model_input",
                )
            feed = {self.inputs[0][0]: np.asarray(data)}
        types = {"tensor(float)": np.float32, "tensor(double)": np.float64}
        for name, onnx_type in self.inputs:
            if name in feed and onnx_type in types:
                feed[name] = feed[name].astype(types[onnx_type])
        return feed

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:  # noqa: ARG002 - pyfunc's interface
        """The outputs of one onnxruntime run."""
        names = [o.name for o in self.session.get_outputs()]
        outputs = self.session.run(names, self._feed(data))
        if hasattr(data, "columns"):
            import pandas as pd

            return pd.DataFrame({n: list(v) for n, v in zip(names, outputs, strict=True)})
        return dict(zip(names, outputs, strict=True))


def _python_model_predictor(
    model_dir: Path, conf: Mapping[str, Any], model_config: Mapping[str, Any] | None
) -> Any:
    if conf.get("model_code_path"):
        raise ValidationError(
            "this model is a models-from-code model (its code calls mlflow.models.set_model); "
            "load it with mlflow.pyfunc.load_model",
            field="model_uri",
        )
    python_model = load_python_model(model_dir / str(conf.get("python_model", _PYTHON_MODEL_FILE)))
    artifacts = {
        str(name): str(model_dir / str(info["path"]))
        for name, info in dict(conf.get("artifacts") or {}).items()
    }
    context = PythonModelContext(artifacts, model_config)
    python_model.load_context(context)
    return PythonModelWrapper(python_model, context)


def _load_with_module(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    """A model whose ``loader_module`` is the user's own: ``module._load_pyfunc(data)``."""
    name = str(conf["loader_module"])
    if name == "mlflow" or name.startswith("mlflow."):
        raise ValidationError(
            f"this model's flavor ({name}) is not one mlrelay reads (sklearn, xgboost, "
            "lightgbm, onnx, python_model); load it with mlflow.pyfunc.load_model",
            field="model_uri",
        )
    data = conf.get("data")
    path = model_dir / str(data) if data else model_dir
    return importlib.import_module(name)._load_pyfunc(str(path))  # noqa: SLF001 - MLflow's loader convention


def load_pyfunc(
    model_dir: Path, mlmodel: Mapping[str, Any], model_config: Mapping[str, Any] | None = None
) -> Any:
    """The object ``mlflow.pyfunc`` would predict with, for the model's ``python_function``
    flavor: its ``predict(data, params=None)`` takes the input as the model does.

    Raises:
        ValidationError: the model has no python_function flavor, or a flavor (or a pickle)
            that needs the mlflow package, or its framework package is missing.
    """
    conf = flavor_conf(mlmodel, "python_function")
    add_code_paths(model_dir, conf)
    loader = conf.get("loader_module")
    flavors = mlmodel.get("flavors") or {}
    if loader == "mlflow.sklearn":
        return _PredictFn(
            _load_sklearn(
                model_dir, flavors.get("sklearn") or {"pickled_model": conf["model_path"]}
            ),
            str(conf.get("predict_fn") or "predict"),
        )
    if loader == "mlflow.xgboost":
        return _XGBoostPredictor(_load_xgboost(model_dir, flavors.get("xgboost") or conf))
    if loader == "mlflow.lightgbm":
        return _PredictFn(_load_lightgbm(model_dir, flavors.get("lightgbm") or conf))
    if loader == "mlflow.onnx":
        onnx_conf = flavors.get("onnx") or {}
        providers = onnx_conf.get("providers") or ["CPUExecutionProvider"]
        return _OnnxPredictor(model_dir / str(conf.get("data") or "model.onnx"), providers)
    if loader == "mlflow.pyfunc.model":
        return _python_model_predictor(model_dir, conf, model_config)
    if loader == "mlrelay._pyfunc":
        return _load_pyfunc(str(model_dir / str(conf.get("data") or _PYTHON_MODEL_FILE)))
    return _load_with_module(model_dir, conf)
