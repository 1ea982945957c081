"""Exactly-once delivery on a real MLflow 2.7.1 server (DagsHub's version).

MLflow 2.7 answers 400 to a resent batch that holds a NaN point it already stored, and
rejects the whole batch. A lost response forces exactly that resend; these tests lose the
first log-batch response on purpose (the proxy forwards the request, the server commits
it, the client never hears back) and check that nothing is reported rejected, nothing is
lost and nothing lands twice.
"""

from __future__ import annotations

import io
import logging
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

import mlrelay
from mlrelay import cli, fluent
from mlrelay._pipeline.runs import session
from tests._proxy import lossy_proxy
from tests._servers import RunningServer
from tests._timing import deadline

pytestmark = pytest.mark.real

N = 10_000


def _history(url: str, run_id: str) -> list[dict[str, object]]:
    r = httpx.get(
        f"{url}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": run_id, "metric_key": "m", "max_results": 25000},
        timeout=deadline(60),
    )
    r.raise_for_status()
    points: list[dict[str, object]] = r.json().get("metrics", [])
    return points


def _assert_once(url: str, run_id: str) -> None:
    points = _history(url, run_id)
    steps = sorted(int(p["step"]) for p in points)  # type: ignore[call-overload]
    assert steps == list(range(N)), "points lost or duplicated"
    nan = [p for p in points if isinstance(p["value"], str) or math.isnan(p["value"])]  # type: ignore[arg-type]
    assert len(nan) == N // 10


def _value(i: int) -> float:
    return math.nan if i % 10 == 0 else i / 3


def test_server_reports_its_version(mlflow27: RunningServer) -> None:
    """The fixture really runs MLflow 2.7.1."""
    assert httpx.get(f"{mlflow27.url}/version", timeout=deadline(30)).text.strip() == "2.7.1"


def test_lost_first_batch_response_with_nan_points_lands_once(
    mlflow27: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """10,000 points, every tenth NaN, first log-batch response lost: every point lands
    once and nothing is reported or set aside as rejected."""
    with lossy_proxy(mlflow27.url) as proxy:
        proxy.lose_response("POST", "/runs/log-batch", times=1)
        fluent.set_tracking_uri(proxy.url)
        with caplog.at_level(logging.WARNING, logger="mlrelay"), fluent.start_run() as run:
            for i in range(N):
                fluent.log_metric("m", _value(i), step=i)
        assert fluent.flush(deadline(120))
        assert proxy.dropped("/runs/log-batch") == 1
    assert not [r for r in caplog.records if "rejected" in r.getMessage()]
    pipeline = session.pipeline
    assert pipeline is not None
    assert pipeline.journal.rejections() == []
    _assert_once(mlflow27.url, run.run_id)
    with mlrelay.Client(tracking_uri=mlflow27.url) as client:
        assert client.get_run(run.run_id).info.status == "FINISHED"


OFFLINE = textwrap.dedent(
    """
    import math
    import mlrelay
    mlrelay.set_experiment("nan-offline-27")
    with mlrelay.start_run() as run:
        for i in range({n}):
            mlrelay.log_metric("m", math.nan if i % 10 == 0 else i / 3, step=i)
    print(run.run_id)
    """
)


def test_sync_of_an_offline_run_with_a_lost_response_lands_once(
    mlflow27: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for `mlrelay sync` of an offline run: the first log-batch response is lost,
    the sync exits 0 and every point is stored once."""
    home = tmp_path / "home"
    with lossy_proxy(mlflow27.url) as proxy:
        env = {"MLRELAY_HOME": str(home), "MLRELAY_MODE": "offline"}
        env["MLFLOW_TRACKING_URI"] = proxy.url
        import os

        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ML")}, **env}
        made = subprocess.run(
            [sys.executable, "-c", OFFLINE.format(n=N)],
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline(120),
        )
        assert made.returncode == 0, made.stderr
        proxy.lose_response("POST", "/runs/log-batch", times=1)
        monkeypatch.setenv("MLRELAY_HOME", str(home))
        out = io.StringIO()
        assert cli.main(["sync"], out=out) == 0, out.getvalue()
        assert "rejected" not in out.getvalue()
        assert proxy.dropped("/runs/log-batch") == 1
        # The sync recorded what the server offers, for the next sync.
        from mlrelay._capabilities import Capabilities
        from mlrelay._pipeline.journal import Journal

        journal = Journal(home / "journal.db")
        recorded = journal.server_capabilities(proxy.url)
        journal.close()
        assert recorded is not None
        assert Capabilities.from_json(recorded).version == "2.7.1"
    with mlrelay.Client(tracking_uri=mlflow27.url) as client:
        exp = client.get_experiment_by_name("nan-offline-27")
        assert exp is not None
        [run] = list(client.search_runs([exp.experiment_id]))
    _assert_once(mlflow27.url, run.info.run_id)


def test_a_param_2x_refuses_is_set_aside_alone(
    mlflow27: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow 2.7 refuses param values over 500 characters (3.x takes 6,000) and rejects the
    whole batch: only that param is set aside, the 999 metrics packed with it land."""
    fluent.set_tracking_uri(mlflow27.url)
    with caplog.at_level(logging.WARNING, logger="mlrelay"), fluent.start_run() as run:
        fluent.log_param("long", "x" * 600)
        fluent.log_param("short", "ok")
        for i in range(999):
            fluent.log_metric("m", float(i), step=i)
    assert fluent.flush(deadline(60))
    pipeline = session.pipeline
    assert pipeline is not None
    [(_, first, last, message)] = pipeline.journal.rejections(run.local_id)
    assert "length limit of 500" in message
    assert [e.key for e in pipeline.journal.entries_between(run.local_id, first, last)] == ["long"]
    assert len(_history(mlflow27.url, run.run_id)) == 999
    with mlrelay.Client(tracking_uri=mlflow27.url) as client:
        assert client.get_run(run.run_id).data.params_dict == {"short": "ok"}
    assert sum("rejected" in r.getMessage() for r in caplog.records) == 1
