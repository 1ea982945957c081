#!/usr/bin/env python3
# A command-line report: printing is its job; callbacks all take (url, backend name).
# ruff: noqa: T201, ARG005
"""Send the requests behind each real-pass/mock-fail group to a real MLflow 3.17.2 server AND to
the mock, and print status / relevant headers / body side by side (exact expected vs actual).

Usage: probe.py [group ...]   (groups: headers getart history upload lm valid regorder exp)
Starts: `mlflow server` (uvicorn, 1 worker, sqlite in a temp dir, --serve-artifacts) and
`python -m mlrelay_mock` (PYTHONPATH = $MOCKFID_PYTHONPATH, default
<repo>/src:<repo>/mock_server/src, the working tree). Both are killed at exit. Binaries come
from $MOCKFID_VENV_BIN (default <repo>/.venv/bin), which must hold the MLflow to compare
against (measured: 3.17.2).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[3]
VENV = os.environ.get("MOCKFID_VENV_BIN") or str(REPO / ".venv" / "bin")
MOCK_PYTHONPATH = os.environ.get(
    "MOCKFID_PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO / "mock_server" / "src")])
)
HDRS = ("Content-Type", "X-Content-Type-Options", "Content-Disposition")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen, deadline: float = 90) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"not ready: {url}")


def start_servers(tmp: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    rp, mp = free_port(), free_port()
    real = subprocess.Popen(
        [
            f"{VENV}/mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(rp),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp}/mlflow.db",
            "--artifacts-destination",
            str(tmp / "mlartifacts"),
        ],
        cwd=tmp,
        stdout=open(tmp / "real.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    mock = subprocess.Popen(
        [f"{VENV}/python", "-m", "mlrelay_mock", "--port", str(mp)],
        env={**os.environ, "PYTHONPATH": MOCK_PYTHONPATH},
        stdout=open(tmp / "mock.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    urls = {"real": f"http://127.0.0.1:{rp}", "mock": f"http://127.0.0.1:{mp}"}
    wait(urls["mock"], mock)
    wait(urls["real"], real)
    return urls, [real, mock]


def show(label: str, r: requests.Response, headers: bool = False) -> None:
    body = r.text if len(r.content) < 600 else r.text[:600] + "…"
    h = ""
    if headers:
        h = " | " + "; ".join(f"{k}: {r.headers.get(k)!r}" for k in HDRS)
    print(f"    {label:4} {r.status_code}{h} | {body!r}")


def both(urls, fn, headers=False, title=""):
    print(f"  {title}")
    for name, url in urls.items():
        try:
            show(name, fn(url, name), headers)
        except Exception as e:
            print(f"    {name:4} EXC {type(e).__name__}: {e}")


def post(url, path, body):
    return requests.post(url + path, json=body, timeout=30)


def setup_run(url: str) -> tuple[str, str]:
    exp = post(
        url, "/api/2.0/mlflow/experiments/create", {"name": f"probe{time.time_ns()}"}
    ).json()["experiment_id"]
    run = post(url, "/api/2.0/mlflow/runs/create", {"experiment_id": exp}).json()["run"]["info"]
    return exp, run["run_id"]


STATE: dict[str, dict[str, str]] = {"real": {}, "mock": {}}


def g_headers(urls):
    print("\n== artifact download headers (mlflow-artifacts proxy GET), files uploaded empty")
    root = "/api/2.0/mlflow-artifacts/artifacts"
    for f in ("a.txt", "b.pkl", "c.png", "d.pdf", "MLmodel", "mlproject", "x.html", "y.js"):
        for u in urls.values():
            requests.put(f"{u}{root}/dir/{f}", data=b"", timeout=30)
        both(
            urls,
            lambda u, n, f=f: requests.get(f"{u}{root}/dir/{f}", timeout=30),
            True,
            f"GET {root}/dir/{f}",
        )
        both(
            urls,
            lambda u, n, f=f: requests.get(
                f"{u}{root}/dir/{f}", headers={"Accept": "text/html"}, timeout=30
            ),
            True,
            f"GET {root}/dir/{f} Accept: text/html",
        )


def g_getart(urls):
    print("\n== /get-artifact and /model-versions/get-artifact")
    for n, u in urls.items():
        _exp, run = setup_run(u)
        STATE[n]["run"] = run
        info = post(u, "/api/2.0/mlflow/runs/get", {}).status_code  # noqa: F841
        art_uri = requests.get(f"{u}/api/2.0/mlflow/runs/get", params={"run_id": run}).json()[
            "run"
        ]["info"]["artifact_uri"]
        STATE[n]["art_uri"] = art_uri
        # mlflow-artifacts:/<exp>/<run>/artifacts -> proxy path
        rel = art_uri.split("mlflow-artifacts:", 1)[1].lstrip("/")
        requests.put(f"{u}/api/2.0/mlflow-artifacts/artifacts/{rel}/a.txt", data=b"abcdefg")
        requests.put(f"{u}/api/2.0/mlflow-artifacts/artifacts/{rel}/MLmodel", data=b"x")
        post(u, "/api/2.0/mlflow/registered-models/create", {"name": "GM"})
        post(
            u,
            "/api/2.0/mlflow/model-versions/create",
            {"name": "GM", "source": art_uri, "run_id": run},
        )
    for q in (
        {"run_id": "RUN", "path": "a.txt"},
        {"run_uuid": "RUN", "path": "a.txt"},
        {"run_id": "RUN", "path": "MLmodel"},
        {"run_id": "RUN", "path": "../path"},
        {"run_id": "RUN", "path": "nope.txt"},
    ):
        both(
            urls,
            lambda u, n, q=q: requests.get(
                f"{u}/get-artifact",
                params={k: (STATE[n]["run"] if v == "RUN" else v) for k, v in q.items()},
            ),
            True,
            f"GET /get-artifact {q}",
        )
    for q in (
        {"name": "GM", "version": "1", "path": "a.txt"},
        {"name": "GM", "version": "1", "path": "../x"},
    ):
        both(
            urls,
            lambda u, n, q=q: requests.get(f"{u}/model-versions/get-artifact", params=q),
            True,
            f"GET /model-versions/get-artifact {q}",
        )
    both(
        urls,
        lambda u, n: requests.get(
            f"{u}/api/2.0/mlflow/artifacts/list",
            params={"run_id": STATE[n]["run"], "path": "../path"},
        ),
        False,
        "GET /api/2.0/mlflow/artifacts/list path=../path",
    )


def _with_run(params: dict[str, Any], name: str) -> dict[str, Any]:
    """``params`` with each ``"RUN"`` in a list replaced by the history run of ``name``."""
    return {
        k: ([STATE[name]["hrun"] if x == "RUN" else x for x in v] if isinstance(v, list) else v)
        for k, v in params.items()
    }


def g_history(urls):
    print("\n== metrics get-history-bulk / -interval / get-history page token")
    for n, u in urls.items():
        _exp, run = setup_run(u)
        STATE[n]["hrun"] = run
        for _i, (ts, step, v) in enumerate(
            [(1, 2, 10.0), (1, 3, 11.0), (1, 3, 12.0), (2, 3, 12.0)]
        ):
            post(
                u,
                "/api/2.0/mlflow/runs/log-metric",
                {"run_id": run, "key": "metricA", "value": v, "timestamp": ts, "step": step},
            )
    B = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    for p in (
        {"run_id": ["RUN"], "metric_key": "metricA"},
        {"run_id": ["RUN"], "metric_key": "metricA", "max_results": 2},
        {"metric_key": "key"},
        {"run_id": [f"id_{i}" for i in range(1000)], "metric_key": "key"},
        {"run_id": ["123"]},
    ):
        both(
            urls,
            lambda u, n, p=p: requests.get(
                u + B,
                params=_with_run(p, n),
            ),
            False,
            f"GET {B} {str(p)[:90]}",
        )
    both(
        urls,
        lambda u, n: requests.get(
            u + "/api/2.0/mlflow/metrics/get-history-bulk",
            params={"run_id": [STATE[n]["hrun"]], "metric_key": "metricA"},
        ),
        False,
        "GET /api/2.0/mlflow/metrics/get-history-bulk (non-ajax prefix)",
    )
    IV = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    for p in (
        {"run_ids": ["RUN"], "metric_key": "metricA"},
        {"run_ids": ["RUN"], "metric_key": "metricA", "max_results": 2},
        {"metric_key": "key"},
        {"run_ids": [f"id_{i}" for i in range(1000)], "metric_key": "key"},
        {"run_ids": ["123"], "metric_key": "key", "max_results": 0},
        {"run_ids": ["123"], "metric_key": "key", "max_results": 2501},
        {"run_ids": ["123"], "metric_key": ""},
        {"run_ids": ["123"], "metric_key": "key", "start_step": 1},
        {"run_ids": ["123"], "metric_key": "key", "start_step": 3, "end_step": 1},
    ):
        both(
            urls,
            lambda u, n, p=p: requests.get(
                u + IV,
                params=_with_run(p, n),
            ),
            False,
            f"GET {IV} {str(p)[:90]}",
        )
    H = "/ajax-api/2.0/mlflow/metrics/get-history"
    both(
        urls,
        lambda u, n: requests.get(
            u + H,
            params={
                "run_id": STATE[n]["hrun"],
                "metric_key": "metricA",
                "page_token": "invalid_token",
            },
        ),
        False,
        f"GET {H} page_token=invalid_token",
    )
    both(
        urls,
        lambda u, n: requests.get(
            u + H, params={"run_id": STATE[n]["hrun"], "metric_key": "metricA", "max_results": 0}
        ),
        False,
        f"GET {H} max_results=0",
    )


def g_upload(urls):
    print("\n== /ajax-api/2.0/mlflow/upload-artifact")
    for n, u in urls.items():
        STATE[n]["urun"] = setup_run(u)[1]
    U = "/ajax-api/2.0/mlflow/upload-artifact"
    for p, data in (
        ({}, None),
        ({"run_uuid": "RUN"}, None),
        ({"run_uuid": "RUN", "path": ""}, None),
        ({"run_uuid": "RUN", "path": "../test.txt"}, None),
        ({"run_uuid": "RUN", "path": "test.txt"}, None),
        ({"run_uuid": "RUN", "path": "test.txt"}, "hello world"),
    ):
        both(
            urls,
            lambda u, n, p=p, data=data: requests.post(
                u + U,
                params={k: (STATE[n]["urun"] if v == "RUN" else v) for k, v in p.items()},
                data=data,
            ),
            False,
            f"POST {U} {p} data={data!r}",
        )
    both(
        urls,
        lambda u, n: requests.get(
            f"{u}/get-artifact", params={"run_uuid": STATE[n]["urun"], "path": "test.txt"}
        ),
        True,
        "GET /get-artifact run_uuid=… path=test.txt (after upload)",
    )


def g_lm(urls):
    print("\n== logged models")
    for n, u in urls.items():
        exp = post(u, "/api/2.0/mlflow/experiments/create", {"name": "lm"}).json()["experiment_id"]
        STATE[n]["lexp"] = exp
    both(
        urls,
        lambda u, n: post(
            u,
            "/api/2.0/mlflow/logged-models",
            {"experiment_id": STATE[n]["lexp"], "source_run_id": "123"},
        ),
        False,
        "POST /api/2.0/mlflow/logged-models source_run_id=123",
    )
    for n, u in urls.items():
        m1 = post(
            u, "/api/2.0/mlflow/logged-models", {"experiment_id": STATE[n]["lexp"], "name": "m1"}
        ).json()
        post(
            u, "/api/2.0/mlflow/logged-models", {"experiment_id": STATE[n]["lexp"], "name": "m2"}
        ).json()
        STATE[n]["m1"] = m1["model"]["info"]["model_id"]
        STATE[n]["m1_loc"] = m1["model"]["info"]["artifact_uri"]
        run = post(u, "/api/2.0/mlflow/runs/create", {"experiment_id": STATE[n]["lexp"]}).json()[
            "run"
        ]["info"]["run_id"]
        post(
            u,
            "/api/2.0/mlflow/runs/log-metric",
            {
                "run_id": run,
                "key": "metric",
                "value": 0.5,
                "timestamp": 123456789,
                "step": 1,
                "model_id": STATE[n]["m1"],
                "dataset_name": "name",
                "dataset_digest": "digest",
            },
        )
        rel = STATE[n]["m1_loc"].split("mlflow-artifacts:", 1)[1].lstrip("/")
        requests.put(f"{u}/api/2.0/mlflow-artifacts/artifacts/{rel}/MLmodel", data=b"model_id: X\n")
        post(u, "/api/2.0/mlflow/registered-models/create", {"name": "model"})
        post(
            u,
            "/api/2.0/mlflow/model-versions/create",
            {"name": "model", "source": STATE[n]["m1_loc"], "model_id": STATE[n]["m1"]},
        )
    S = "/api/2.0/mlflow/logged-models/search"
    for body in (
        {"filter": "name = 'm1'"},
        {"filter": "metrics.metric > 0.1"},
        {"datasets": [{"dataset_name": "name", "dataset_digest": "digest"}]},
        {"order_by": [{"field_name": "creation_timestamp", "ascending": False}]},
    ):
        both(
            urls,
            lambda u, n, body=body: post(u, S, {"experiment_ids": [STATE[n]["lexp"]], **body}),
            False,
            f"POST {S} {body}",
        )
    both(
        urls,
        lambda u, n: requests.get(f"{u}/api/2.0/mlflow/logged-models/{STATE[n]['m1']}"),
        False,
        "GET logged-models/{m1} (metrics + tags incl. mlflow.modelVersions)",
    )
    both(
        urls,
        lambda u, n: requests.get(
            f"{u}/ajax-api/2.0/mlflow/logged-models/{STATE[n]['m1']}/artifacts/files",
            params={"artifact_file_path": "MLmodel"},
        ),
        True,
        "GET ajax logged-models/{m1}/artifacts/files MLmodel",
    )
    both(
        urls,
        lambda u, n: requests.get(
            f"{u}/ajax-api/2.0/mlflow/logged-models/{STATE[n]['m1']}/artifacts/directories"
        ),
        False,
        "GET ajax logged-models/{m1}/artifacts/directories",
    )


def g_valid(urls):
    print("\n== validation messages")
    cases = [
        (
            "/api/2.0/mlflow/experiments/create",
            {"name": "e", "artifact_location": "my_location", "tags": "5"},
        ),
        ("/api/2.0/mlflow/experiments/create", {"name": 123}),
        (
            "/api/2.0/mlflow/runs/log-metric",
            {"run_id": "RUN", "key": "k", "value": 1, "timestamp": 1, "step": "foo"},
        ),
        ("/api/2.0/mlflow/runs/log-batch", {"run_id": "RUN", "metrics": "foo"}),
        ("/api/2.0/mlflow/runs/log-parameter", {"run_id": "RUN", "key": "k", "value": 5}),
    ]
    for n, u in urls.items():
        STATE[n]["vrun"] = setup_run(u)[1]
    for path, body in cases:
        both(
            urls,
            lambda u, n, path=path, body=body: post(
                u, path, {k: (STATE[n]["vrun"] if v == "RUN" else v) for k, v in body.items()}
            ),
            False,
            f"POST {path} {body}",
        )


def g_exp(urls):
    print("\n== experiment artifact_location")
    for n, u in urls.items():
        e = post(
            u,
            "/api/2.0/mlflow/experiments/create",
            {"name": "rel", "artifact_location": "my_location"},
        ).json()
        STATE[n]["rel"] = e.get("experiment_id", "")
    both(
        urls,
        lambda u, n: requests.get(
            f"{u}/api/2.0/mlflow/experiments/get", params={"experiment_id": STATE[n]["rel"]}
        ),
        False,
        "GET experiments/get (created with artifact_location='my_location';"
        " real server cwd = its tmp dir)",
    )


def g_regorder(urls):
    print(
        "\n== registry: search_model_versions default order"
        " / search_registered_models prompt filter"
    )
    for _n, u in urls.items():
        for name in ("A", "B"):
            post(u, "/api/2.0/mlflow/registered-models/create", {"name": f"RO{name}"})
        for name in ("A", "B", "A"):
            time.sleep(0.002)
            post(
                u,
                "/api/2.0/mlflow/model-versions/create",
                {"name": f"RO{name}", "source": "s3://b/x"},
            )

    def mvs(u, n):
        r = requests.get(
            f"{u}/api/2.0/mlflow/model-versions/search", params={"filter": "name LIKE 'RO%'"}
        )
        r._content = json.dumps(
            [
                (m["name"], m["version"], m["last_updated_timestamp"])
                for m in r.json().get("model_versions", [])
            ]
        ).encode()
        return r

    both(
        urls,
        mvs,
        False,
        "GET model-versions/search filter=name LIKE 'RO%' -> [(name, version, last_updated)]",
    )
    both(
        urls,
        lambda u, n: requests.get(
            f"{u}/api/2.0/mlflow/registered-models/search",
            params={"filter": "name LIKE 'RO%' AND tag.`mlflow.prompt.is_prompt` != 'true'"},
        ),
        False,
        "GET registered-models/search filter=…"
        " AND tag.`mlflow.prompt.is_prompt` != 'true' (truncated)",
    )


GROUPS = {
    "headers": g_headers,
    "getart": g_getart,
    "history": g_history,
    "upload": g_upload,
    "lm": g_lm,
    "valid": g_valid,
    "exp": g_exp,
    "regorder": g_regorder,
}


def main() -> None:
    wanted = sys.argv[1:] or list(GROUPS)
    tmp = Path(tempfile.mkdtemp(prefix="mockfid-probe-"))
    urls, procs = start_servers(tmp)
    try:
        print(f"real={urls['real']} (mlflow server 3.17.2, cwd {tmp})  mock={urls['mock']}")
        for g in wanted:
            try:
                GROUPS[g](urls)
            except Exception as e:
                print(f"  group {g} crashed: {type(e).__name__}: {e}")
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
