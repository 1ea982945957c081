"""Direct ``s3://`` artifacts with boto3 (the ``mlrelay[s3]`` extra), stored as MLflow's
``S3ArtifactRepository`` stores them, so either client reads what the other wrote.

- Keys: ``s3://<bucket>/<prefix>`` + ``/<artifact_path>/<file name>``; a file's
  Content-Type (and Content-Encoding) guessed from its name.
- Settings, MLflow's variables: ``MLFLOW_S3_ENDPOINT_URL`` (AWS when unset),
  ``MLFLOW_S3_IGNORE_TLS``, ``MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE``,
  ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``. Credentials and region come from boto3's own chain
  (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
  ``AWS_PROFILE``, ``~/.aws``, an instance role...): mlrelay never reads nor holds them.
- Transfers are boto3's managed transfers (``upload_file`` / ``download_file``): streamed
  from and to disk in bounded memory, in parts from ``MLRELAY_S3_MULTIPART_THRESHOLD``
  with up to ``MLRELAY_S3_MAX_CONCURRENCY`` parts in flight; botocore's standard retry
  mode retries each request (each part) up to ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` times,
  each bounded by ``MLFLOW_HTTP_REQUEST_TIMEOUT``. A download lands under a temporary
  name and is renamed when complete.
- Errors are mlrelay's: an S3 error code maps to MLflow's (as MLflow's repository maps
  them) and so to an :class:`~mlrelay.APIStatusError` class; no answer is an
  :class:`~mlrelay.APIConnectionError` (the pipeline keeps the file for later); no
  credentials, or an untrusted certificate, a :class:`~mlrelay.ConfigurationError`.
  Messages name the ``s3://`` location, never a credential.

boto3 is imported by :func:`connect`, the first time an ``s3://`` location is opened.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlrelay._errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    TLSVerificationError,
    status_error,
)
from mlrelay._protocol.entities import FileInfo
from mlrelay._stores.common import UPLOAD_WORKERS, artifact_target, progress

if TYPE_CHECKING:
    from mlrelay._config import Settings

__all__ = ["S3Connection", "S3Store", "connect", "error_from"]

_MLFLOW_CODES = {
    "AccessDenied": "PERMISSION_DENIED",
    "NoSuchBucket": "RESOURCE_DOES_NOT_EXIST",
    "NoSuchKey": "RESOURCE_DOES_NOT_EXIST",
    "InvalidAccessKeyId": "UNAUTHENTICATED",
    "SignatureDoesNotMatch": "UNAUTHENTICATED",
    # HEAD answers carry no body: botocore reports the bare status as the code.
    "403": "PERMISSION_DENIED",
    "404": "RESOURCE_DOES_NOT_EXIST",
}
"""S3's error codes -> MLflow's (``BOTO_TO_MLFLOW_ERROR`` in MLflow's S3 repository); other
codes are classed by their HTTP status."""

_CREDENTIALS_HELP = (
    "boto3 found no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(and AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE, or run where an instance "
    "role applies"
)


def connect(settings: Settings) -> S3Connection:
    """A boto3 S3 client and transfer settings from ``settings`` (endpoint, TLS, addressing,
    retries, timeouts, part sizes); credentials and region from boto3's default chain.

    Raises:
        ImportError: boto3 is not installed.
        ConfigurationError: ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` names an argument boto3's
            uploads do not take.
    """
    import boto3
    from boto3.s3.transfer import S3Transfer, TransferConfig
    from botocore.config import Config

    extra_args = _upload_extra_args(settings, S3Transfer.ALLOWED_UPLOAD_ARGS)
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing_style},
        retries={"mode": "standard", "max_attempts": settings.max_retries + 1},
        connect_timeout=min(settings.timeout, 10.0),
        read_timeout=settings.timeout,
        # Parts of several files at once (log_artifacts) each hold a connection.
        max_pool_connections=settings.s3_max_concurrency * UPLOAD_WORKERS,
    )
    with _mapped("connecting to", settings.s3_endpoint_url or "S3"):  # a missing AWS_PROFILE
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            verify=False if settings.s3_ignore_tls else None,
            config=config,
        )
    transfer = TransferConfig(
        multipart_threshold=settings.s3_multipart_threshold,
        multipart_chunksize=settings.s3_multipart_chunksize,
        max_concurrency=settings.s3_max_concurrency,
        use_threads=True,
    )
    return S3Connection(client, transfer, extra_args)


def _upload_extra_args(settings: Settings, allowed: list[str]) -> dict[str, Any]:
    """``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` as a dict, its names checked (its values may be keys,
    so they are never shown)."""
    if settings.s3_upload_extra_args is None:
        return {}
    extra: dict[str, Any] = json.loads(settings.s3_upload_extra_args.get_secret_value())
    unknown = sorted(set(extra) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"MLFLOW_S3_UPLOAD_EXTRA_ARGS ({settings.sources['s3_upload_extra_args']}) names "
            f"{', '.join(unknown)}, which boto3's upload_file does not take; it takes "
            f"{', '.join(sorted(allowed))}"
        )
    return extra


class S3Connection:
    """One boto3 client and its transfer settings, shared by every ``s3://`` location of
    a ``Client``."""

    def __init__(self, client: Any, transfer: Any, extra_args: dict[str, Any]) -> None:
        self.client = client
        self.transfer = transfer
        self.extra_args = extra_args

    def store(self, artifact_uri: str) -> S3Store:
        """The store of one ``s3://bucket/prefix`` location."""
        return S3Store(self, artifact_uri)

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()


class S3Store:
    """One ``s3://<bucket>/<prefix>`` location, read and written as MLflow does."""

    def __init__(self, connection: S3Connection, artifact_uri: str) -> None:
        parts = urlsplit(artifact_uri)
        self.artifact_uri = artifact_uri
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._s3 = connection

    def key(self, path: str) -> str:
        """The object key of ``path`` below the location."""
        return "/".join(p for p in (self.prefix, path.strip("/")) if p)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def upload_file(self, local: Path, artifact_path: str | None) -> None:
        """Upload one file with boto3's ``upload_file``: one PUT, or parts from the
        multipart threshold; safe to repeat (S3 overwrites whole objects)."""
        key = self.key(artifact_target(local.name, artifact_path))
        content_type, encoding = mimetypes.guess_type(local.name)
        extra = {"ContentType": content_type, "ContentEncoding": encoding}
        extra = {k: v for k, v in extra.items() if v is not None} | self._s3.extra_args
        bar = progress(f"uploading {local.name}", local.stat().st_size)
        try:
            with _mapped("PUT", self._url(key)):
                self._s3.client.upload_file(
                    Filename=str(local), Bucket=self.bucket, Key=key, ExtraArgs=extra,
                    Config=self._s3.transfer, Callback=None if bar is None else bar.update,
                )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()

    def list_dir(self, path: str) -> list[FileInfo]:
        """The files and folders directly below ``path``, from ``list_objects_v2`` pages
        with ``/`` as delimiter (folders are common prefixes; folder markers skipped)."""
        folder = self.key(path)
        prefix = f"{folder}/" if folder else ""
        start = len(self.prefix) + 1 if self.prefix else 0
        found = []
        with _mapped("GET", self._url(prefix)):
            pages = self._s3.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                found += [
                    FileInfo(path=p["Prefix"][start:].rstrip("/"), is_dir=True, file_size=None)
                    for p in page.get("CommonPrefixes", [])
                ]
                found += [
                    FileInfo(path=o["Key"][start:], is_dir=False, file_size=int(o["Size"]))
                    for o in page.get("Contents", [])
                    if not (o["Key"].endswith("/") and int(o["Size"]) == 0)
                ]
        return sorted(found, key=lambda f: f.path)

    def download_file(self, path: str, target: Path) -> None:
        """Download one file with boto3's ``download_file`` (parts in parallel for a large
        one; a temporary name, renamed when complete).

        Raises:
            NotFoundError: there is no object at ``path``.
        """
        key = self.key(path)
        with _mapped("GET", self._url(key)):
            self._s3.client.download_file(
                Bucket=self.bucket, Key=key, Filename=str(target), Config=self._s3.transfer
            )


@contextlib.contextmanager
def _mapped(method: str, url: str) -> Iterator[None]:
    """Raise boto3's and botocore's errors as mlrelay's (see :func:`error_from`)."""
    try:
        yield
    except Exception as exc:
        translated = error_from(exc, method, url)
        if translated is exc:
            raise
        raise translated from exc


def error_from(exc: Exception, method: str, url: str) -> Exception:
    """mlrelay's error for a failed S3 request (``exc`` itself when it is not boto3's,
    such as an OSError reading the local file)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        CredentialRetrievalError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
        SSLError,
    )

    cause: BaseException = exc
    if type(exc).__name__ == "S3UploadFailedError" and exc.__context__ is not None:
        cause = exc.__context__  # boto3 wraps the ClientError of a failed upload
    if isinstance(cause, ClientError):
        return _client_error(cause.response, method, url)
    if isinstance(cause, SSLError):
        return TLSVerificationError(
            f"{method} {url}: the S3 endpoint's TLS certificate is not trusted ({cause}); "
            "set AWS_CA_BUNDLE to its CA bundle, or MLFLOW_S3_IGNORE_TLS=true to skip the check",
            method=method,
            url=url,
        )
    if isinstance(
        cause,
        NoCredentialsError | PartialCredentialsError | CredentialRetrievalError | ProfileNotFound,
    ):
        return ConfigurationError(f"{method} {url}: {_CREDENTIALS_HELP} ({cause})")
    if isinstance(cause, ReadTimeoutError | ConnectTimeoutError):
        return APITimeoutError(
            f"{method} {url} got no answer in time: {cause}",
            method=method,
            url=url,
            request_sent=isinstance(cause, ReadTimeoutError),
        )
    if isinstance(cause, EndpointConnectionError):
        return APIConnectionError(
            f"{method} {url}: cannot connect to the S3 endpoint: {cause}",
            method=method,
            url=url,
            request_sent=False,
        )
    if isinstance(cause, BotoCoreError) or type(cause).__module__.split(".")[0] in _LIBRARIES:
        return APIConnectionError(f"{method} {url} failed: {cause}", method=method, url=url)
    return exc


_LIBRARIES = frozenset({"boto3", "botocore", "s3transfer", "urllib3"})


def _client_error(response: dict[str, Any], method: str, url: str) -> Exception:
    """The error for an S3 answer with an error status."""
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "")
    status = int(meta.get("HTTPStatusCode") or (int(code) if code.isdigit() else 500))
    detail = str(error.get("Message") or "").strip()
    return status_error(
        method=method,
        url=url,
        status_code=status,
        error_code=_MLFLOW_CODES.get(code),
        server_message=f"{code}: {detail}" if detail and not code.isdigit() else detail or code,
        request_id=meta.get("RequestId") or None,
    )
