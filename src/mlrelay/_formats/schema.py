"""Model signatures as MLflow writes them: schemas, their inference from data, their enforcement.

A signature is three JSON strings in an MLmodel file (``inputs``, ``outputs``, ``params``).
The classes here read and write exactly those strings; :func:`infer_schema` types data as
MLflow 3 does (a DataFrame's int64 column is ``long``, float64 ``double``, text ``string``,
bool ``boolean``, a column with missing values is not ``required``; a numpy array is a tensor
spec with a variable first dimension; a dict of arrays is named tensors; lists and scalars are
columns). :func:`enforce` turns what a user passes to ``predict`` (DataFrame, ndarray, dict,
list, scalar) into what the schema describes, as ``mlflow.pyfunc`` does before calling the
model.

numpy and pandas are imported only when data is looked at.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlrelay._errors import ValidationError

__all__ = [
    "ColSpec",
    "DataType",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "column_type",
    "enforce",
    "infer_param_schema",
    "infer_schema",
    "infer_signature",
    "tensor_dtype",
]


class DataType(str, enum.Enum):
    """MLflow's column types (``DataType.long == "long"``)."""

    string = "string"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    boolean = "boolean"
    binary = "binary"
    datetime = "datetime"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ColSpec:
    """One column: its type (a :class:`DataType` name, ``array`` or ``any``), its name (None
    for an unnamed column), whether it is required, and for arrays the items' type."""

    type: str
    name: str | int | None = None
    required: bool = True
    items: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object MLflow writes for the column."""
        out: dict[str, Any] = {"type": str(self.type)}
        if self.items is not None:
            out["items"] = dict(self.items)
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    def __repr__(self) -> str:
        required = "required" if self.required else "optional"
        kind = f"Array({self.items.get('type')})" if self.items else str(self.type)
        return f"{self.name!r}: {kind} ({required})" if self.name is not None else kind


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: its numpy dtype name, its shape (-1 for a variable dimension), its name."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    @property
    def type(self) -> Any:
        """The numpy dtype (as MLflow's ``TensorSpec.type``)."""
        import numpy as np

        return np.dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object MLflow writes for the tensor."""
        spec = {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}
        return {"name": self.name, **spec} if self.name is not None else spec

    def __repr__(self) -> str:
        text = f"Tensor({self.dtype!r}, {self.shape})"
        return f"{self.name!r}: {text}" if self.name is not None else text


Spec = ColSpec | TensorSpec


def _spec_from_dict(d: Mapping[str, Any]) -> Spec:
    if d.get("type") == "tensor":
        tensor = d["tensor-spec"]
        return TensorSpec(str(tensor["dtype"]), tuple(tensor["shape"]), d.get("name"))
    return ColSpec(str(d["type"]), d.get("name"), bool(d.get("required", True)), d.get("items"))


class Schema:
    """An ordered list of column specs or of tensor specs (never both)."""

    def __init__(self, inputs: Sequence[Spec]) -> None:
        kinds = {type(s) for s in inputs}
        if len(kinds) > 1:
            raise ValidationError(
                "a schema holds column specs or tensor specs, not both", field="schema"
            )
        self.inputs: list[Spec] = list(inputs)

    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.inputs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return repr(self.inputs)

    def is_tensor_spec(self) -> bool:
        """Whether this describes tensors (else columns)."""
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        """Whether every entry is named."""
        return bool(self.inputs) and all(s.name is not None for s in self.inputs)

    def input_names(self) -> list[str | int]:
        """The names, or the positions of unnamed entries."""
        return [s.name if s.name is not None else i for i, s in enumerate(self.inputs)]

    def required_input_names(self) -> list[str | int]:
        """The names of the required columns (every tensor is required)."""
        return [
            n
            for n, s in zip(self.input_names(), self.inputs, strict=True)
            if getattr(s, "required", True)
        ]

    def optional_input_names(self) -> list[str | int]:
        """The names of the columns that may be missing."""
        return [
            n
            for n, s in zip(self.input_names(), self.inputs, strict=True)
            if not getattr(s, "required", True)
        ]

    def input_types(self) -> list[Any]:
        """Each entry's type: a type name for columns, a numpy dtype for tensors."""
        return [s.type for s in self.inputs]

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON list MLflow writes."""
        return [s.to_dict() for s in self.inputs]

    def to_json(self) -> str:
        """The JSON string stored in MLmodel files."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> Schema:
        """Read a schema from its JSON string."""
        return cls([_spec_from_dict(d) for d in json.loads(json_str)])


@dataclass(frozen=True)
class ParamSpec:
    """An inference parameter: its name, type, default and shape (None, or ``(-1,)`` for a
    list)."""

    name: str
    dtype: str
    default: Any
    shape: tuple[int, ...] | None = None

    @property
    def type(self) -> str:
        """The parameter's type name."""
        return self.dtype

    def to_dict(self) -> dict[str, Any]:
        """The JSON object MLflow writes for the parameter."""
        default = self.default
        if isinstance(default, datetime.datetime | datetime.date):
            default = default.isoformat()
        shape = list(self.shape) if self.shape is not None else None
        return {"name": self.name, "default": default, "shape": shape, "type": self.dtype}


class ParamSchema:
    """The inference parameters a model takes (``predict(data, params=...)``)."""

    def __init__(self, params: Sequence[ParamSpec]) -> None:
        self.params = list(params)

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return repr([f"{p.name!r}: {p.dtype} (default: {p.default})" for p in self.params])

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON list MLflow writes."""
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        """The JSON string stored in MLmodel files."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> ParamSchema:
        """Read a parameter schema from its JSON string."""
        return cls(
            [
                ParamSpec(
                    d["name"],
                    d["type"],
                    d.get("default"),
                    tuple(d["shape"]) if d.get("shape") else None,
                )
                for d in json.loads(json_str)
            ]
        )


class ModelSignature:
    """A model's input and output schemas and its inference parameters, as MLflow's
    ``mlflow.models.ModelSignature``; written to the ``signature`` block of MLmodel.

    >>> ModelSignature(Schema([ColSpec("double", "x")])).to_dict()["inputs"]
    '[{"type": "double", "name": "x", "required": true}]'
    """

    def __init__(
        self,
        inputs: Schema | None = None,
        outputs: Schema | None = None,
        params: ParamSchema | None = None,
    ) -> None:
        for name, value, kind in (
            ("inputs", inputs, Schema),
            ("outputs", outputs, Schema),
            ("params", params, ParamSchema),
        ):
            if value is not None and not isinstance(value, kind):
                raise ValidationError(
                    f"ModelSignature {name} must be a {kind.__name__} or None, got "
                    f"{type(value).__name__}",
                    field=name,
                )
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, str | None]:
        """The ``signature`` block of MLmodel: each part as a JSON string, or None."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, signature_dict: Mapping[str, Any]) -> ModelSignature:
        """Read the ``signature`` block of an MLmodel file."""
        inputs, outputs, params = (signature_dict.get(k) for k in ("inputs", "outputs", "params"))
        return cls(
            Schema.from_json(inputs) if inputs else None,
            Schema.from_json(outputs) if outputs else None,
            ParamSchema.from_json(params) if params else None,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict()))

    def __repr__(self) -> str:
        return (
            f"inputs: \n  {self.inputs!r}\noutputs: \n  {self.outputs!r}\n"
            f"params: \n  {self.params!r}\n"
        )


# --- inference -------------------------------------------------------------------------

_OBJECT_SAMPLE = 1000  # values looked at to type an object column


def column_type(data: Any) -> str:
    """MLflow's type name of a pandas column or a 1-D numpy array, as MLflow infers it:
    ``integer`` / ``long`` / ``float`` / ``double`` by size, ``boolean``, ``string``,
    ``binary``, ``datetime``; object columns by their (first 1,000 non-null) values.

    Raises:
        ValidationError: a type MLflow cannot describe either (unsigned 64-bit, mixed
            objects...).
    """
    dtype = data.dtype
    kind, size = dtype.kind, getattr(dtype, "itemsize", 8)
    if kind == "b":
        return "boolean"
    if kind in "iu" and (size < 4 or (kind == "i" and size == 4)):
        return "integer"
    if kind in "iu" and (size < 8 or (kind == "i" and size == 8)):
        return "long"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    if kind == "M":
        return "datetime"
    if kind == "O":
        values = [v for v in list(data[: _OBJECT_SAMPLE * 10]) if v is not None and v == v]
        kinds = {type(v) for v in values[:_OBJECT_SAMPLE]}
        for python_type, name in ((str, "string"), (bytes, "binary"), (bool, "boolean")):
            if kinds <= {python_type}:
                return name
        if kinds <= {int}:
            return "long"
        if kinds <= {int, float}:
            return "double"
    raise ValidationError(
        f"cannot describe values of type {dtype} in an MLflow schema", field="input_example"
    )


def tensor_dtype(dtype: Any) -> str:
    """A tensor spec's dtype as MLflow writes it: the numpy name, flexible sizes dropped
    (``<U10`` is ``str``, ``|S4`` is ``bytes``)."""
    return {"U": "str", "S": "bytes"}.get(dtype.kind) or str(dtype.name)


def _scalar_type(value: Any) -> str:
    """MLflow's type name of one Python or numpy scalar."""
    import numpy as np

    if isinstance(value, np.generic):
        return column_type(np.asarray([value]))
    for python_type, name in (
        (bool, "boolean"),
        (int, "long"),
        (float, "double"),
        (str, "string"),
        (bytes | bytearray, "binary"),
        (datetime.date, "datetime"),
    ):
        if isinstance(value, python_type):
            return name
    raise ValidationError(
        f"cannot describe a value of type {type(value).__name__} in an MLflow schema",
        field="model_input",
    )


def _is_scalar(value: Any) -> bool:
    import numpy as np

    return isinstance(value, str | bytes | bytearray | int | float | datetime.date | np.generic)


def _values_type(values: Sequence[Any]) -> str:
    """One type for a list of scalars: theirs when they agree, ``any`` otherwise."""
    kinds = {_scalar_type(v) for v in values if v is not None}
    return kinds.pop() if len(kinds) == 1 else "any"


def _list_spec(values: Sequence[Any], name: str | int | None) -> ColSpec:
    """A column of lists (``array``) or of scalars."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, list | tuple) for v in present):
        items = [x for v in present for x in v]
        return ColSpec("array", name, len(present) == len(values), {"type": _values_type(items)})
    return ColSpec(_values_type(present), name, len(present) == len(values))


def _frame_schema(frame: Any) -> Schema:
    specs = []
    for column in frame.columns:
        name = column if isinstance(column, str | int) else str(column)
        series = frame[column]
        required = not bool(series.isna().any())
        if series.dtype.kind == "O" and any(isinstance(v, list | tuple) for v in series[:100]):
            specs.append(_list_spec(list(series), name))
        else:
            specs.append(ColSpec(column_type(series), name, required))
    return Schema(specs)


def _tensor(array: Any, name: str | None = None) -> TensorSpec:
    return TensorSpec(tensor_dtype(array.dtype), (-1, *array.shape[1:]), name)


def _dict_schema(data: Mapping[str, Any]) -> Schema:
    import numpy as np

    if data and all(isinstance(v, np.ndarray) for v in data.values()):
        return Schema([_tensor(v, str(k)) for k, v in data.items()])
    specs = []
    for key, value in data.items():
        if isinstance(value, list | tuple):
            specs.append(_list_spec([value], str(key)))
        else:
            specs.append(ColSpec(_scalar_type(value), str(key), value is not None))
    return Schema(specs)


def _records_schema(records: Sequence[Mapping[str, Any]]) -> Schema:
    names: list[str] = []
    for record in records:
        names.extend(k for k in record if k not in names)
    specs = []
    for name in names:
        values = [r.get(name) for r in records]
        specs.append(_list_spec(values, name))
    return Schema(specs)


def infer_schema(data: Any) -> Schema:
    """The schema MLflow infers for ``data``: a DataFrame or Series, a numpy array, a dict
    (of arrays: named tensors; of scalars or lists: named columns), a list (of dicts:
    columns by key; of scalars or lists: one column) or a scalar.

    Raises:
        ValidationError: data MLflow cannot describe either (an empty list, unknown types).
    """
    import numpy as np

    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        return _frame_schema(data)
    if module.startswith("pandas") and hasattr(data, "dtype"):
        name = data.name if isinstance(data.name, str | int) else None
        return Schema([ColSpec(column_type(data), name, not bool(data.isna().any()))])
    if isinstance(data, np.ndarray):
        return Schema([_tensor(data)])
    if isinstance(data, Mapping):
        return _dict_schema(data)
    if isinstance(data, list | tuple):
        if not data:
            raise ValidationError("cannot infer a schema from an empty list", field="model_input")
        if all(isinstance(v, Mapping) for v in data):
            return _records_schema(data)
        return Schema([_list_spec(list(data), None)])
    if _is_scalar(data):
        return Schema([ColSpec(_scalar_type(data), None, True)])
    raise ValidationError(
        f"cannot infer an MLflow schema from {type(data).__name__}: pass a pandas DataFrame or "
        "Series, a numpy array, a dict, a list or a scalar",
        field="model_input",
    )


def infer_param_schema(params: Mapping[str, Any]) -> ParamSchema:
    """The inference parameters' schema: each value's type, its default, a shape for lists.

    Raises:
        ValidationError: a parameter that is None, bytes, or not a scalar or a flat list.
    """
    specs = []
    for name, value in params.items():
        shape = None
        sample = value
        if isinstance(value, list | tuple):
            shape, sample = (-1,), (value[0] if value else None)
        if sample is None or isinstance(sample, bytes | bytearray) or not _is_scalar(sample):
            raise ValidationError(
                f"parameter {name!r}: MLflow takes scalars (not bytes) or flat lists of them as "
                f"inference parameters, got {type(value).__name__}",
                field="params",
            )
        dtype = _scalar_type(sample) if shape is None else _values_type(list(value))
        default = value.item() if hasattr(value, "item") else value
        specs.append(ParamSpec(str(name), dtype, list(default) if shape else default, shape))
    return ParamSchema(specs)


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: Mapping[str, Any] | None = None
) -> ModelSignature:
    """A signature from example inputs, outputs and parameters, as
    ``mlflow.models.infer_signature`` infers it (any part may be None)."""
    return ModelSignature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
        infer_param_schema(params) if params else None,
    )


def prediction_schema(input_schema: Schema, prediction: Any) -> Schema:
    """The output schema of a prediction made on a column-based input: a 1-D array there
    is one column per row (MLflow's rule), anything else is typed as it is."""
    import numpy as np

    one_dimensional = isinstance(prediction, np.ndarray) and prediction.ndim == 1
    if one_dimensional and not input_schema.is_tensor_spec():
        import pandas as pd

        prediction = pd.Series(prediction)
    return infer_schema(prediction)


# --- enforcement -----------------------------------------------------------------------


def _as_frame(data: Any, schema: Schema) -> Any:
    """Column-based input as a DataFrame (as MLflow builds one from each input type)."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return pd.DataFrame(data)
    if _is_scalar(data):
        return pd.DataFrame([data])
    if isinstance(data, Mapping):
        if all(_is_scalar(v) or v is None for v in data.values()):
            return pd.DataFrame([data])
        return pd.DataFrame(
            {k: v.tolist() if getattr(v, "ndim", 1) > 1 else v for k, v in data.items()}
        )
    if isinstance(data, list | tuple | np.ndarray):
        frame = pd.DataFrame(list(data) if isinstance(data, tuple) else data)
        names = schema.input_names()
        if schema.has_input_names() and list(frame.columns) == list(range(len(names))):
            frame.columns = names  # positional rows: the schema names the columns
        return frame
    raise ValidationError(
        f"this model takes columns: pass a DataFrame, a dict, a list or an array, got "
        f"{type(data).__name__}",
        field="model_input",
    )


_NUMPY_OF = {"integer": "int32", "long": "int64", "float": "float32", "double": "float64"}
_NUMBERS = {"integer", "long", "float", "double"}
_ACCEPTS = {
    "integer": {"integer"},
    "long": {"integer", "long"},
    "float": _NUMBERS,
    "double": _NUMBERS,
}


def _conform(spec: ColSpec, column: Any, series: Any) -> Any:
    """A column read as the spec's type: integers as floats where floats are expected (as
    MLflow), whole floats as integers (a row of a numeric array); anything else that does
    not match is refused, naming both types."""
    wanted = str(spec.type)
    if wanted in ("any", "array") or not len(series):
        return series
    try:
        found = column_type(series.dropna()) if series.dtype.kind == "O" else column_type(series)
    except ValidationError:
        found = str(series.dtype)
    target = _NUMPY_OF.get(wanted)
    if found in _ACCEPTS.get(wanted, {wanted}):
        return series.astype(target) if target and series.dtype.kind in "iu" else series
    whole = found in ("float", "double") and bool(series.notna().all() and (series % 1 == 0).all())
    if target and wanted in ("integer", "long") and whole:
        return series.astype(target)
    raise ValidationError(
        f"input column {column!r}: the model takes {wanted}, got {found}", field="model_input"
    )


def _enforce_columns(data: Any, schema: Schema) -> Any:
    frame = _as_frame(data, schema)
    if schema.has_input_names():
        missing = [n for n in schema.required_input_names() if n not in frame.columns]
        if missing:
            raise ValidationError(f"the model is missing inputs {missing}", field="model_input")
        present = [n for n in schema.input_names() if n in frame.columns]
        frame = frame[present].copy()
        pairs = [
            (s, n) for s, n in zip(schema.inputs, schema.input_names(), strict=True) if n in present
        ]
    elif len(frame.columns) < len(schema.inputs):
        raise ValidationError(
            f"the model takes {len(schema.inputs)} columns, the input has {len(frame.columns)}",
            field="model_input",
        )
    else:
        pairs = list(zip(schema.inputs, frame.columns[: len(schema.inputs)], strict=True))
    for spec, column in pairs:
        assert isinstance(spec, ColSpec)
        frame[column] = _conform(spec, column, frame[column])
    return frame


def _cast(array: Any, dtype: str) -> Any:
    import numpy as np

    wanted = np.dtype(dtype)
    if array.dtype != wanted and np.can_cast(array.dtype, wanted, casting="same_kind"):
        return array.astype(wanted)
    if array.dtype.kind in "iu" and wanted.kind == "f":
        return array.astype(wanted)
    return array


def _to_array(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "to_numpy"):
        return value.to_numpy()
    return np.asarray(value)


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    specs = [s for s in schema.inputs if isinstance(s, TensorSpec)]
    if schema.has_input_names():
        if hasattr(data, "columns"):
            data = {c: data[c].to_numpy() for c in data.columns}
        if not isinstance(data, Mapping):
            if len(specs) != 1:
                raise ValidationError(
                    f"the model takes named tensors {schema.input_names()}: pass a dict",
                    field="model_input",
                )
            data = {specs[0].name: data}
        missing = [s.name for s in specs if s.name not in data]
        if missing:
            raise ValidationError(f"the model is missing inputs {missing}", field="model_input")
        return {s.name: _cast(_to_array(data[s.name]), s.dtype) for s in specs}
    if isinstance(data, Mapping):
        raise ValidationError("the model takes one unnamed tensor, not a dict", field="model_input")
    return _cast(_to_array(data), specs[0].dtype)


def enforce(data: Any, schema: Schema | None) -> Any:
    """``data`` shaped as ``schema`` describes, as ``mlflow.pyfunc`` does before predicting:
    columns become a DataFrame (in the schema's order, extra columns dropped, integer
    columns read as floats where floats are expected; a 2-D array's columns take the
    schema's names), tensors become arrays of the schema's dtype. Without a schema, a dict
    of columns becomes a DataFrame and anything else is passed as it is.

    Raises:
        ValidationError: a required input is missing, or the input cannot take that shape.
    """
    if schema is None or not schema.inputs:
        if isinstance(data, Mapping) and not all(_is_scalar(v) for v in data.values()):
            import pandas as pd

            return pd.DataFrame(data)
        return data
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)
