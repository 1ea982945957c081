"""Artifact stores without a network: the choice by URI scheme, the s3:// key layout, the
mapping of boto3's errors onto mlrelay's, and the s3 settings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlrelay
from mlrelay._config import resolve
from mlrelay._stores import Stores
from mlrelay._stores.proxy import ProxyStore
from mlrelay._stores.s3 import S3Connection, S3Store, error_from

URL = "s3://bucket/1/run/artifacts/f.bin"


def _stores(**environ: str) -> Stores:
    return Stores(resolve({"tracking_uri": "http://127.0.0.1:1"}, environ=environ))


def _client_error(code: str, status: int, message: str = "") -> Exception:
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-1"},
    }
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


def test_the_scheme_picks_the_store() -> None:
    """mlflow-artifacts:/ goes through the proxy, s3:// is direct, any other location is
    ArtifactsNotProxiedError naming it."""
    stores = _stores()
    proxied = stores.open("mlflow-artifacts:/1/r/artifacts", None, lambda: False)  # type: ignore[arg-type]
    assert isinstance(proxied, ProxyStore)
    assert stores.is_direct("s3://b/p")
    assert not stores.is_direct("mlflow-artifacts:/1/r/artifacts")
    with pytest.raises(mlrelay.ArtifactsNotProxiedError, match="gs://b/p") as info:
        stores.open("gs://b/p", None, lambda: False)  # type: ignore[arg-type]
    assert "mlrelay[s3]" in str(info.value)


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening an s3:// location without boto3 raises MissingExtraError with the pip command."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(mlrelay.MissingExtraError, match=r"pip install 'mlrelay\[s3\]'") as info:
        _stores().open("s3://b/p", None, lambda: False)  # type: ignore[arg-type]
    assert (info.value.extra, info.value.package) == ("s3", "boto3")


def test_the_proxy_path_imports_no_boto3() -> None:
    """A Client and a proxied location never import boto3 (it is loaded for s3:// only)."""
    code = textwrap.dedent(
        """
        import sys, mlrelay
        c = mlrelay.Client(tracking_uri="http://127.0.0.1:1")
        c._artifact_store("mlflow-artifacts:/1/r/artifacts")
        print(sorted(m for m in ("boto3", "botocore", "s3transfer") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_s3_keys_are_laid_out_as_mlflows() -> None:
    """<bucket>/<prefix> + <path>, slashes normalised; a bucket root has no prefix."""
    connection = S3Connection(client=None, transfer=None, extra_args={})
    store = S3Store(connection, "s3://bucket/direct/1/abc/artifacts/")
    assert (store.bucket, store.prefix) == ("bucket", "direct/1/abc/artifacts")
    assert store.key("a/b.txt") == "direct/1/abc/artifacts/a/b.txt"
    assert store.key("") == "direct/1/abc/artifacts"
    assert S3Store(connection, "s3://bucket").key("/x.txt") == "x.txt"


@pytest.mark.parametrize(
    ("code", "status", "cls", "error_code"),
    [
        ("NoSuchBucket", 404, mlrelay.NotFoundError, "RESOURCE_DOES_NOT_EXIST"),
        ("404", 404, mlrelay.NotFoundError, "RESOURCE_DOES_NOT_EXIST"),
        ("AccessDenied", 403, mlrelay.PermissionDeniedError, "PERMISSION_DENIED"),
        ("InvalidAccessKeyId", 403, mlrelay.AuthenticationError, "UNAUTHENTICATED"),
        ("SlowDown", 503, mlrelay.ServerError, "TEMPORARILY_UNAVAILABLE"),
        ("InvalidRequest", 400, mlrelay.BadRequestError, "BAD_REQUEST"),
    ],
)
def test_s3_answers_map_to_mlflows_codes_and_classes(
    code: str, status: int, cls: type[mlrelay.APIStatusError], error_code: str
) -> None:
    """An S3 error code maps to MLflow's as MLflow's S3 repository maps it, other codes by
    status; the message names the s3:// URL and S3's code."""
    error = error_from(_client_error(code, status, "it failed"), "PUT", URL)
    assert type(error) is cls
    assert isinstance(error, mlrelay.APIStatusError)
    assert (error.status_code, error.error_code, error.request_id) == (status, error_code, "req-1")
    assert URL in str(error)
    assert code in str(error)


def test_boto3s_wrapped_upload_error_is_unwrapped() -> None:
    """boto3 wraps an upload's ClientError in S3UploadFailedError: the ClientError decides."""
    from boto3.exceptions import S3UploadFailedError

    wrapped = S3UploadFailedError("Failed to upload f.bin to bucket/key: NoSuchBucket")
    wrapped.__context__ = _client_error("NoSuchBucket", 404)  # as `raise` in `except` sets it
    assert isinstance(error_from(wrapped, "PUT", URL), mlrelay.NotFoundError)


def test_no_answer_credentials_and_local_errors() -> None:
    """No connection is APIConnectionError (request not sent), a read timeout APITimeoutError,
    no credentials a ConfigurationError naming the variables; an OSError stays itself."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, ReadTimeoutError

    refused = error_from(EndpointConnectionError(endpoint_url="http://x"), "PUT", URL)
    assert type(refused) is mlrelay.APIConnectionError
    assert refused.request_sent is False
    slow = error_from(ReadTimeoutError(endpoint_url="http://x"), "GET", URL)
    assert type(slow) is mlrelay.APITimeoutError
    no_keys = error_from(NoCredentialsError(), "PUT", URL)
    assert type(no_keys) is mlrelay.ConfigurationError
    assert "AWS_ACCESS_KEY_ID" in str(no_keys)
    gone = FileNotFoundError("f.bin")
    assert error_from(gone, "PUT", URL) is gone


def test_s3_settings_parse_and_keep_upload_arguments_secret(tmp_path: Path) -> None:
    """MLflow's s3 variables and mlrelay's transfer sizes resolve; upload arguments are kept
    as a secret, and a bad value's message names the variable without the value."""
    environ = {
        "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000/",
        "MLFLOW_S3_IGNORE_TLS": "true",
        "MLFLOW_S3_UPLOAD_EXTRA_ARGS": '{"SSECustomerKey": "k3y-value"}',
        "MLRELAY_S3_MULTIPART_THRESHOLD": "64M",
        "MLRELAY_S3_MAX_CONCURRENCY": "4",
    }
    s = resolve(environ=environ, cwd=tmp_path)
    assert s.s3_endpoint_url == "http://127.0.0.1:9000"
    assert s.s3_ignore_tls is True
    assert (s.s3_multipart_threshold, s.s3_max_concurrency) == (64 << 20, 4)
    assert "k3y-value" not in repr(s)
    for name, bad in [
        ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '["k3y-value"]'),
        ("MLFLOW_S3_ENDPOINT_URL", "minio:9000"),
        ("MLRELAY_S3_MAX_CONCURRENCY", "0"),
        ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "sideways"),
    ]:
        with pytest.raises(mlrelay.ConfigurationError, match=name) as info:
            resolve(environ={name: bad}, cwd=tmp_path)
        assert "k3y-value" not in str(info.value)
