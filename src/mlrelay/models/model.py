"""``mlrelay.models.model``: MLflow's ``Model`` (an MLmodel file) and ``ModelInfo``.

>>> from mlrelay.models import Model  # doctest: +SKIP
>>> Model.load("runs:/<run_id>/model").signature  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from mlrelay._errors import ValidationError
from mlrelay._formats.schema import ModelSignature, ParamSchema, Schema
from mlrelay._registry import ModelInfo

__all__ = ["Model", "ModelInfo", "get_model_info", "set_signature"]


def _new_uuid() -> str:
    return uuid.uuid4().hex


class Model:
    """An MLflow model's metadata: the content of its MLmodel file, as MLflow's
    ``mlflow.models.Model`` (same constructor arguments, same attributes).

    Keys MLflow does not define (``is_signature_from_type_hint``, ...) are kept as
    attributes and written back by :meth:`to_dict`.
    """

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: Mapping[str, Any] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: Mapping[str, Any] | None = None,
        model_uuid: str | Callable[[], str] | None = _new_uuid,
        mlflow_version: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        model_size_bytes: int | None = None,
        resources: Any = None,
        env_vars: list[str] | None = None,
        auth_policy: Any = None,
        model_id: str | None = None,
        prompts: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = str(utc_time_created or now)
        self.flavors: dict[str, Any] = dict(flavors or {})
        self.signature = signature
        self.saved_input_example_info = (
            dict(saved_input_example_info) if saved_input_example_info is not None else None
        )
        self.model_uuid = model_uuid() if callable(model_uuid) else model_uuid
        self.mlflow_version = mlflow_version
        self.metadata = dict(metadata) if metadata is not None else None
        self.model_size_bytes = model_size_bytes
        self.resources = resources
        self.env_vars = env_vars
        self.auth_policy = auth_policy
        self.model_id = model_id
        self.prompts = prompts
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, as MLflow's

    def __repr__(self) -> str:
        return f"Model(flavors={sorted(self.flavors)}, run_id={self.run_id!r})"

    # --- schemas -----------------------------------------------------------------------

    def get_input_schema(self) -> Schema | None:
        """The signature's inputs, if any."""
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        """The signature's outputs, if any."""
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        """The signature's inference parameters, if any."""
        return self.signature.params if self.signature is not None else None

    def load_input_example(self, path: str | None = None) -> Any:
        """The saved input example (a DataFrame, an array, a dict of arrays), read from the
        model folder ``path``; None when the model has none.

        Raises:
            ValidationError: ``path`` is not given while the model has an example.
        """
        info = self.saved_input_example_info
        if not info:
            return None
        if path is None:
            raise ValidationError("load_input_example needs the model's folder", field="path")
        example = json.loads((Path(path) / info["artifact_path"]).read_text())
        if info.get("type") == "dataframe":
            import pandas as pd

            return pd.DataFrame(example["data"], columns=example["columns"])
        if info.get("type") == "ndarray":
            import numpy as np

            if isinstance(example, dict):
                return {k: np.asarray(v) for k, v in example.items()}
            return np.asarray(example)
        return example

    # --- reading and writing -----------------------------------------------------------

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Add (or replace) a flavor block; returns this model."""
        self.flavors[name] = params
        return self

    def to_dict(self) -> dict[str, Any]:
        """The MLmodel content: every attribute that is set, the signature as its block."""
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_") and v is not None}
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        return out

    def to_json(self) -> str:
        """The MLmodel content as JSON."""
        return json.dumps(self.to_dict())

    def to_yaml(self, stream: IO[str] | None = None) -> str | None:
        """The MLmodel content as YAML (written to ``stream`` if given)."""
        import yaml

        text = str(yaml.safe_dump(self.to_dict(), default_flow_style=False))
        if stream is None:
            return text
        stream.write(text)
        return None

    def save(self, path: str) -> None:
        """Write the MLmodel file to ``path``."""
        Path(path).write_text(str(self.to_yaml()))

    @classmethod
    def from_dict(cls, model_dict: Mapping[str, Any]) -> Model:
        """A model from MLmodel content."""
        content = dict(model_dict)
        signature = content.pop("signature", None)
        content["model_uuid"] = content.get("model_uuid")
        model = cls(**content)
        model.signature = ModelSignature.from_dict(signature) if signature else None
        return model

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Read a model's MLmodel: ``path`` is a local folder or MLmodel file, or a model URI
        (``runs:/``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``models:/<model_id>``), downloaded through the fluent API's client.

        Raises:
            ValidationError: no MLmodel file there.
            NotFoundError: no such model on the server.
        """
        from mlrelay._fluent_models import local_model
        from mlrelay._formats.flavors import read_mlmodel

        return cls.from_dict(read_mlmodel(local_model(str(path))))

    def get_model_info(self, logged_model: Any = None) -> ModelInfo:
        """This model's :class:`ModelInfo` (``model_uri`` is ``models:/<model_id>`` when it
        has one, ``runs:/<run_id>/<artifact_path>`` otherwise); ``logged_model`` (an MLflow
        3 logged model) names the model id when the MLmodel does not."""
        model_id = self.model_id or getattr(logged_model, "model_id", None)
        return ModelInfo.of(
            self.to_dict(), self.run_id or "", self.artifact_path or "", model_id=model_id
        )


def get_model_info(model_uri: str) -> ModelInfo:
    """The :class:`ModelInfo` of the model at ``model_uri`` (see :meth:`Model.load`)."""
    return Model.load(model_uri).get_model_info()


def set_signature(model_uri: str, signature: ModelSignature) -> None:
    """Set (or replace) the signature of a model saved at a local path or logged under a
    run (``runs:/<run_id>/<path>``), by rewriting its MLmodel file.

    Raises:
        ValidationError: another kind of URI: a registered version is immutable (MLflow
            refuses it too) and a logged model's own copy (``models:/<model_id>``) is not
            rewritten by mlrelay.
    """
    from mlrelay._fluent_models import local_model

    if not isinstance(signature, ModelSignature):
        raise ValidationError("signature must be a ModelSignature", field="signature")
    if model_uri.startswith("runs:/"):
        _set_on_run(model_uri, signature)
        return
    if ":/" in model_uri and not model_uri.startswith("file:"):
        raise ValidationError(
            f"set_signature takes a local path or runs:/<run_id>/<path>, got {model_uri!r} "
            "(a registered version cannot be changed; set the signature on its source)",
            field="model_uri",
        )
    folder = local_model(model_uri)
    file = folder if folder.is_file() else folder / "MLmodel"
    model = Model.load(str(folder))
    model.signature = signature
    model.save(str(file))


def _set_on_run(model_uri: str, signature: ModelSignature) -> None:
    from mlrelay._fluent_models import server_id_of
    from mlrelay._pipeline.runs import session

    run_id, _, path = model_uri[len("runs:/") :].partition("/")
    run_id = server_id_of(run_id)
    path = path.strip("/")
    client = session.client("set_signature")
    with tempfile.TemporaryDirectory(prefix="mlrelay-mlmodel-") as tmp:
        file = Path(client.download_artifacts(run_id, f"{path}/MLmodel", tmp))
        model = Model.load(str(file))
        model.signature = signature
        model.save(str(file))
        client.log_artifact(run_id, str(file), path)
