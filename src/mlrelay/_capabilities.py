"""What a tracking server offers, detected once per server and process.

MLflow 2.x servers (DagsHub serves 2.7) lack endpoints MLflow 3 has: logged models,
``server-info``, multipart artifact uploads; some hosts have no model registry at all.
Features that need one of them ask here first and fall back (models as run artifacts
plus ``runs/log-model``, single-PUT uploads) or fail with a clear error, never a raw 404.

Detection costs four small requests, made once per tracking URI per process: a lock per
server keeps concurrent callers from probing it twice, and no lock is held across servers
while one is probed, so a slow server does not hold up lookups for the others.
``mlrelay sync`` records what it found in the journal, so a later sync of the same server
does not probe again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ._errors import APIStatusError, NotFoundError, UnexpectedResponseError
from ._transport import API_PREFIX, HTTPResponse, Transport

__all__ = ["Capabilities", "capabilities_of", "detect", "forget", "remember"]


@dataclass(frozen=True)
class Capabilities:
    """What one server offers.

    Attributes:
        version: what ``/version`` says (``"2.7.1"``), None when it does not say.
        server_info: ``/api/3.0/mlflow/server-info`` exists (MLflow 3).
        logged_models: the logged-model entity exists (MLflow 3's Models view).
        multipart_uploads: large artifacts can be uploaded in parts.
        registry: the model registry exists.
    """

    version: str | None
    server_info: bool
    logged_models: bool
    multipart_uploads: bool
    registry: bool

    @property
    def major(self) -> int | None:
        """The major version, when known."""
        head = (self.version or "").split(".")[0]
        return int(head) if head.isdigit() else None

    def to_json(self) -> str:
        """For the journal."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Capabilities:
        """From the journal."""
        return cls(**json.loads(text))


_cache: dict[str, Capabilities] = {}
_probe_locks: dict[str, threading.Lock] = {}  # one per server, kept for the process
_lock = threading.Lock()  # guards _cache and _probe_locks; never held during a probe


def forget(tracking_uri: str | None = None) -> None:
    """Drop what was detected (for one server, or all): the next use probes again."""
    with _lock:
        if tracking_uri is None:
            _cache.clear()
        else:
            _cache.pop(tracking_uri.rstrip("/"), None)


def _exists(
    transport: Transport,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[bool, HTTPResponse | None]:
    """Whether the route exists: any answer but a route-level 404 (a 404 naming a missing
    resource still proves the route); with the response when it was a success."""
    try:
        response = transport.send(
            method, path, params=params, content=content, headers=headers, idempotent=True
        )
    except NotFoundError as exc:
        return exc.error_code == "RESOURCE_DOES_NOT_EXIST", None
    except APIStatusError as exc:
        return exc.status_code not in (404, 405, 501), None
    except UnexpectedResponseError:  # a write answered by something that is not MLflow
        return False, None
    return True, response


def detect(transport: Transport) -> Capabilities:
    """Probe a server (four requests)."""
    ok, version_response = _exists(transport, "GET", "/version")
    version = None
    if ok and version_response is not None:
        version = version_response.text.strip()[:40] or None
    has_info, info_response = _exists(transport, "GET", "/api/3.0/mlflow/server-info")
    multipart = False
    if has_info and info_response is not None:
        try:
            multipart = bool(info_response.json().get("multipart_uploads_enabled"))
        except ValueError:
            has_info = False  # an HTML page, not the endpoint
    json_headers = {"Content-Type": "application/json"}
    logged_models, _ = _exists(
        transport, "POST", API_PREFIX + "logged-models/search",
        content=b'{"experiment_ids": ["0"], "max_results": 1}', headers=json_headers,
    )  # fmt: skip
    registry, _ = _exists(
        transport, "GET", API_PREFIX + "registered-models/search", params={"max_results": 1}
    )
    return Capabilities(version, has_info, logged_models, multipart, registry)


def capabilities_of(transport: Transport) -> Capabilities:
    """The server's capabilities, probed on first use and cached for the process.

    Concurrent first lookups of one server wait for a single probe; lookups of other
    servers go on meanwhile.
    """
    key = transport.base_url.rstrip("/")
    with _lock:
        found = _cache.get(key)
        if found is not None:
            return found
        probe_lock = _probe_locks.setdefault(key, threading.Lock())
    with probe_lock:
        with _lock:
            found = _cache.get(key)
        if found is None:
            probed = detect(transport)
            with _lock:
                found = _cache.setdefault(key, probed)  # remember() may have come first
        return found


def remember(tracking_uri: str, capabilities: Capabilities) -> None:
    """Seed the cache (from the journal)."""
    with _lock:
        _cache.setdefault(tracking_uri.rstrip("/"), capabilities)
