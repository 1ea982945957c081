"""``mlrelay.init(owner, repo)``: point the fluent API at a DagsHub repository's MLflow server."""

from __future__ import annotations

import os
import warnings
from typing import Any

from ._config import resolve
from ._credentials import auth_scheme
from ._errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ServerError,
)
from ._pipeline.runs import session

__all__ = ["init"]


def init(
    repo_owner: str,
    repo_name: str | None = None,
    *,
    host: str | None = None,
    token: str | None = None,
    username: str | None = None,
    check_timeout: float = 5.0,
    export_env: bool = False,
    mode: str | None = None,
) -> str:
    """Point the fluent API at a DagsHub repository's MLflow server.

    The tracking URI becomes ``{host}/{owner}/{repo}.mlflow`` (host: argument,
    ``DAGSHUB_CLIENT_HOST``, or ``https://dagshub.com``). The token comes from the
    argument, ``DAGSHUB_USER_TOKEN``, then the usual resolution (``MLFLOW_TRACKING_*``,
    ``.env``, the keyring). With a user name it is sent as Basic ``user:token``,
    otherwise as a Bearer token. Nothing is created, no browser opens, nothing waits for
    input, and ``os.environ`` is left alone unless ``export_env=True``.

    The endpoint is checked once, within ``check_timeout`` seconds: a missing
    repository or a rejected token raises; an unreachable host falls back to logging
    locally (online mode sends later) with one warning.

    Args:
        repo_owner: the owner, or ``"owner/repo"``.
        repo_name: the repository (omit when ``repo_owner`` is ``"owner/repo"``).
        host: the DagsHub host.
        token: the user token.
        username: send the token as Basic ``username:token`` instead of Bearer.
        check_timeout: seconds for the one check of the endpoint.
        export_env: also set ``MLFLOW_TRACKING_*`` in ``os.environ`` (for subprocesses).
        mode: ``online``, ``offline`` (no check, nothing sent; ``mlrelay sync`` later) or
            ``disabled``; default ``MLRELAY_MODE``, else online.

    Returns:
        The tracking URI.

    Raises:
        ConfigurationError: the repository does not exist at that host.
        AuthenticationError, PermissionDeniedError: the token was refused.
    """
    repo_owner, repo_name = _repository(repo_owner, repo_name)
    dagshub = resolve({"keyring": False})  # DAGSHUB_* from the environment or .env
    base = (host or dagshub.dagshub_host or "https://dagshub.com").rstrip("/")
    uri = f"{base}/{repo_owner}/{repo_name}.mlflow"
    stored = dagshub.dagshub_token.get_secret_value() if dagshub.dagshub_token else None
    secret = token or stored
    kwargs: dict[str, Any] = {}
    source = "the environment, .env or keyring"
    if secret:
        source = "the token argument" if token else dagshub.sources["dagshub_token"]
        kwargs = {"username": username, "password": secret} if username else {"token": secret}
    session.configure(uri, kwargs, mode=mode)
    if session.settings().mode != "online":
        return uri
    _check(base, f"{repo_owner}/{repo_name}", source, check_timeout)
    if export_env:
        _export(uri, secret, username)
    return uri


def _repository(repo_owner: str, repo_name: str | None) -> tuple[str, str]:
    if repo_name is not None:
        return repo_owner, repo_name
    if repo_owner.count("/") != 1:
        raise ConfigurationError(
            f"init needs (repo_owner, repo_name) or 'owner/repo', got {repo_owner!r}"
        )
    owner, name = repo_owner.split("/")
    return owner, name


def _check(base: str, repository: str, source: str, timeout: float) -> None:
    """One request to the repository's endpoint: missing or refused raises; down warns."""
    try:
        probe = session.client().with_options(max_retries=0, timeout=timeout)
        next(probe.search_experiments(max_results=1, page_size=1), None)
    except NotFoundError as exc:
        raise ConfigurationError(
            f"no MLflow server for repository {repository} at {base} "
            f"(HTTP {exc.status_code}); check the owner and repository name"
        ) from exc
    except AuthenticationError as exc:
        if auth_scheme(session.settings()) is None:  # nothing was sent to reject
            problem = (
                f"{base} needs a token for {repository} (HTTP {exc.status_code}) and none was "
                "found: pass token=, set DAGSHUB_USER_TOKEN (environment or .env), or store "
                f"one with `mlrelay login --tracking-uri {base}/{repository}.mlflow`"
            )
        else:
            problem = (
                f"{base} rejected the token from {source} for {repository} (HTTP {exc.status_code})"
            )
        raise AuthenticationError(
            problem,
            method=exc.method,
            url=exc.url,
            status_code=exc.status_code,
            error_code=exc.error_code,
            server_message=exc.server_message,
        ) from exc
    except (APIConnectionError, ServerError) as exc:
        warnings.warn(
            f"mlrelay: {base} is unreachable ({exc}); logging continues locally and is sent "
            "when it is back",
            RuntimeWarning,
            stacklevel=3,
        )


def _export(uri: str, secret: str | None, username: str | None) -> None:
    os.environ.setdefault("MLFLOW_TRACKING_URI", uri)
    if secret and username:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", username)
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", secret)
    elif secret:
        os.environ.setdefault("MLFLOW_TRACKING_TOKEN", secret)
