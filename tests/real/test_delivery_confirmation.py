"""A write counts as delivered only on MLflow's JSON answer: login pages, HTML and redirects
from a proxy in front of a real MLflow server keep the entries until the server has them."""

from __future__ import annotations

import time
import uuid

import pytest

import mlrelay
from tests._proxy import lossy_proxy
from tests._servers import RunningServer

pytestmark = pytest.mark.real

LOGIN_PAGE = (
    b"<!doctype html><html><head><title>Sign in</title></head>"
    b"<body><form action='/sso/login'>Your session expired.</form></body></html>"
)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _points(client: mlrelay.Client, run_id: str, key: str) -> list[int]:
    return sorted(p.step for p in client.get_metric_history(run_id, key, page_size=25000))


def test_html_login_page_on_log_batch_is_not_delivery(mlflow_real: RunningServer) -> None:
    """Three log-batch answers of a 200 HTML login page: all 3,000 points still land, once."""
    with lossy_proxy(mlflow_real.url) as proxy:
        mlrelay.set_tracking_uri(proxy.url)
        mlrelay.set_experiment(_name("sso-html"))
        proxy.answer(
            "POST",
            "/runs/log-batch",
            status=200,
            body=LOGIN_PAGE,
            headers={"Content-Type": "text/html; charset=utf-8"},
            times=3,
        )
        run = mlrelay.start_run()
        run_id = run.info.run_id
        for step in range(3000):
            mlrelay.log_metric("loss", step / 3000, step=step)
        assert mlrelay.flush(timeout=60), "flush() must succeed once the points have landed"
        with mlrelay.Client(tracking_uri=mlflow_real.url) as direct:
            landed = _points(direct, run_id, "loss")
        assert proxy.answered("/runs/log-batch") == 3
        mlrelay.end_run()
    assert landed == list(range(3000)), "every point once, none lost to the login page"


def test_flush_is_false_while_only_login_pages_answer(mlflow_real: RunningServer) -> None:
    """While every log-batch gets a login page, flush() is False and nothing is acknowledged."""
    with lossy_proxy(mlflow_real.url) as proxy:
        mlrelay.set_tracking_uri(proxy.url)
        mlrelay.set_experiment(_name("sso-forever"))
        proxy.answer(
            "POST",
            "/runs/log-batch",
            status=200,
            body=LOGIN_PAGE,
            headers={"Content-Type": "text/html"},
            times=10_000,
        )
        run = mlrelay.start_run()
        for step in range(100):
            mlrelay.log_metric("loss", float(step), step=step)
        assert not mlrelay.flush(timeout=3)
        assert proxy.answered("/runs/log-batch") >= 1
        proxy.clear()  # the session is back
        assert mlrelay.flush(timeout=60)
        with mlrelay.Client(tracking_uri=mlflow_real.url) as direct:
            assert _points(direct, run.info.run_id, "loss") == list(range(100))
        mlrelay.end_run()


def test_redirect_on_a_write_is_an_error_naming_it(mlflow_real: RunningServer) -> None:
    """A 302 on log-batch raises an error naming the redirect and its target; not a 405."""
    with lossy_proxy(mlflow_real.url) as proxy, mlrelay.Client(tracking_uri=proxy.url) as c:
        exp_id = c.create_experiment(_name("sso-302"))
        run = c.create_run(exp_id)
        proxy.answer(
            "POST",
            "/runs/log-batch",
            status=302,
            headers={"Location": "https://sso.example.com/login?next=%2Fapi&token=s3cret"},
        )
        started = time.monotonic()
        with pytest.raises(mlrelay.UnexpectedResponseError) as raised:
            c.log_batch(run.info.run_id, metrics=[mlrelay.Metric("m", 1.0, 0, 0)])
        assert time.monotonic() - started < 30
    message = str(raised.value)
    assert "302" in message
    assert "redirect" in message
    assert "https://sso.example.com/login" in message
    assert "s3cret" not in message, "the redirect's query string may carry a secret"


def test_empty_200_on_log_batch_is_not_delivery(mlflow_real: RunningServer) -> None:
    """An empty 200 on log-batch (not MLflow's ``{}``) raises, naming what the server sent."""
    with lossy_proxy(mlflow_real.url) as proxy, mlrelay.Client(tracking_uri=proxy.url) as c:
        exp_id = c.create_experiment(_name("empty-200"))
        run = c.create_run(exp_id)
        proxy.answer("POST", "/runs/log-batch", status=200)
        with pytest.raises(mlrelay.UnexpectedResponseError, match="empty"):
            c.log_batch(run.info.run_id, metrics=[mlrelay.Metric("m", 1.0, 0, 0)])


def test_sync_through_a_login_page_keeps_everything_and_purge_keeps_it(
    mlflow_real: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlrelay sync` answered by a login page says so, exits 1, and `purge --synced` keeps
    the entries; the next sync lands all of them once."""
    import io

    from mlrelay import cli, fluent

    experiment = _name("sso-sync")
    with lossy_proxy(mlflow_real.url) as proxy:
        mlrelay.set_tracking_uri(proxy.url, mode="offline")
        mlrelay.set_experiment(experiment)
        with mlrelay.start_run():
            for step in range(1500):
                mlrelay.log_metric("loss", float(step), step=step)
        fluent._reset()
        proxy.answer(
            "POST",
            "/runs/log-batch",
            status=200,
            body=LOGIN_PAGE,
            headers={"Content-Type": "text/html"},
            times=1,
        )
        out = io.StringIO()
        assert cli.main(["sync", "--tracking-uri", proxy.url], out=out) == 1, out.getvalue()
        assert "HTML page" in out.getvalue()
        assert "Sign in" in out.getvalue()
        purged = io.StringIO()
        assert cli.main(["purge", "--synced"], out=purged) == 0
        assert "Removed 0 run(s)" in purged.getvalue()
        again = io.StringIO()
        assert cli.main(["sync", "--tracking-uri", proxy.url], out=again) == 0, again.getvalue()
    with mlrelay.Client(tracking_uri=mlflow_real.url) as direct:
        exp = direct.get_experiment_by_name(experiment)
        assert exp is not None
        [run] = list(direct.search_runs([exp.experiment_id]))
        assert _points(direct, run.info.run_id, "loss") == list(range(1500))
