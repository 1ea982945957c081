"""Fault injection: each rule action demonstrably fires, from Python and over HTTP."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from mlrelay_mock import FaultController, MockServer

from tests._timing import deadline

API = "/api/2.0/mlflow/"


def _experiment(client: httpx.Client) -> httpx.Response:
    return client.get(API + "experiments/get", params={"experiment_id": "0"})


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_503_three_times_then_success(mock_server: MockServer) -> None:
    """A rule with times=3 answers 503 three times, then the request goes through."""
    rule = mock_server.faults.add("status", path="*/experiments/get", status=503, times=3)
    with httpx.Client(base_url=mock_server.url) as client:
        statuses = [_experiment(client).status_code for _ in range(5)]
        body = client.get(API + "experiments/get", params={"experiment_id": "0"})
    assert statuses == [503, 503, 503, 200, 200]
    assert body.json()["experiment"]["name"] == "Default"
    assert [r.hits for r in mock_server.faults.rules if r.id == rule.id] == [3]
    assert [e.fault for e in mock_server.requests][:4] == ["status"] * 3 + [None]


def test_503_body_is_mlflow_shaped(mock_server: MockServer) -> None:
    """An injected 503 carries MLflow's error body with TEMPORARILY_UNAVAILABLE."""
    mock_server.faults.add("status", status=503, times=1)
    with httpx.Client(base_url=mock_server.url) as client:
        r = _experiment(client)
    assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_429_with_retry_after(mock_server: MockServer) -> None:
    """A 429 rule sends Retry-After: 2 and a REQUEST_LIMIT_EXCEEDED body."""
    mock_server.faults.add("status", method="GET", status=429, retry_after=2, times=1)
    with httpx.Client(base_url=mock_server.url) as client:
        limited = _experiment(client)
        after = _experiment(client)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert after.status_code == 200


def test_custom_body_and_method_filter(mock_server: MockServer) -> None:
    """A rule only matches its method, and sends the body it was given."""
    mock_server.faults.add("status", method="POST", status=502, body="bad gateway")
    with httpx.Client(base_url=mock_server.url) as client:
        assert _experiment(client).status_code == 200
        r = client.post(API + "experiments/create", json={"name": "x"})
    assert (r.status_code, r.text) == (502, "bad gateway")


@pytest.mark.slow
def test_two_second_latency(mock_server: MockServer) -> None:
    """A latency rule delays the answer by 2 s and then serves it normally."""
    mock_server.faults.add("latency", delay=2.0, times=1)
    with httpx.Client(base_url=mock_server.url, timeout=deadline(10)) as client:
        started = time.monotonic()
        r = _experiment(client)
        elapsed = time.monotonic() - started
        quick_started = time.monotonic()
        _experiment(client)
        quick = time.monotonic() - quick_started
    assert r.status_code == 200
    assert elapsed >= 2.0
    assert quick < 2.0  # not delayed: a delayed answer takes 2 s or more by construction


def test_connection_reset(mock_server: MockServer) -> None:
    """A reset rule aborts the connection: the client sees a connection error, no response."""
    mock_server.faults.add("reset", times=1)
    with httpx.Client(base_url=mock_server.url) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            _experiment(client)
        assert _experiment(client).status_code == 200
    assert mock_server.requests[0].fault == "reset"
    assert mock_server.requests[0].status is None


def test_drop_closes_without_answer(mock_server: MockServer) -> None:
    """A drop rule closes the connection without sending any response."""
    mock_server.faults.add("drop", times=1)
    with httpx.Client(base_url=mock_server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            _experiment(client)
        assert _experiment(client).status_code == 200


def test_lose_response_commits_then_drops(mock_server: MockServer) -> None:
    """lose_response lets the server commit the write, then drops the connection unanswered."""
    mock_server.faults.add("lose_response", path="*/experiments/create", times=1)
    with httpx.Client(base_url=mock_server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(API + "experiments/create", json={"name": "lost"})
        again = client.post(API + "experiments/create", json={"name": "lost"})
        found = client.get(API + "experiments/get-by-name", params={"experiment_name": "lost"})
    assert again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert found.status_code == 200
    lost = mock_server.requests[0]
    assert (lost.fault, lost.status, lost.json) == ("lose_response", 200, {"name": "lost"})


def test_outage_window_with_a_fake_clock(mock_server: MockServer) -> None:
    """A 10 s outage fails every request (health too) inside the window and none after it."""
    clock = FakeClock()
    mock_server.faults.clock = clock
    mock_server.faults.outage(seconds=10)
    with httpx.Client(base_url=mock_server.url) as client:
        inside = [_experiment(client).status_code, client.get("/health").status_code]
        clock.now += 9.9
        inside.append(_experiment(client).status_code)
        clock.now += 0.2
        after = [_experiment(client).status_code, client.get("/health").status_code]
    assert inside == [503, 503, 503]
    assert after == [200, 200]


def test_outage_for_requests_with_resets(mock_server: MockServer) -> None:
    """An outage of 2 requests with the reset action looks like a dead server, then recovers."""
    mock_server.faults.outage(requests=2, action="reset")
    with httpx.Client(base_url=mock_server.url) as client:
        for _ in range(2):
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                _experiment(client)
        assert _experiment(client).status_code == 200


def test_after_and_probability(mock_server: MockServer) -> None:
    """after=N lets N requests through first; probability fires on a seeded share of requests."""
    mock_server.faults.add("status", path="/health", status=500, after=2, times=1)
    mock_server.faults.add("status", path="*/experiments/get", status=500, probability=0.5)
    with httpx.Client(base_url=mock_server.url) as client:
        health = [client.get("/health").status_code for _ in range(4)]
        random_statuses = [_experiment(client).status_code for _ in range(60)]
    assert health == [200, 200, 500, 200]
    assert 10 < random_statuses.count(500) < 50


def test_bad_rules_are_refused(mock_server: MockServer) -> None:
    """Unknown actions and out-of-range numbers raise ValueError from Python and 400 over HTTP."""
    with pytest.raises(ValueError, match="unknown fault action"):
        mock_server.faults.add("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probability"):
        mock_server.faults.add(probability=2)
    with httpx.Client(base_url=mock_server.base_url) as client:
        r = client.post("/_mock/faults", json={"action": "status", "colour": "red"})
    assert r.status_code == 400


def test_http_control_endpoints(mock_server: MockServer) -> None:
    """Rules and outages can be added, listed and removed over /_mock; reset clears everything."""
    with httpx.Client(base_url=mock_server.base_url) as client:
        rule = client.post(
            "/_mock/faults", json={"action": "status", "path": "*/get", "status": 503, "times": 1}
        ).json()["rule"]
        assert _experiment(client).status_code == 503
        listed = client.get("/_mock/faults").json()["rules"]
        assert [(r["id"], r["hits"]) for r in listed] == [(rule["id"], 1)]
        assert client.delete(f"/_mock/faults/{rule['id']}").status_code == 200
        assert client.delete(f"/_mock/faults/{rule['id']}").status_code == 404
        client.post("/_mock/outage", json={"requests": 1})
        assert _experiment(client).status_code == 503
        assert _experiment(client).status_code == 200
        client.post("/_mock/faults", json={"action": "status", "status": 500})
        journal = client.get("/_mock/requests").json()["requests"]
        assert [e["status"] for e in journal] == [503, 503, 200]
        client.post("/_mock/reset", json={})
        assert client.get("/_mock/faults").json() == {"rules": []}
        assert client.get("/_mock/requests").json() == {"requests": []}
        assert _experiment(client).status_code == 200


def test_reset_can_wipe_state(mock_server: MockServer) -> None:
    """POST /_mock/reset with state=true forgets experiments (only the Default one is left)."""
    with httpx.Client(base_url=mock_server.url) as client:
        client.post(API + "experiments/create", json={"name": "gone"})
        client.post("/_mock/reset", json={"state": True})
        r = client.get(API + "experiments/get-by-name", params={"experiment_name": "gone"})
    assert r.status_code == 404


def test_journal_records_without_secrets(mock_server: MockServer) -> None:
    """The journal keeps method, path, body and auth presence, never the credential itself."""
    secret = "s3cret-token-value"
    with httpx.Client(base_url=mock_server.url) as client:
        client.post(
            API + "experiments/create",
            json={"name": "journaled"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        client.get("/health", auth=("alice", secret))
        client.get("/health")
        dump = client.get("/_mock/requests").text
    first, second, third = mock_server.requests
    assert (first.method, first.endpoint, first.json) == (
        "POST",
        "/api/2.0/mlflow/experiments/create",
        {"name": "journaled"},
    )
    assert (first.has_auth, first.auth_scheme, first.status) == (True, "Bearer", 200)
    assert (second.auth_scheme, second.auth_user) == ("Basic", "alice")
    assert third.has_auth is False
    assert secret not in dump
    assert secret not in json.dumps([e.to_json() for e in mock_server.requests])
    assert secret not in repr(list(mock_server.requests))


def test_journal_keeps_only_the_size_of_big_bodies(mock_server: MockServer) -> None:
    """Bodies over the cap are counted but not kept, so the journal stays bounded."""
    mock_server.journal.max_body = 1000
    with httpx.Client(base_url=mock_server.url) as client:
        client.post(API + "experiments/create", json={"name": "x" * 2000})
    entry = mock_server.requests[0]
    assert entry.body is None
    assert entry.body_size > 2000


def test_journal_forgets_oldest_bodies_past_its_budget(mock_server: MockServer) -> None:
    """Past max_total_body the oldest bodies are dropped first; sizes and order stay."""
    mock_server.journal.max_total_body = 2500
    with httpx.Client(base_url=mock_server.url) as client:
        for i in range(3):
            client.post(API + "experiments/create", json={"name": f"{i}" * 1000})
    # The server counts a body against the budget after it has answered: wait until it is
    # done with every request, not just until the client has the answers.
    assert all(e.wait(deadline(10)) for e in mock_server.requests)
    sizes = [e.body_size for e in mock_server.requests]
    kept = [e.body is not None for e in mock_server.requests]
    assert sizes == [sizes[0]] * 3
    assert kept == [False, True, True]


def test_capacity_rule_admits_up_to_its_limit_and_turns_away_the_rest() -> None:
    """A capacity rule lets ``limit`` matching requests in at once (each holds a place until
    released), answers its status to the next one, and counts the most it held at once."""
    faults = FaultController()
    rule = faults.add("capacity", path="*/log-batch", limit=2, retry_after=1)
    assert rule.status == 429
    first: list[int] = []
    second: list[int] = []
    assert faults.decide("POST", "/api/2.0/mlflow/runs/log-batch", first) is None
    assert faults.decide("POST", "/api/2.0/mlflow/runs/log-batch", second) is None
    turned = faults.decide("POST", "/api/2.0/mlflow/runs/log-batch", [])
    assert turned is not None
    assert (turned.action, turned.retry_after) == ("capacity", 1)
    assert faults.decide("GET", "/api/2.0/mlflow/runs/get", []) is None  # another path
    faults.release(first)
    third: list[int] = []
    assert faults.decide("POST", "/api/2.0/mlflow/runs/log-batch", third) is None
    [state] = faults.rules
    assert (state.active, state.peak, state.hits) == (2, 2, 1)


def test_capacity_rule_needs_a_limit() -> None:
    """``limit`` is required for a capacity rule and refused on any other."""
    faults = FaultController()
    with pytest.raises(ValueError, match="limit"):
        faults.add("capacity")
    with pytest.raises(ValueError, match="limit"):
        faults.add("status", limit=3)
