"""A server whose TLS certificate is not trusted: a configuration error naming the setting
that fixes it, never retried as an outage; the pipeline stops sending and keeps the data."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import mlrelay
from mlrelay._errors import TLSVerificationError
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.pipeline import Pipeline
from mlrelay._protocol.batches import KIND_METRIC
from tests._timing import deadline


@dataclass
class TLSServer:
    """A loopback HTTPS server with a self-signed certificate that answers ``{}``."""

    url: str
    ca_file: Path
    handshakes: list[int]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    """An HTTPS server on 127.0.0.1 whose certificate no default trust store holds."""
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    handshakes: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps({}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):  # type: ignore[no-untyped-def]
            sock, addr = super().get_request()
            handshakes.append(1)
            return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TLSServer(f"https://127.0.0.1:{server.server_address[1]}", cert_file, handshakes)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(deadline(10))


def test_untrusted_certificate_is_a_configuration_error_naming_the_setting(
    tls_server: TLSServer,
) -> None:
    """The Client raises TLSVerificationError (a ConfigurationError) at once, not retried."""
    started = time.monotonic()
    with (
        mlrelay.Client(tracking_uri=tls_server.url, max_retries=5) as client,
        pytest.raises(mlrelay.ConfigurationError) as raised,
    ):
        client.get_experiment("0")
    assert isinstance(raised.value, TLSVerificationError)
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in str(raised.value)
    assert "certificate" in str(raised.value)
    assert len(tls_server.handshakes) == 1, "a certificate failure must not be retried"
    assert time.monotonic() - started < deadline(5)


def test_the_named_setting_fixes_it(tls_server: TLSServer) -> None:
    """With MLFLOW_TRACKING_SERVER_CERT_PATH set to the CA, the same call succeeds."""
    with mlrelay.Client(
        tracking_uri=tls_server.url, server_cert_path=str(tls_server.ca_file)
    ) as client:
        client.send_log_batch(b'{"run_id": "r"}')


def test_start_run_raises_the_configuration_error(tls_server: TLSServer) -> None:
    """start_run against an untrusted server says which setting fixes it instead of going
    on as if the server were down."""
    mlrelay.set_tracking_uri(tls_server.url)
    with pytest.raises(TLSVerificationError, match="MLFLOW_TRACKING_SERVER_CERT_PATH"):
        mlrelay.start_run()


def test_pipeline_stops_sending_and_keeps_the_entries(
    tls_server: TLSServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sender stops at the first certificate failure, says so once, keeps every entry."""
    journal = Journal(tmp_path / "journal.db")
    local_id = uuid.uuid4().hex
    journal.add_run(
        local_id=local_id,
        tracking_uri=tls_server.url,
        experiment_id="0",
        experiment_name=None,
        run_name=None,
        start_time=1_700_000_000_000,
        create_tags={},
    )
    clients: list[mlrelay.Client] = []

    def factory(uri: str) -> mlrelay.Client:
        clients.append(mlrelay.Client(tracking_uri=uri))
        return clients[-1]

    pipeline = Pipeline(journal, factory)
    try:
        with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
            for i in range(50):
                pipeline.log((local_id, KIND_METRIC, "m", float(i), 1_700_000_000_000 + i, i))
            assert not pipeline.flush(timeout=deadline(10))
        warnings = [r.getMessage() for r in caplog.records if "certificate" in r.getMessage()]
        assert len(warnings) == 1, caplog.text
        assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in warnings[0]
        assert "Sending stopped" in warnings[0]
        assert not any(r.exc_info for r in caplog.records), "no traceback"
        assert pipeline.pending() == 50
        assert journal.count_rejected(local_id) == 0, "nothing is set aside as rejected"
    finally:
        pipeline.close(0)
        for c in clients:
            c.close()
        journal.close()
