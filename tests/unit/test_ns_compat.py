"""MLflow's names without a server: signatures checked against the installed ``mlflow`` package,
the entity classes, the exception root, the out-of-scope names, datasets, autolog delegation."""

from __future__ import annotations

import importlib
import inspect
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import mlrelay
import mlrelay.artifacts
import mlrelay.data
import mlrelay.entities
import mlrelay.exceptions
import mlrelay.tracking
from mlrelay.tracking import MlflowClient

NO_MLFLOW = "MLflow is not installed (`make test-lowest`)"


def _mlflow() -> Any:
    """The real mlflow package (skips the test where it is not installed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow = pytest.importorskip("mlflow", reason=NO_MLFLOW)
        for namespace in ("artifacts", "data", "tracking"):
            importlib.import_module(f"mlflow.{namespace}")
    return mlflow


CLIENT_METHODS = [
    "create_experiment", "get_experiment", "get_experiment_by_name", "search_experiments",
    "delete_experiment", "restore_experiment", "rename_experiment", "set_experiment_tag",
    "delete_experiment_tag", "create_run", "get_run", "get_parent_run", "search_runs",
    "log_metric", "log_param", "set_tag", "delete_tag", "log_batch", "log_inputs",
    "set_terminated", "update_run", "delete_run", "restore_run", "get_metric_history",
    "log_artifact", "log_artifacts", "log_text", "log_dict", "log_figure", "log_image",
    "log_table", "list_artifacts", "download_artifacts", "create_registered_model",
    "get_registered_model", "search_registered_models", "rename_registered_model",
    "update_registered_model", "delete_registered_model", "set_registered_model_tag",
    "delete_registered_model_tag", "create_model_version", "get_model_version",
    "search_model_versions", "update_model_version", "delete_model_version",
    "get_model_version_download_uri", "get_model_version_stages", "set_model_version_tag",
    "delete_model_version_tag", "transition_model_version_stage", "get_latest_versions",
    "set_registered_model_alias", "delete_registered_model_alias", "get_model_version_by_alias",
    "get_logged_model", "search_logged_models", "list_logged_model_artifacts",
    "set_logged_model_tags", "delete_logged_model_tag", "finalize_logged_model",
    "delete_logged_model", "__init__",
]  # fmt: skip

FLUENT = [
    "start_run", "end_run", "active_run", "last_active_run", "get_run", "get_parent_run",
    "delete_run", "log_metric", "log_metrics", "log_param", "log_params", "set_tag", "set_tags",
    "delete_tag", "log_artifact", "log_artifacts", "log_text", "log_dict", "log_table",
    "get_artifact_uri", "create_experiment", "get_experiment", "get_experiment_by_name",
    "search_experiments", "delete_experiment", "set_experiment_tag", "set_experiment_tags",
    "search_runs", "get_tracking_uri", "set_tracking_uri", "is_tracking_uri_set", "autolog",
    "log_input", "get_logged_model", "last_logged_model", "search_logged_models",
    "set_logged_model_tags", "delete_logged_model_tag", "finalize_logged_model",
]  # fmt: skip

# MLflow parameters mlrelay leaves out on purpose (each named where the function is documented).
LEFT_OUT = {
    "create_experiment": {"trace_location"},  # GenAI trace storage (Unity Catalog)
    "log_input": {"model"},  # MLflow 3's logged-model inputs
    "mlflow.artifacts.download_artifacts": {"registry_uri"},  # one server for both
}


def _check(name: str, ours: Callable[..., Any], theirs: Callable[..., Any]) -> list[str]:
    """How ``ours`` differs from MLflow's ``theirs``: the same positional parameters in the same
    order, every MLflow keyword, the same defaults; ours may add keyword-only options."""
    mine = inspect.signature(ours).parameters
    other = inspect.signature(theirs).parameters
    left_out = LEFT_OUT.get(name, set())
    problems = []
    positional = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)
    wanted = [p for p in other if other[p].kind in positional and p not in left_out]
    have = [p for p in mine if mine[p].kind in positional]
    if have[: len(wanted)] != wanted or len(have) != len(wanted):
        problems.append(f"{name}: positional {have} != MLflow's {wanted}")
    for p, param in other.items():
        if p in left_out or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if p not in mine:
            problems.append(f"{name}: no parameter {p!r}")
        elif (
            param.default is not inspect.Parameter.empty
            and mine[p].default != param.default
            and not str(param.default).startswith("<")  # MLflow's enum members
        ):
            problems.append(
                f"{name}: {p} defaults to {mine[p].default!r}, MLflow {param.default!r}"
            )
    for p, param in mine.items():
        if p not in other and param.kind is not inspect.Parameter.KEYWORD_ONLY:
            problems.append(f"{name}: extra parameter {p!r} is not keyword-only")
    return problems


def test_mlflow_client_methods_have_mlflows_signatures() -> None:
    """Every MlflowClient method takes MLflow's parameters in MLflow's order, with MLflow's
    defaults (inspect.signature on both)."""
    mlflow = _mlflow()
    problems = [
        p
        for name in CLIENT_METHODS
        for p in _check(name, getattr(MlflowClient, name), getattr(mlflow.MlflowClient, name))
    ]
    assert not problems, "\n".join(problems)


def test_fluent_and_namespace_functions_have_mlflows_signatures() -> None:
    """The fluent functions and mlrelay.artifacts / data / tracking take MLflow's parameters in
    MLflow's order (mlrelay's own additions are keyword-only)."""
    mlflow = _mlflow()
    pairs = [(n, getattr(mlrelay, n), getattr(mlflow, n)) for n in FLUENT]
    for module in ("artifacts", "data", "tracking"):
        names = {
            "artifacts": ["download_artifacts", "list_artifacts", "load_text", "load_dict"],
            "data": ["from_pandas", "from_numpy"],
            "tracking": ["set_tracking_uri", "get_tracking_uri", "is_tracking_uri_set"],
        }[module]
        pairs += [
            (
                f"mlflow.{module}.{n}",
                getattr(getattr(mlrelay, module), n),
                getattr(getattr(mlflow, module), n),
            )
            for n in names
        ]
    problems = [p for name, ours, theirs in pairs for p in _check(name, ours, theirs)]
    assert not problems, "\n".join(problems)


def test_the_signature_check_can_fail() -> None:
    """The checker reports a reordered, a missing and a non-keyword-only extra parameter."""

    def theirs(a: int, b: int = 1, *, c: int = 2) -> None: ...

    def ours(b: int = 1, a: int = 0, d: int = 3) -> None: ...

    problems = _check("f", ours, theirs)
    assert any("positional" in p for p in problems)
    assert any("'c'" in p for p in problems)
    assert any("'d'" in p for p in problems)


# --- entities and exceptions ------------------------------------------------------------------


def test_entities_take_mlflows_positional_arguments_and_keywords() -> None:
    """Metric/Param/RunTag/Dataset/FileInfo are built positionally as in MLflow, by keyword
    as before, and a missing field is still pydantic's validation error."""
    from pydantic import ValidationError as PydanticError

    from mlrelay.entities import Dataset, DatasetInput, FileInfo, InputTag, Metric, Param, RunTag

    assert Metric("loss", 0.5, 1700, 3) == Metric(key="loss", value=0.5, timestamp=1700, step=3)
    assert Param("lr", "0.1") == Param(key="lr", value="0.1")
    assert RunTag("t", "v").value == "v"
    data = Dataset("d", "abc", "code", "{}", '{"s": 1}')
    assert data.schema_ == '{"s": 1}'
    assert DatasetInput(data, [InputTag("mlflow.data.context", "train")]).tags[0].value == "train"
    assert FileInfo("a/b", False, 3) == FileInfo(path="a/b", is_dir=False, file_size=3)
    with pytest.raises(PydanticError, match="timestamp"):
        Metric("loss", 0.5)
    with pytest.raises(TypeError, match="multiple values"):
        Param("lr", "0.1", key="other")


def test_view_type_lifecycle_stage_and_run_status_are_mlflows() -> None:
    """ViewType, LifecycleStage and RunStatus have MLflow's values and conversions."""
    mlflow = _mlflow()
    from mlflow.entities import LifecycleStage as TheirStage
    from mlflow.entities import RunStatus as TheirStatus
    from mlflow.entities import ViewType as TheirView

    from mlrelay.entities import LifecycleStage, RunStatus, ViewType

    assert mlflow is not None
    for name in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        value = getattr(ViewType, name)
        assert value == getattr(TheirView, name)
        assert ViewType.to_string(value) == TheirView.to_string(value)
        assert ViewType.from_string(ViewType.to_string(value)) == value
        assert ViewType.wire_name(value) == name == ViewType.wire_name(name.lower())
        assert LifecycleStage.view_type_to_stages(value) == TheirStage.view_type_to_stages(value)
    for status in TheirStatus.all_status():
        name = TheirStatus.to_string(status)
        assert RunStatus.from_string(name) == status
        assert RunStatus.is_terminated(status) == TheirStatus.is_terminated(status)
    assert RunStatus.all_status() == TheirStatus.all_status()
    assert (LifecycleStage.ACTIVE, LifecycleStage.DELETED) == ("active", "deleted")
    with pytest.raises(mlrelay.ValidationError, match="view type"):
        ViewType.wire_name(7)


def test_mlflow_exception_is_the_root_of_every_mlrelay_error() -> None:
    """MlflowException is MlrelayError: it catches every mlrelay error, carries MLflow's
    error_code / message / HTTP status, and is built as MLflow's is."""
    from mlrelay.exceptions import INVALID_PARAMETER_VALUE, MlflowException, RestException

    assert MlflowException is mlrelay.MlrelayError
    assert mlrelay.MlflowException is MlflowException
    assert issubclass(RestException, MlflowException)
    for name in mlrelay.__all__:
        obj = getattr(mlrelay, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, MlflowException), name
    err = MlflowException("bad lr", error_code=INVALID_PARAMETER_VALUE)
    assert (err.message, err.error_code, err.get_http_status_code()) == (
        "bad lr",
        "INVALID_PARAMETER_VALUE",
        400,
    )
    assert MlflowException("x").get_http_status_code() == 500
    assert MlflowException.invalid_parameter_value("y").error_code == INVALID_PARAMETER_VALUE
    with pytest.raises(MlflowException) as caught:
        mlrelay.log_metric("bad key!", 1.0)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert caught.value.get_http_status_code() == 400


def test_error_codes_map_to_mlflows_http_statuses() -> None:
    """mlrelay's error-code -> HTTP status table is MLflow's."""
    mlflow = _mlflow()
    from mlrelay.exceptions import ERROR_CODE_TO_HTTP_STATUS

    assert mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS == ERROR_CODE_TO_HTTP_STATUS


# --- namespaces and what is out of scope --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alternative"),
    [
        ("trace", "MLflow's own package"),
        ("start_span", "MLflow's own package"),
        ("search_traces", "MLflow's own package"),
        ("genai", "MLflow's own package"),
        ("evaluate", "log_metrics"),
        ("deployments", "MLflow's own package"),
        ("gateway", "MLflow's own package"),
        ("projects", "python train.py"),
        ("run", "python train.py"),
        ("pytorch", "log_artifacts"),
        ("tensorflow", "pyfunc.PythonModel"),
        ("transformers", "log_artifacts"),
    ],
)
def test_out_of_scope_names_say_so_and_name_the_alternative(name: str, alternative: str) -> None:
    """mlrelay.<name> and `from mlrelay import <name>` raise UnsupportedFeatureError (an
    MlflowException and a NotImplementedError) that names the feature and what to use."""
    with pytest.raises(mlrelay.UnsupportedFeatureError) as caught:
        getattr(mlrelay, name)
    message = str(caught.value)
    assert message.startswith("mlrelay does not support")
    assert f"mlflow.{name}" in message
    assert alternative in message
    assert isinstance(caught.value, NotImplementedError)
    assert caught.value.error_code == "NOT_IMPLEMENTED"
    code = f"from mlrelay import {name}"
    with pytest.raises(mlrelay.UnsupportedFeatureError, match="does not support"):
        exec(code, {})


def test_unknown_names_are_still_attribute_errors() -> None:
    """A name MLflow does not have either stays a plain AttributeError (hasattr is False)."""
    assert not hasattr(mlrelay, "no_such_thing")
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = mlrelay.no_such_thing  # type: ignore[attr-defined]


def test_namespaces_written_elsewhere_may_be_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlrelay.<namespace> for a submodule this build lacks is an AttributeError naming it
    (hasattr is False), not a crash; present namespaces load and are listed by dir()."""
    monkeypatch.setitem(sys.modules, "mlrelay.onnx", None)  # as if the file were missing
    monkeypatch.delattr(mlrelay, "onnx", raising=False)
    with pytest.raises(AttributeError, match=r"mlrelay\.onnx is not part of this mlrelay"):
        _ = mlrelay.onnx  # type: ignore[attr-defined]
    assert not hasattr(mlrelay, "onnx")
    assert mlrelay.tracking is sys.modules["mlrelay.tracking"]
    assert {"tracking", "entities", "artifacts", "data", "exceptions"} <= set(dir(mlrelay))


# --- datasets ------------------------------------------------------------------------------------


def test_from_pandas_and_from_numpy_match_mlflow_data() -> None:
    """mlrelay.data.from_pandas / from_numpy give the digest, source, schema and profile
    MLflow's mlflow.data gives (to_dict), targets included."""
    mlflow = _mlflow()
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"], "y": [0, 1, 0]})
    kwargs: dict[str, Any] = {"source": "https://example.org/d.csv", "targets": "y", "name": "d"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mlflow.data.from_pandas(df, predictions="a", **kwargs).to_dict()
    ours = mlrelay.data.from_pandas(df, predictions="a", **kwargs).to_dict()
    assert ours == theirs
    features, targets = np.arange(12.0).reshape(4, 3), np.array([0, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mlflow.data.from_numpy(features, source="s3://b/x", targets=targets).to_dict()
        no_targets = mlflow.data.from_numpy(features, source="s3://b/x", digest="d1").to_dict()
    assert mlrelay.data.from_numpy(features, source="s3://b/x", targets=targets).to_dict() == theirs
    assert mlrelay.data.from_numpy(features, source="s3://b/x", digest="d1").to_dict() == no_targets
    with pytest.raises(mlrelay.ValidationError, match="predictions"):
        mlrelay.data.from_pandas(df, predictions="nope")
    with pytest.raises(mlrelay.ValidationError, match="numpy arrays"):
        mlrelay.data.from_numpy({"a": features})


def test_mlflow_data_submodules_exist_where_mlflow_keeps_them() -> None:
    """mlrelay.data.pandas_dataset.PandasDataset and numpy_dataset.NumpyDataset resolve both
    as attributes after ``import mlrelay`` (MLflow 3's sklearn example annotates with them)
    and as ``from mlrelay.data.pandas_dataset import ...``, as in MLflow."""
    from mlrelay.data.numpy_dataset import NumpyDataset, from_numpy
    from mlrelay.data.pandas_dataset import PandasDataset, from_pandas

    assert mlrelay.data.pandas_dataset.PandasDataset is PandasDataset is mlrelay.data.PandasDataset
    assert mlrelay.data.numpy_dataset.NumpyDataset is NumpyDataset is mlrelay.data.NumpyDataset
    assert (from_pandas, from_numpy) == (mlrelay.data.from_pandas, mlrelay.data.from_numpy)
    mlflow = _mlflow()
    for sub in ("pandas_dataset", "numpy_dataset"):
        theirs = set(getattr(mlflow.data, sub).__dict__) & {"PandasDataset", "NumpyDataset"}
        theirs |= {
            n for n in ("from_pandas", "from_numpy") if hasattr(getattr(mlflow.data, sub), n)
        }
        assert theirs <= set(getattr(mlrelay.data, sub).__all__)


# --- autolog ------------------------------------------------------------------------------------


def test_autolog_delegates_to_the_autolog_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlrelay.autolog(...) calls mlrelay._autolog.autolog with the options it takes; an option
    it does not take is refused by name when set, and ignored at its default."""
    calls: list[dict[str, Any]] = []

    def fake(log_models: bool = True, disable: bool = False, silent: bool = False) -> None:
        calls.append({"log_models": log_models, "disable": disable, "silent": silent})

    monkeypatch.setitem(sys.modules, "mlrelay._autolog", types.SimpleNamespace(autolog=fake))
    mlrelay.autolog(log_models=False, silent=True)
    assert calls == [{"log_models": False, "disable": False, "silent": True}]
    with pytest.raises(mlrelay.UnsupportedFeatureError, match="exclude_flavors"):
        mlrelay.autolog(exclude_flavors=["sklearn"])


def test_autolog_without_the_autolog_module_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where this build has no autolog module, autolog() raises UnsupportedFeatureError."""
    monkeypatch.setitem(sys.modules, "mlrelay._autolog", None)  # as if the file were missing
    with pytest.raises(mlrelay.UnsupportedFeatureError, match="autolog"):
        mlrelay.autolog()
