"""MLflow's model namespaces without a server: names and signatures, schema inference and
enforcement, and model folders that MLflow's own package reads and writes.

MLflow's package (installed in the test venv) is the reference throughout: the functions
are compared with ``inspect.signature`` of MLflow's, signatures with what MLflow infers on
the same data, folders with what ``mlflow.<flavor>.save_model`` writes, and folders written
here are loaded by MLflow's ``load_model`` (and the other way round, with MLflow made
unimportable in a child process).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import mlrelay
import mlrelay.lightgbm
import mlrelay.models
import mlrelay.onnx
import mlrelay.pyfunc
import mlrelay.sklearn
import mlrelay.xgboost
from mlrelay.models import ModelSignature, infer_signature

# These tests compare with MLflow's own package and train scikit-learn, XGBoost and LightGBM
# models; `make test-lowest` (the dependency floors, with none of those installed) skips them.
for _needed in ("mlflow", "sklearn", "xgboost", "lightgbm"):
    pytest.importorskip(_needed, reason=f"{_needed} is not installed (`make test-lowest`)")

ROOT = Path(__file__).resolve().parents[2]

# Where mlrelay differs from MLflow on purpose, by (module, function, parameter).
DEFAULTS_THAT_DIFFER = {("models", "Model.__init__", "mlflow_version")}  # no MLflow installed

FUNCTIONS = {
    "models": ["infer_signature", "set_signature", "validate_schema", "get_model_info",
               "Model.__init__", "Model.load", "Model.get_model_info", "Model.from_dict",
               "Model.load_input_example", "Model.add_flavor", "ModelSignature.__init__",
               "ModelSignature.from_dict"],
    "sklearn": ["log_model", "save_model", "load_model", "autolog"],
    "pyfunc": ["log_model", "save_model", "load_model", "get_model_dependencies",
               "PythonModel.predict", "PythonModel.load_context", "PythonModelContext.__init__",
               "PyFuncModel.__init__", "PyFuncModel.predict"],
    "onnx": ["log_model", "save_model", "load_model"],
    "xgboost": ["log_model", "save_model", "load_model", "autolog"],
    "lightgbm": ["log_model", "save_model", "load_model", "autolog"],
}  # fmt: skip


def _mlflow(module: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"mlflow.{module}")


def _attr(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _params(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [
        (p.name, p.kind, "<callable>" if callable(p.default) else p.default)
        for p in inspect.signature(function).parameters.values()
    ]


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in FUNCTIONS.items() for n in names]
)
def test_functions_take_mlflows_parameters(module: str, name: str) -> None:
    """Every function and method takes MLflow 3.17.2's parameters: same names, same order,
    same kinds (positional or keyword, **kwargs), same defaults (deprecated ``artifact_path``
    included)."""
    ours = _params(_attr(importlib.import_module(f"mlrelay.{module}"), name))
    theirs = _params(_attr(_mlflow(module), name))
    assert [p[:2] for p in ours] == [p[:2] for p in theirs]
    for (param, _, default), (_, _, reference) in zip(ours, theirs, strict=True):
        if (module, name, param) not in DEFAULTS_THAT_DIFFER:
            assert default == reference, param


def test_namespaces_import_no_framework() -> None:
    """Importing every namespace module loads neither MLflow nor any ML framework (they load
    when a model of theirs is saved or read)."""
    code = (
        "import sys, mlrelay.models, mlrelay.sklearn, mlrelay.pyfunc, mlrelay.onnx, "
        "mlrelay.xgboost, mlrelay.lightgbm, mlrelay.models.signature, mlrelay.models.model; "
        "print(sorted(m for m in ('mlflow', 'sklearn', 'xgboost', 'lightgbm', 'onnx', "
        "'onnxruntime', 'numpy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


# --- signatures -------------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "i64": np.arange(3, dtype="int64"),
        "i32": np.arange(3, dtype="int32"),
        "f64": [0.5, 1.5, 2.5],
        "f32": np.array([1, 2, 3], dtype="float32"),
        "text": ["a", "b", "c"],
        "flag": [True, False, True],
        "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "gaps": ["x", None, "z"],
    }
)
INPUTS: dict[str, Any] = {
    "frame": FRAME,
    "numeric frame": pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan]}),
    "series": pd.Series([1.0, 2.0], name="y"),
    "unnamed series": pd.Series([1, 2]),
    "2-d array": np.ones((4, 3)),
    "3-d float32 array": np.zeros((2, 3, 4), dtype="float32"),
    "1-d int array": np.arange(5),
    "string array": np.array(["a", "bc"]),
    "dict of arrays": {"a": np.zeros((2, 3)), "b": np.ones(2, dtype="int32")},
    "dict of scalars": {"a": 1, "b": "x", "c": 2.5, "d": True},
    "dict of lists": {"a": [1, 2], "b": [0.5, 1.5]},
    "list of ints": [1, 2, 3],
    "list of strings": ["a", "b"],
    "mixed list": [1.0, 2],
    "list of lists": [[1, 2], [3, 4]],
    "list of dicts": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
    "string": "hello",
    "int": 3,
    "float": 1.5,
    "bytes": b"x",
}
PARAMS = {"k": 3, "t": 0.5, "s": "x", "b": True, "many": [1.0, 2.0], "f32": np.float32(1)}


def _mlflow_infer(*args: Any, **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found: dict[str, Any] = _mlflow("models").infer_signature(*args, **kwargs).to_dict()
    return found


def _parsed(signature: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if v else None for k, v in signature.items()}


@pytest.mark.parametrize("name", list(INPUTS))
def test_inputs_are_typed_as_mlflow_types_them(name: str) -> None:
    """infer_signature types each kind of input exactly as MLflow's (a DataFrame's int64 is
    long, float64 double, text string, bool boolean, a column with gaps is optional; arrays
    are tensors with a variable first dimension; dicts, lists and scalars as MLflow)."""
    ours = infer_signature(INPUTS[name]).to_dict()
    assert _parsed(ours) == _parsed(_mlflow_infer(INPUTS[name]))


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [("frame", "1-d int array"), ("2-d array", "series"), ("frame", "list of strings")],
)
def test_outputs_and_params_are_typed_as_mlflow_types_them(inputs: str, outputs: str) -> None:
    """Outputs and inference parameters (scalars, lists, numpy scalars) match MLflow's too."""
    ours = infer_signature(INPUTS[inputs], INPUTS[outputs], PARAMS).to_dict()
    assert _parsed(ours) == _parsed(_mlflow_infer(INPUTS[inputs], INPUTS[outputs], PARAMS))


def test_a_signature_reads_mlflows_and_round_trips() -> None:
    """ModelSignature.from_dict reads MLflow's signature block, gives its names and types,
    and writes the same block back."""
    reference = _mlflow_infer(FRAME, np.arange(3), PARAMS)
    signature = ModelSignature.from_dict(reference)
    assert signature.to_dict() == reference
    assert signature.inputs is not None
    assert signature.inputs.input_names()[:3] == ["i64", "i32", "f64"]
    assert signature.inputs.input_types()[:3] == ["long", "integer", "double"]
    assert signature.inputs.optional_input_names() == ["gaps"]
    assert signature.outputs is not None
    assert signature.outputs.is_tensor_spec()
    assert signature.params is not None
    assert [p.name for p in signature.params] == list(PARAMS)
    assert ModelSignature.from_dict(signature.to_dict()) == signature


def test_validate_schema_accepts_what_fits_and_names_what_does_not() -> None:
    """validate_schema passes data a model can take (columns reordered, ints for doubles,
    a dict of columns) and names the missing column or the wrong type."""
    schema = infer_signature(pd.DataFrame({"a": [1], "b": [0.5]})).inputs
    assert schema is not None
    mlrelay.models.validate_schema(pd.DataFrame({"b": [1], "a": [2], "extra": ["x"]}), schema)
    mlrelay.models.validate_schema({"a": [1, 2], "b": [0.5, 0.25]}, schema)
    with pytest.raises(mlrelay.ValidationError, match=r"missing inputs \['b'\]"):
        mlrelay.models.validate_schema(pd.DataFrame({"a": [1]}), schema)
    with pytest.raises(mlrelay.ValidationError, match="'a': the model takes long, got string"):
        mlrelay.models.validate_schema(pd.DataFrame({"a": ["x"], "b": [0.5]}), schema)


# --- model folders ----------------------------------------------------------------------


def _iris() -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    X = frame.drop(columns="target")
    return LogisticRegression(max_iter=500).fit(X, frame["target"]), X


def _mlmodel(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((folder / "MLmodel").read_text())
    return found


@pytest.mark.parametrize("as_array", [False, True], ids=["dataframe", "ndarray"])
def test_sklearn_folders_match_mlflows(tmp_path: Path, as_array: bool) -> None:
    """For the same model and input example, mlrelay.sklearn.save_model writes the signature,
    the input example info, input_example.json and serving_input_example.json that
    mlflow.sklearn.save_model writes (the 1-D prediction of a DataFrame is one long column)."""
    model, X = _iris()
    example = X.to_numpy()[:5] if as_array else X[:5]
    mlrelay.sklearn.save_model(model, tmp_path / "ours", input_example=example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _mlflow("sklearn").save_model(model, tmp_path / "mlflow", input_example=example)
    ours, theirs = _mlmodel(tmp_path / "ours"), _mlmodel(tmp_path / "mlflow")
    assert ours["signature"] == theirs["signature"]
    assert ours["saved_input_example_info"] == theirs["saved_input_example_info"]
    assert ours["model_size_bytes"] > 0
    for file in ("input_example.json", "serving_input_example.json"):
        mine = json.loads((tmp_path / "ours" / file).read_text())
        assert mine == json.loads((tmp_path / "mlflow" / file).read_text()), file
    assert set(ours["flavors"]) == set(theirs["flavors"]) == {"python_function", "sklearn"}


def test_a_logged_model_id_is_recorded_as_mlflow_3_does(tmp_path: Path) -> None:
    """save_model(model_id=...) writes it as the MLmodel's model_id and model_uuid, which
    MLflow's Model reads as the model's id (so a logged model's files can name it)."""
    from mlrelay._formats.models import save_model

    save_model(_iris()[0], tmp_path / "m", model_id="m-0123")
    assert (_mlmodel(tmp_path / "m")["model_id"], _mlmodel(tmp_path / "m")["model_uuid"]) == (
        "m-0123", "m-0123",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _mlflow("models").Model.load(str(tmp_path / "m")).model_id == "m-0123"
    assert mlrelay.models.Model.load(str(tmp_path / "m")).get_model_info().model_uri == (
        "models:/m-0123"
    )


def _mlflow_predict(folder: Path, data: Any, flavor: str = "pyfunc") -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _mlflow(flavor).load_model(str(folder)).predict(data)


class Shout(mlrelay.pyfunc.PythonModel):
    """A PythonModel that reads an artifact in load_context and uses it in predict."""

    def load_context(self, context: mlrelay.pyfunc.PythonModelContext) -> None:
        """Read the suffix artifact."""
        self.suffix = Path(context.artifacts["suffix"]).read_text()

    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[str]:
        """Each text upper-cased, with the suffix (and the params' extra text, if any)."""
        extra = (params or {}).get("extra", "")
        return [f"{t.upper()}{self.suffix}{extra}" for t in model_input["text"]]


def test_a_python_model_with_artifacts_loads_in_both(tmp_path: Path) -> None:
    """A PythonModel saved with artifacts= is MLflow's own format: MLflow's pyfunc and
    mlrelay's load it, copy the artifact into the model, give load_context its local path,
    and predict the same (params reach predict)."""
    (tmp_path / "suffix.txt").write_text("!")
    frame = pd.DataFrame({"text": ["a", "b"]})
    mlrelay.pyfunc.save_model(
        tmp_path / "m", python_model=Shout(), artifacts={"suffix": str(tmp_path / "suffix.txt")},
        input_example=frame,
    )  # fmt: skip
    (tmp_path / "suffix.txt").unlink()  # the model has its own copy
    conf = _mlmodel(tmp_path / "m")["flavors"]["python_function"]
    assert conf["loader_module"] == "mlflow.pyfunc.model"
    assert conf["artifacts"]["suffix"]["path"] == "artifacts/suffix.txt"
    loaded = mlrelay.pyfunc.load_model(str(tmp_path / "m"))
    assert loaded.predict(frame) == ["A!", "B!"] == _mlflow_predict(tmp_path / "m", frame)
    assert loaded.predict(frame, params={"extra": "?"}) == ["A!?", "B!?"]
    assert isinstance(loaded.unwrap_python_model(), Shout)
    signature = _mlmodel(tmp_path / "m")["signature"]
    assert json.loads(signature["outputs"]) == [{"type": "string", "required": True}]


def test_a_loader_module_with_data_and_code_loads_in_both(tmp_path: Path) -> None:
    """loader_module + data_path + code_paths: the data is copied under data/, the code under
    code/, and both MLflow and mlrelay call the module's _load_pyfunc on the data."""
    code = tmp_path / "src" / "doubler_loader.py"
    code.parent.mkdir()
    code.write_text(
        textwrap.dedent(
            """
            class _Model:
                def __init__(self, factor):
                    self.factor = factor
                def predict(self, data, params=None):
                    return data * self.factor
            def _load_pyfunc(path):
                with open(path) as f:
                    return _Model(float(f.read()))
            """
        )
    )
    (tmp_path / "factor.txt").write_text("2")
    mlrelay.pyfunc.save_model(
        tmp_path / "m", loader_module="doubler_loader", data_path=str(tmp_path / "factor.txt"),
        code_paths=[str(code)],
    )  # fmt: skip
    assert (tmp_path / "m" / "data" / "factor.txt").is_file()
    assert (tmp_path / "m" / "code" / "doubler_loader.py").is_file()
    data = np.array([1.0, 2.5])
    try:
        assert list(mlrelay.pyfunc.load_model(str(tmp_path / "m")).predict(data)) == [2.0, 5.0]
        assert list(_mlflow_predict(tmp_path / "m", data)) == [2.0, 5.0]
    finally:
        sys.modules.pop("doubler_loader", None)


def test_code_paths_folders_are_copied_without_pycache(tmp_path: Path) -> None:
    """A code_paths folder (MLflow's pyfunc example passes os.getcwd()) is copied as MLflow
    copies it: without its __pycache__ folders."""
    code = tmp_path / "project"
    (code / "__pycache__").mkdir(parents=True)
    (code / "helpers.py").write_text("X = 1\n")
    (code / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0")
    mlrelay.sklearn.save_model(_iris()[0], tmp_path / "m", code_paths=[str(code)])
    copied = sorted(p.relative_to(tmp_path / "m").as_posix() for p in (tmp_path / "m").rglob("*"))
    assert "code/project/helpers.py" in copied
    assert not [p for p in copied if "__pycache__" in p]


def _boosters() -> dict[str, Any]:
    import lightgbm as lgb
    import xgboost as xgb

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (X["a"] + X["b"] > 0).astype(int)
    return {
        "X": X,
        "xgboost-sklearn": xgb.XGBClassifier(n_estimators=5).fit(X, y),
        "xgboost-booster": xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 5),
        "lightgbm-sklearn": lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y),
        "lightgbm-booster": lgb.train({"verbose": -1}, lgb.Dataset(X, y), 5),
    }


@pytest.mark.parametrize(
    "kind", ["xgboost-sklearn", "xgboost-booster", "lightgbm-sklearn", "lightgbm-booster"]
)
def test_boosters_load_in_both(tmp_path: Path, kind: str) -> None:
    """XGBoost and LightGBM models (scikit-learn API and Boosters) are written in MLflow's
    flavors: MLflow's flavor loader and pyfunc, and mlrelay's, predict like the original."""
    boosters = _boosters()
    model, X = boosters[kind], boosters["X"]
    flavor = kind.split("-")[0]
    module: Any = getattr(mlrelay, flavor)
    module.save_model(model, tmp_path / "m", input_example=X[:3])
    features = xgb_matrix(X) if kind == "xgboost-booster" else X
    expected = model.predict(features)
    for native in (module.load_model(str(tmp_path / "m")), _mlflow_load(tmp_path / "m", flavor)):
        assert type(native) is type(model)
        np.testing.assert_allclose(native.predict(features), expected)
    np.testing.assert_allclose(mlrelay.pyfunc.load_model(str(tmp_path / "m")).predict(X), expected)
    np.testing.assert_allclose(_mlflow_predict(tmp_path / "m", X), expected)


def _mlflow_load(folder: Path, flavor: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _mlflow(flavor).load_model(str(folder))


def xgb_matrix(X: pd.DataFrame) -> Any:
    """X as an XGBoost DMatrix (what a Booster predicts on)."""
    import xgboost as xgb

    return xgb.DMatrix(X)


WITHOUT_MLFLOW = textwrap.dedent(
    """
    import json, sys

    class _NoMlflow:
        def find_spec(self, name, path=None, target=None):
            if name == "mlflow" or name.startswith("mlflow."):
                raise ImportError(f"{name} is made unimportable by the test")
            return None

    sys.meta_path.insert(0, _NoMlflow())
    import pandas as pd
    import mlrelay, mlrelay.pyfunc, mlrelay.sklearn, mlrelay.xgboost, mlrelay.lightgbm

    import io
    folders = json.loads(sys.argv[1])
    X = pd.read_json(io.StringIO(sys.argv[2]), orient="split")
    out = {}
    for name, folder in folders.items():
        try:
            prediction = mlrelay.pyfunc.load_model(folder).predict(X)
            out[name] = [str(v) for v in prediction]
        except mlrelay.ValidationError as exc:
            out[name] = "refused: " + str(exc)
    for flavor in ("sklearn", "xgboost", "lightgbm"):
        native = getattr(mlrelay, flavor).load_model(folders[flavor])
        out[flavor + "-native"] = [str(v) for v in native.predict(X)]
    print(json.dumps(out))
    """
)


def test_models_mlflow_wrote_load_without_mlflow(tmp_path: Path) -> None:
    """Models written by MLflow's own save_model (sklearn and LightGBM in MLflow 3's default
    skops format, XGBoost's ubj, a PythonModel subclass of MLflow's with an artifact) load
    with mlrelay where the mlflow package cannot be imported, and predict like the
    originals; a type-hinted PythonModel, whose pickle needs MLflow's code, is refused with
    an error that says to use MLflow."""
    mlflow_pyfunc = _mlflow("pyfunc")
    with warnings.catch_warnings(record=True):  # MLflow's own "add type hints" advice

        class Tagger(mlflow_pyfunc.PythonModel):  # type: ignore[misc]  # pickled by value
            def load_context(self, context):  # type: ignore[no-untyped-def]
                self.tag = Path(context.artifacts["tag"]).read_text()

            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                return [f"{self.tag}{v:.1f}" for v in model_input["a"]]

        class Hinted(mlflow_pyfunc.PythonModel):  # type: ignore[misc]
            def predict(self, model_input: list[str], params: Any = None) -> list[str]:
                return model_input

    boosters = _boosters()
    X = boosters["X"]
    (tmp_path / "tag.txt").write_text("v=")
    folders = {n: str(tmp_path / n) for n in ("sklearn", "xgboost", "lightgbm", "tagger", "hinted")}
    sk_model = _iris()[0].__class__(max_iter=200).fit(X, (X["a"] > 0).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _mlflow("sklearn").save_model(sk_model, folders["sklearn"])
        _mlflow("xgboost").save_model(boosters["xgboost-sklearn"], folders["xgboost"])
        _mlflow("lightgbm").save_model(boosters["lightgbm-sklearn"], folders["lightgbm"])
        mlflow_pyfunc.save_model(
            folders["tagger"], python_model=Tagger(), artifacts={"tag": str(tmp_path / "tag.txt")}
        )
        mlflow_pyfunc.save_model(folders["hinted"], python_model=Hinted())
    assert _mlmodel(tmp_path / "sklearn")["flavors"]["sklearn"]["serialization_format"] == "skops"
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", WITHOUT_MLFLOW, json.dumps(folders),
         X.to_json(orient="split")],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, model in (
        ("sklearn", sk_model),
        ("xgboost", boosters["xgboost-sklearn"]),
        ("lightgbm", boosters["lightgbm-sklearn"]),
    ):
        expected = [str(v) for v in model.predict(X)]
        assert out[name] == out[f"{name}-native"] == expected, name
    assert out["tagger"] == [f"v={v:.1f}" for v in X["a"]]
    assert out["hinted"].startswith("refused: ")
    assert "mlflow.pyfunc.load_model" in out["hinted"]


_ROOT_PARTS = st.lists(st.sampled_from(["a", "A", "b", "0", "1", "m"]), max_size=3)


@given(st.lists(_ROOT_PARTS.map("/".join), max_size=5))
def test_pyfunc_artifact_roots_follow_mlflows_collision_rule(roots: list[str]) -> None:
    """A PythonModel's artifacts go where MLflow's own rule puts them, for any mix of
    roots: the model folder itself, clashing names (case-insensitive prefixes), and names
    that are already numbers."""
    from mlflow.pyfunc.model import _DownloadedArtifact, _resolve_artifact_path_collisions

    from mlrelay._formats.flavors import artifact_roots

    theirs = [_DownloadedArtifact([str(i)], str(i), Path(), Path(r)) for i, r in enumerate(roots)]
    _resolve_artifact_path_collisions(theirs)
    expected = ["" if a.final_root == Path() else a.final_root.as_posix() for a in theirs]
    assert artifact_roots(roots) == expected
