"""Client-side validation: every violation names the field, the key and the limit."""

from __future__ import annotations

import math

import pytest

import mlrelay
from mlrelay import _validation as v


@pytest.mark.parametrize("key", ["a b", "a/b", "a.b-c_d:e", "é", "日本", " ", "x" * 250])
def test_keys_mlflow_accepts_are_accepted(key: str) -> None:
    """Keys the real server accepts (research notes §3) pass unchanged."""
    assert v.validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("a*b", "contains '*'"),
        ("a@b", "contains '@'"),
        ("", "must not be empty"),
        ("x" * 251, "251 characters long; the limit is 250"),
        ("../x", "normalised"),
        ("/abs", "normalised"),
        ("a//b", "normalised"),
        ("a/./b", "normalised"),
        ("a/", "normalised"),
        (".", "normalised"),
    ],
)
def test_keys_mlflow_rejects_raise_with_a_reason(key: str, fragment: str) -> None:
    """Keys the server would reject raise ValidationError explaining why."""
    with pytest.raises(mlrelay.ValidationError, match="metric key") as info:
        v.validate_key(key, field="metric key")
    assert fragment in str(info.value)


def test_non_string_key_is_rejected() -> None:
    """A key that is not a str is a ValidationError, not a crash later."""
    with pytest.raises(mlrelay.ValidationError, match="must be a str"):
        v.validate_key(3)


@pytest.mark.parametrize(
    ("check", "limit", "field"),
    [
        (v.validate_param_value, 6000, "param value"),
        (v.validate_tag_value, 8000, "tag value"),
        (v.validate_experiment_tag_value, 20000, "experiment tag value"),
    ],
)
def test_value_lengths_at_and_over_the_limit(check, limit: int, field: str) -> None:  # type: ignore[no-untyped-def]
    """Exactly at the limit passes; one over names the key, the length and the limit."""
    assert check("k", "x" * limit) == "x" * limit
    with pytest.raises(mlrelay.ValidationError) as info:
        check("lr", "x" * (limit + 1))
    err = info.value
    assert (err.field, err.key, err.limit) == (field, "lr", limit)
    assert f"{limit + 1} characters long; the limit is {limit}" in str(err)


def test_param_values_are_stringified() -> None:
    """Non-string param values are stored as str(value), as MLflow does."""
    assert v.validate_param_value("lr", 0.1) == "0.1"


@pytest.mark.parametrize("value", [1, 1.5, -2.0, math.nan, math.inf, -math.inf])
def test_metric_values_accept_real_numbers(value: float) -> None:
    """Ints, floats, NaN and infinities are valid metric values."""
    out = v.validate_metric_value("m", value)
    assert out == float(value) or (math.isnan(out) and math.isnan(value))


def test_numpy_scalars_are_metric_values() -> None:
    """NumPy scalars count as real numbers."""
    np = pytest.importorskip("numpy")
    assert v.validate_metric_value("m", np.float32(0.5)) == 0.5
    assert v.validate_step("m", np.int64(3)) == 3


@pytest.mark.parametrize("value", [None, [1.0], "abc", "", object(), {"a": 1}])
def test_metric_values_reject_what_mlflow_would_corrupt(value: object) -> None:
    """Bools, strings and other objects raise instead of being stored as 0 or 1."""
    with pytest.raises(mlrelay.ValidationError, match="metric value for key 'm'"):
        v.validate_metric_value("m", value)


@pytest.mark.parametrize("ts", [-1, 1.5, math.nan, math.inf, "1", True, 2**63])
def test_bad_timestamps_are_rejected(ts: object) -> None:
    """Timestamps must be integral, finite, >= 0 and within int64."""
    with pytest.raises(mlrelay.ValidationError, match="timestamp for key 'm'"):
        v.validate_timestamp("m", ts)


def test_integral_float_timestamps_and_negative_steps_are_fine() -> None:
    """1.7e12 as a float is an integral timestamp; steps may be negative."""
    assert v.validate_timestamp("m", 1.7e12) == 1_700_000_000_000
    assert v.validate_step("m", -5) == -5
    assert v.validate_step("m", 2**62) == 2**62


def test_experiment_names() -> None:
    """Experiment names are non-empty and at most 500 characters."""
    assert v.validate_experiment_name("x" * 500)
    for bad in ("", "x" * 501, None):
        with pytest.raises(mlrelay.ValidationError, match="experiment name"):
            v.validate_experiment_name(bad)


def test_values_mlflow_accepts_are_converted_as_float_does() -> None:
    """bool, Decimal, numeric strings, NumPy 0-d and 1-element arrays, and torch-like
    scalars (``.item()`` or ``__float__``) are metric values, converted at the call site."""
    from decimal import Decimal

    np = pytest.importorskip("numpy")

    class TorchLike:
        def item(self) -> float:
            return 0.25

    class FloatLike:
        def __float__(self) -> float:
            return 0.75

    cases = [
        (True, 1.0),
        (Decimal("0.1"), 0.1),
        ("0.5", 0.5),
        ("nan", math.nan),
        (np.array(2.0), 2.0),
        (np.array([3.0]), 3.0),
        (np.int64(4), 4.0),
        (TorchLike(), 0.25),
        (FloatLike(), 0.75),
    ]
    for value, expected in cases:
        got = v.validate_metric_value("m", value)
        assert type(got) is float
        assert got == expected or (math.isnan(expected) and math.isnan(got)), value
    with pytest.raises(mlrelay.ValidationError, match="got ndarray"):
        v.validate_metric_value("m", np.array([1.0, 2.0]))
