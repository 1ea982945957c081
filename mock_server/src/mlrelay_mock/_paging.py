"""Page sizes and metric-history reads of the tracking endpoints, worded as MLflow words them.

Each endpoint checks ``max_results`` in its own place in MLflow (the handler's schema, the
handler's body or the SQL store), so each has its own message; MLflow 2.7 words them again
differently. The metric-history helpers serve ``metrics/get-history`` and the UI's
``get-history-bulk`` / ``get-history-bulk-interval``.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from mlrelay_mock._errors import invalid, wrong_type
from mlrelay_mock._fields import Fields
from mlrelay_mock._model import Point
from mlrelay_mock._search import decode_page_token, encode_page_token, page
from mlrelay_mock._sources import remote_host

__all__ = [
    "BULK_MAX_RESULTS",
    "INTERVAL_MAX_RESULTS",
    "SEARCH_MAX_RESULTS",
    "absolute_if_local",
    "bulk_request",
    "experiments_max_results",
    "history_page",
    "interval_max_results",
    "runs_max_results",
    "runs_page_v2",
]

SEARCH_MAX_RESULTS = 50000
BULK_MAX_RESULTS = 25000
INTERVAL_MAX_RESULTS = 2500
_API_DOCS = " See the API docs for more information about request parameters."


def _store_check(value: int, *, v3: bool) -> None:
    """The SQL store's ``_validate_max_results_param`` (MLflow 3) or 2.7's experiment check."""
    if v3:
        if value < 1:
            raise invalid(
                f"Invalid value {value} for parameter 'max_results' supplied. "
                "It must be a positive integer"
            )
        if value > SEARCH_MAX_RESULTS:
            raise invalid(
                f"Invalid value {value} for parameter 'max_results' supplied. "
                f"It must be at most {SEARCH_MAX_RESULTS}"
            )
        return
    if value < 1:
        raise invalid(
            f"Invalid value for max_results. It must be a positive integer, but got {value}"
        )
    if value > SEARCH_MAX_RESULTS:
        raise invalid(
            f"Invalid value for max_results. It must be at most {SEARCH_MAX_RESULTS}, "
            f"but got {value}"
        )


def experiments_max_results(f: Fields, *, v3: bool) -> int:
    """``experiments/search``: absent reads as 0 (a proto default), so it is a 400 too."""
    value = f.int64("max_results", default=0) or 0
    _store_check(value, v3=v3)
    return value


def runs_max_results(f: Fields, *, v3: bool) -> int:
    """``runs/search``: 1000 by default; over 50000 fails the handler's schema check.

    MLflow 3's store then refuses anything below 1. MLflow 2.7 takes 0 (an empty page with a
    token) and a negative size (no limit), which :func:`runs_page_v2` reproduces.
    """
    value = f.int64("max_results", default=1000)
    assert value is not None  # a default is given
    if value > SEARCH_MAX_RESULTS:
        raise wrong_type(f.label("max_results"), f.raw("max_results"), v2=not v3)
    if v3:
        _store_check(value, v3=True)
    return value


def runs_page_v2(
    items: Sequence[Any], token: str | None, max_results: int
) -> tuple[list[Any], str | None]:
    """MLflow 2.7's run pages: a token whenever a page is full (the last one too), since it
    compares the page with ``max_results`` rather than asking for one more row; a negative
    size is SQL's ``LIMIT -1``, no limit."""
    offset = decode_page_token(token)
    end = len(items) if max_results < 0 else offset + max_results
    chunk = list(items[offset:end])
    if len(chunk) != max_results:
        return chunk, None
    return chunk, encode_page_token(offset + max_results)


def history_page(points: list[Point], f: Fields, *, v3: bool) -> tuple[list[Point], str | None]:
    """``metrics/get-history``: MLflow 3 reads the page token whether or not ``max_results`` is
    given and refuses a size below 1; MLflow 2.7 ignores both and answers every point."""
    if not v3:
        return points, None
    token = f.string("page_token")
    if not f.has("max_results"):
        return points[decode_page_token(token) :], None
    size = f.int64("max_results")
    if size is None or size <= 0:
        raise invalid(
            f"Invalid value {size or 0} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    return page(points, token, size)


def interval_max_results(f: Fields) -> int:
    """``get-history-bulk-interval``: between 1 and 2500 (2500 when absent)."""
    value = f.int64("max_results", default=INTERVAL_MAX_RESULTS)
    assert value is not None  # a default is given
    if not 1 <= value <= INTERVAL_MAX_RESULTS:
        raise invalid(f"max_results must be between 1 and {INTERVAL_MAX_RESULTS}.{_API_DOCS}")
    return value


def bulk_request(f: Fields, *, v3: bool) -> tuple[list[str], str, int]:
    """The run ids, metric key and size of a ``get-history-bulk`` request (query string only).

    At most 100 run ids (20 in MLflow 2.7); the size is capped at 25000, and 0 or a negative
    size are taken as MLflow takes them: ``LIMIT 0`` answers nothing, and a negative one is no
    SQL limit followed by Python's ``rows[:size]``, which drops rows from the end.
    """
    run_ids = f.strings("run_id")
    if not run_ids:
        raise invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    limit = 100 if v3 else 20
    if len(run_ids) > limit:
        raise invalid(
            f"GetMetricHistoryBulk request cannot specify more than {limit} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = f.raw("metric_key")
    if key is None:
        raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
    size = f.int64("max_results", default=BULK_MAX_RESULTS)
    assert size is not None  # a default is given
    return run_ids, str(key), min(size, BULK_MAX_RESULTS)


def absolute_if_local(location: str) -> str:
    """A relative local artifact location made absolute against the server's working
    directory, as MLflow's SQL store does (``resolve_uri_if_local``): ``my_dir`` and
    ``file:my_dir`` become ``<cwd>/my_dir`` and ``file:///<cwd>/my_dir``; URIs of other
    schemes, absolute paths, ``file:`` URIs naming a remote host and unparsable URIs are kept
    as given."""
    if not location:
        return location
    try:
        parts = urllib.parse.urlsplit(location)
    except ValueError:  # e.g. an unclosed "[" in the host: MLflow fails with a 500 here
        return location
    if parts.scheme == "":
        path = urllib.request.url2pathname(location)
        if PurePosixPath(path).is_absolute():
            return location
        return Path.cwd().joinpath(path).as_posix()
    if parts.scheme != "file" or remote_host(parts.hostname):
        return location
    path = urllib.request.url2pathname(parts.path)
    if PurePosixPath(path).is_absolute():
        return location
    joined = Path.cwd().joinpath(path).as_posix()
    return urllib.parse.urlunsplit(("file", None, joined, parts.query, parts.fragment))


def registered_models_max_results(f: Fields, *, v3: bool) -> int:
    """``registered-models/search``: 100 by default; over 1000 fails the handler's schema
    check (worded as a type error; 2.7: its store's message); 0 is taken and gives an empty
    page (with a token when there are models), as MLflow answers; a negative size is
    refused."""
    value = f.int64("max_results", default=100)
    assert value is not None  # a default is given
    if value > REGISTERED_MODELS_MAX_RESULTS and not v3:  # 2.7: its store's words
        raise invalid(
            "Invalid value for request parameter max_results. It must be at most "
            f"{REGISTERED_MODELS_MAX_RESULTS}, but got value {value}"
        )
    if value > REGISTERED_MODELS_MAX_RESULTS:
        raise wrong_type(f.label("max_results"), f.raw("max_results"))
    if value < 0:
        raise invalid(f"Invalid value {value} for parameter 'max_results' supplied.")
    return value


def model_versions_max_results(f: Fields, *, v3: bool) -> int:
    """``model-versions/search``: over 200,000 fails the handler's schema check (a type
    error's words); below 1 the store's own message."""
    value = f.int64("max_results", default=MODEL_VERSIONS_MAX_RESULTS)
    assert value is not None  # a default is given
    if value > MODEL_VERSIONS_MAX_RESULTS:
        raise wrong_type(f.label("max_results"), f.raw("max_results"), v2=not v3)
    if value < 1:
        raise invalid(
            f"Invalid value for max_results. It must be a positive integer, but got {value}"
        )
    return value


def logged_models_max_results(f: Fields) -> int:
    """``logged-models/search``: 0 or absent is the default, 50; there is no upper limit."""
    value = f.int64("max_results", default=0) or LOGGED_MODELS_MAX_RESULTS_DEFAULT
    if value < 0:
        raise invalid(f"Invalid value {value} for parameter 'max_results' supplied.")
    return value


REGISTERED_MODELS_MAX_RESULTS = 1000
MODEL_VERSIONS_MAX_RESULTS = 200_000
LOGGED_MODELS_MAX_RESULTS_DEFAULT = 50
