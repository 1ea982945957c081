"""What users are told says what happened: no "rejected" token that was never sent, no
"unreachable" server that accepted the connection, no "in time" for a refused connection,
no sync that never ran, and JSON alone from ``status --json``."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest
from mlrelay_mock import AuthConfig, MockServer

import mlrelay
from mlrelay import cli
from tests._servers import free_port


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_init_without_any_token_says_none_was_found() -> None:
    """init() with no token anywhere says a token is needed, not that it was rejected."""
    with MockServer(prefix="/ann/demo.mlflow", auth=AuthConfig(basic={"ann": "t"})) as server:
        host = server.url.split("/ann/")[0]
        with pytest.raises(mlrelay.AuthenticationError) as raised:
            mlrelay.init("ann", "demo", host=host)
    message = str(raised.value)
    assert "rejected" not in message
    assert "none was found" in message
    assert "DAGSHUB_USER_TOKEN" in message


def test_doctor_on_a_read_timeout_does_not_say_unreachable(
    hung_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts the connection and never answers is a read timeout in doctor."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    code, text = _cli("doctor", "--tracking-uri", f"http://127.0.0.1:{hung_port}")
    assert code == 1
    assert "unreachable" not in text
    assert "accepted the connection but did not answer within 1 s" in text


def test_doctor_on_a_refused_connection_says_unreachable() -> None:
    """Nothing listening: doctor says the server is unreachable."""
    code, text = _cli("doctor", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "FAIL server unreachable" in text


def test_doctor_at_an_address_without_mlflow_names_the_address_problem() -> None:
    """A host that is up without MLflow's API there: doctor says to check the address."""
    with MockServer(prefix="/ann/demo.mlflow") as server:
        code, text = _cli("doctor", "--tracking-uri", server.base_url + "/ann/demo")
    assert code == 1
    assert "no MLflow tracking API" in text
    assert "unreachable" not in text


def test_start_run_with_a_refused_connection_does_not_say_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused connection at start_run is said to be one, not a server late to answer."""
    mlrelay.set_tracking_uri(f"http://127.0.0.1:{free_port()}")
    with pytest.warns(RuntimeWarning) as caught:
        mlrelay.start_run()
    messages = [str(w.message) for w in caught]
    assert any("could not connect to the tracking server for start_run" in m for m in messages)
    assert not any("in time" in m for m in messages)
    mlrelay.end_run()


def test_status_json_without_a_journal_prints_json_only() -> None:
    """`mlrelay status --json` with no journal prints one JSON document and nothing else."""
    code, text = _cli("status", "--json")
    assert code == 0
    assert json.loads(text)["exists"] is False


def test_status_does_not_invent_a_sync() -> None:
    """An offline run that ended (no sync ever ran) is not labelled "left by a sync"."""
    mlrelay.set_tracking_uri("http://127.0.0.1:9", mode="offline")
    with mlrelay.start_run():
        mlrelay.log_metric("m", 1.0)
    mlrelay.flush()
    code, text = _cli("status")
    assert code == 0
    assert "left by a sync" not in text
    assert "no process holds it" in text
