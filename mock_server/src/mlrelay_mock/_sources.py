"""Model-version sources that are local paths, judged as MLflow's server judges them.

A source without a scheme, or a ``file:`` URI on this host, is local. MLflow takes a local
source only from a run whose artifacts are themselves local (a server started with a
``file:`` artifact root) and only when the path, resolved, lies inside that run's artifact
directory; a ``file:`` URI naming another host is a server error (500).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from mlrelay_mock._errors import MlflowError, invalid

__all__ = ["is_local", "local_path", "outside_run", "remote_host", "within"]


def remote_host(host: str | None) -> bool:
    """Whether a URI's host names another machine (MLflow: not ``.``, ``localhost*`` or
    ``127.0.0.1*``)."""
    if not host:
        return False
    return not (host == "." or host.startswith(("localhost", "127.0.0.1")))


def is_local(uri: str, *, v3: bool = True) -> bool:
    """Whether ``uri`` is a local path (MLflow's ``is_local_uri``); for a ``file:`` URI on
    another host, a 500 as MLflow 3 answers (MLflow 2.7: a 400 refusing file URIs)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "":
        return True
    remote = remote_host(parsed.hostname)
    if parsed.scheme == "file":
        if remote and not v3:
            raise invalid(
                f"Invalid model version source: '{uri}'. MLflow tracking server doesn't allow "
                "using a file URI as a model version source for security reasons. To disable "
                "this check, set the MLFLOW_ALLOW_FILE_URI_AS_MODEL_VERSION_SOURCE environment "
                "variable to True."
            )
        if remote:
            raise MlflowError(
                "INTERNAL_ERROR",
                f"{uri} is not a valid remote uri. For remote access on windows, please "
                "consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).",
            )
        return True
    return False


def local_path(uri: str) -> Path:
    """The file-system path of a local source or ``file:`` URI, resolved."""
    parsed = urllib.parse.urlparse(uri)
    path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri
    return Path(path).resolve()


def within(resolved: Path, root_uri: str) -> bool:
    """Whether the resolved local path lies in the artifact location ``root_uri`` (never,
    when that location is not local)."""
    if not is_local(root_uri):
        return False
    root = local_path(root_uri)
    return root == resolved or root in resolved.parents


def outside_run(source: str) -> MlflowError:
    """The 400 for a local source that no run's local artifact directory contains."""
    return invalid(
        f"Invalid model version source: '{source}'. To use a local path as a model version "
        "source, the run_id request parameter has to be specified and the local path has to "
        "be contained within the artifact directory of the run specified by the run_id."
    )
