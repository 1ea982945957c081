"""Screenshot MLflow's UI for the same run logged by MLflow's client and by mlrelay.

Starts a real MLflow server (sqlite store, proxied artifacts) on 127.0.0.1 with a free
port, logs one run twice in two child processes, once with MLflow's own client (experiment
"mlflow-client") and once with mlrelay (experiment "mlrelay", the real mlflow package made
unimportable), then drives a headless Chromium through MLflow's UI and saves each view of
each side as a PNG pair, ``<view>-mlflow.png`` / ``<view>-mlrelay.png``, with an
index.html that shows the pairs side by side. Prints the output folder.

The run (tests/ui/_log_run.py): params, a 20-step metric history, tags, a description, a
nested child run, a text artifact, a folder of artifacts, and a scikit-learn model logged
with ``mlflow.sklearn.log_model(..., input_example=..., registered_model_name=...)`` plus
an alias on its version.

Needs, beside the project's test dependencies (mlflow 3.17.2, scikit-learn, httpx):
  apt-get install chromium     # Debian's browser, used at /usr/bin/chromium
  pip install playwright       # the Python package only: no `playwright install`
Not a test: pytest does not collect it and `make test` does not run it. Run it from the
repository root, e.g. ``.venv/bin/python tests/ui/compare_ui.py --out /tmp/ui-shots``.
Every child (server, loggers, browser) gets HOME, XDG_* and MLRELAY_HOME in a temporary
directory; mlrelay is imported from this checkout's src/.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LOG_RUN = Path(__file__).resolve().with_name("_log_run.py")
SIDES = ("mlflow", "mlrelay")
EXPERIMENTS = {"mlflow": "mlflow-client", "mlrelay": "mlrelay"}
REGISTERED = {"mlflow": "ui-compare-mlflow", "mlrelay": "ui-compare-mlrelay"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOME_VARS = (
    "HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "MLRELAY_HOME",
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
)
LOG_TIMEOUT_S = 300.0
SETTLE_TIMEOUT_S = 120.0
UI_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1600, "height": 1000}


@dataclass
class Side:
    """What one client logged, as the server knows it."""

    name: str
    experiment_id: str = ""
    run_id: str = ""
    child_run_id: str = ""
    model_id: str = ""
    registered_model: str = ""
    version: str = ""
    client_result: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def _isolated_env(home: Path) -> dict[str, str]:
    """The environment for every child: a temporary home, no MLflow/mlrelay settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRELAY_", "DAGSHUB_"))
    }
    for sub in ("home", "data", "config", "cache", "state", "mlrelay"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home / "home"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        MLRELAY_HOME=str(home / "mlrelay"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    return env


def _log_side(side: str, url: str, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """Run tests/ui/_log_run.py for one side in its own process; its JSON answer."""
    child_env = dict(env, MLFLOW_TRACKING_URI=url)
    if side == "mlrelay":  # this checkout's mlrelay, whatever the venv has installed
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
        )
    cwd = workdir / f"log-{side}"
    cwd.mkdir()
    done = subprocess.run(
        [sys.executable, str(LOG_RUN), side, EXPERIMENTS[side], REGISTERED[side]],
        cwd=cwd,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=LOG_TIMEOUT_S,
        check=False,
    )
    (workdir / f"log-{side}.stderr").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"logging with {side} failed ({done.returncode}):\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _wait_for(what: str, probe: Callable[[], Any], timeout_s: float) -> Any:
    """Poll ``probe`` until it returns something truthy, at most ``timeout_s`` seconds."""
    stop = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > stop:
            raise TimeoutError(f"{what}: not there after {timeout_s} s")
        time.sleep(0.3)


def _resolve(side: Side, api: Any) -> None:
    """Find the side's experiment, runs, logged model and model version on the server,
    waiting (bounded) until the runs are finished and the version is ready."""
    got = api.get(
        "/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": EXPERIMENTS[side.name]},
    )
    got.raise_for_status()
    side.experiment_id = got.json()["experiment"]["experiment_id"]

    def runs_finished() -> list[dict[str, Any]] | None:
        body = {"experiment_ids": [side.experiment_id], "max_results": 50}
        found = api.post("/api/2.0/mlflow/runs/search", json=body).json().get("runs", [])
        if len(found) < 2 or any(r["info"]["status"] != "FINISHED" for r in found):
            return None
        return list(found)

    runs = _wait_for(f"{side.name}: two finished runs", runs_finished, SETTLE_TIMEOUT_S)
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        if "mlflow.parentRunId" in tags:
            side.child_run_id = run["info"]["run_id"]
        else:
            side.run_id = run["info"]["run_id"]

    def logged_models() -> list[dict[str, Any]] | None:
        body = {"experiment_ids": [side.experiment_id], "max_results": 50}
        found = api.post("/api/2.0/mlflow/logged-models/search", json=body).json()
        return list(found.get("models", [])) or None

    models = _wait_for(f"{side.name}: a logged model", logged_models, SETTLE_TIMEOUT_S)
    side.model_id = models[0]["info"]["model_id"]
    side.registered_model = REGISTERED[side.name]

    def version_ready() -> str | None:
        got = api.get(
            "/api/2.0/mlflow/registered-models/alias",
            params={"name": side.registered_model, "alias": "champion"},
        )
        if got.status_code != 200:
            return None
        mv = got.json()["model_version"]
        return str(mv["version"]) if mv.get("status") == "READY" else None

    side.version = _wait_for(f"{side.name}: model version READY", version_ready, SETTLE_TIMEOUT_S)
    side.facts = _facts(side, api)


def _facts(side: Side, api: Any) -> dict[str, Any]:
    """What the server holds behind the pictures, to explain a difference: the parent run's
    tags and artifact listing, the logged model's tags, params and metrics, the version's tags."""

    def tags(entries: list[dict[str, str]]) -> dict[str, str]:
        return {t["key"]: t["value"][:120] for t in entries}

    run = api.get("/api/2.0/mlflow/runs/get", params={"run_id": side.run_id}).json()["run"]
    listing: dict[str, list[str]] = {}
    for path in ("", "model"):
        got = api.get(
            "/api/2.0/mlflow/artifacts/list", params={"run_id": side.run_id, "path": path}
        ).json()
        listing[path or "/"] = [f["path"] for f in got.get("files", [])]
    model = api.get(f"/api/2.0/mlflow/logged-models/{side.model_id}").json()["model"]
    version = api.get(
        "/api/2.0/mlflow/model-versions/get",
        params={"name": side.registered_model, "version": side.version},
    ).json()["model_version"]
    return {
        "run_tags": tags(run["data"].get("tags", [])),
        "run_artifacts": listing,
        "logged_model_tags": tags(model["info"].get("tags", [])),
        "logged_model_params": {p["key"]: p["value"] for p in model["data"].get("params", [])},
        "logged_model_metrics": [
            (m["key"], m["value"], m.get("step")) for m in model["data"].get("metrics", [])
        ],
        "model_version_tags": tags(version.get("tags", [])),
        "model_version_source": version.get("source"),
        "model_version_run_link": version.get("run_link"),
    }


@contextlib.contextmanager
def _server(workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """A real MLflow server for the comparison, started as tests/conftest.py's
    ``mlflow_real`` fixture starts it; yields its URL."""
    sys.path.insert(0, str(REPO))
    from tests._servers import mlflow_server

    with mlflow_server(workdir / "server", env={k: env[k] for k in HOME_VARS}) as server:
        yield server.url


# --- the browser --------------------------------------------------------------------------

PARENT_RUN = "parent-run"
CHILD_RUN = "child-fold-0"


@dataclass(frozen=True)
class View:
    """One screen of MLflow's UI: its route for a side, how to tell it is drawn (and what
    to open on it), and the viewport height it needs."""

    name: str
    title: str
    route: Callable[[Side], str]
    ready: Callable[[Any, Side], None]
    height: int = 1000


def _see(page: Any, text: str, *, exact: bool = True) -> None:
    """Wait (bounded) until ``text`` is visible on the page."""
    page.get_by_text(text, exact=exact).first.wait_for(state="visible", timeout=UI_TIMEOUT_MS)


def _see_re(page: Any, pattern: str) -> None:
    """Wait (bounded) until some visible text matches the regular expression ``pattern``."""

    page.get_by_text(re.compile(pattern)).first.wait_for(state="visible", timeout=UI_TIMEOUT_MS)


def _click_tree_item(page: Any, name: str) -> None:
    """Click an entry of an artifact tree by its exact name."""
    item = page.get_by_text(name, exact=True).first
    item.wait_for(state="visible", timeout=UI_TIMEOUT_MS)
    item.click()


def _runs_table(page: Any, side: Side) -> None:
    """The runs table: the parent row, its nested child (rows expanded) and the count."""
    _see(page, PARENT_RUN)
    if not page.get_by_text(CHILD_RUN, exact=True).count():  # nested runs are folded
        page.locator(
            '[role=gridcell] button[data-component-id*="runnamecellrenderer"]'
        ).first.click()
    _see(page, CHILD_RUN)
    _see_re(page, r"^\d+ matching runs$")
    _see(page, side.registered_model)


def _run_overview(page: Any, side: Side) -> None:
    """The parent run's overview: details, tags, description, metrics and params tables."""
    _see(page, "About this run")
    _see(page, CHILD_RUN)
    _see(page, "Same run, logged by two clients.")
    _see_re(page, r"^Metrics \(\d+\)$")
    _see_re(page, r"^Parameters \(\d+\)$")
    _see(page, "solver")


def _child_run(page: Any, side: Side) -> None:
    """The nested run's overview, with its parent."""
    _see(page, "About this run")
    _see(page, PARENT_RUN)
    _see_re(page, r"^Parameters \(\d+\)$")
    _see(page, "fold")


def _run_charts(page: Any, side: Side) -> None:
    """The parent run's metric charts (Model metrics tab)."""
    for key in ("loss", "accuracy", "test_accuracy"):
        _see(page, key)


def _run_artifact_files(page: Any, side: Side) -> None:
    """The run's artifacts at ``extras/plots/curve.csv``: the logged folder opened."""
    _see(page, "notes")
    for name in ("classes.txt", "config.json", "curve.csv"):
        _see(page, name)
    _see(page, "Previewing the first", exact=False)  # the CSV drawn as a table


def _has_model_folder(page: Any) -> bool:
    """Whether the run's artifact tree (drawn, ``notes`` visible) has a ``model`` folder;
    MLflow 3's client keeps a logged model's files in the logged model, not in the run."""
    _see(page, "notes")
    return bool(page.get_by_text("model", exact=True).count())


def _run_artifacts(page: Any, side: Side) -> None:
    """The run's artifacts at ``model/MLmodel``: the file shown where the run has it."""
    if _has_model_folder(page):
        _see(page, "MLmodel")
        _see(page, "flavors", exact=False)


def _run_artifacts_model(page: Any, side: Side) -> None:
    """The run's artifacts at ``model``: MLflow's model pane (schema, snippets) where the
    run has a model folder."""
    if _has_model_folder(page):
        _see(page, "MLflow Model")
        _see(page, "Model schema")


def _models_view(page: Any, side: Side) -> None:
    """The experiment's Models view (logged models)."""
    _see(page, "model")
    _see(page, "Ready")
    _see(page, side.registered_model, exact=False)


def _logged_model(page: Any, side: Side) -> None:
    """The logged model's overview: metrics, params, runs, model versions."""
    _see(page, "About this logged model")
    _see_re(page, r"^Metrics \(\d+\)$")
    _see_re(page, r"^Parameters \(\d+\)$")
    _see(page, side.registered_model)
    _see(page, PARENT_RUN)


def _logged_model_artifacts(page: Any, side: Side) -> None:
    """The logged model's files, MLmodel selected."""
    _click_tree_item(page, "MLmodel")
    _see(page, "flavors", exact=False)


def _registered_model(page: Any, side: Side) -> None:
    """The registered model's page: its versions with their tags and aliases."""
    _see(page, "Version 1")
    _see(page, "champion", exact=False)


def _model_version(page: Any, side: Side) -> None:
    """The model version's page with its tags and schema (inputs and outputs) opened."""
    _see(page, f"Version {side.version}")
    _see(page, "champion", exact=False)
    page.get_by_text("Tags", exact=True).first.click()
    for section in ("Inputs", "Outputs"):
        page.get_by_text(re.compile(rf"^{section} \(\d+\)$")).first.click()
    _see(page, "sepal length (cm)", exact=False)


VIEWS = (
    View(
        "runs-table",
        "Runs table of the experiment",
        lambda s: f"/experiments/{s.experiment_id}/runs",
        _runs_table,
    ),
    View(
        "run-overview",
        "Parent run, overview",
        lambda s: f"/experiments/{s.experiment_id}/runs/{s.run_id}",
        _run_overview,
        height=1400,
    ),
    View(
        "run-charts",
        "Parent run, Model metrics tab (charts)",
        lambda s: f"/experiments/{s.experiment_id}/runs/{s.run_id}/model-metrics",
        _run_charts,
    ),
    View(
        "child-run",
        "Nested run, overview",
        lambda s: f"/experiments/{s.experiment_id}/runs/{s.child_run_id}",
        _child_run,
    ),
    View(
        "run-artifact-files",
        "Parent run, artifacts at extras/plots/curve.csv (the logged folder)",
        lambda s: (
            f"/experiments/{s.experiment_id}/runs/{s.run_id}/artifacts/extras/plots/curve.csv"
        ),
        _run_artifact_files,
    ),
    View(
        "run-artifacts",
        "Parent run, artifacts at model/MLmodel (where the run holds a model folder)",
        lambda s: f"/experiments/{s.experiment_id}/runs/{s.run_id}/artifacts/model/MLmodel",
        _run_artifacts,
        height=1300,
    ),
    View(
        "run-artifacts-model",
        "Parent run, artifacts at the model folder (MLflow's model pane)",
        lambda s: f"/experiments/{s.experiment_id}/runs/{s.run_id}/artifacts/model",
        _run_artifacts_model,
        height=1300,
    ),
    View(
        "models-view",
        "Models view of the experiment (logged models)",
        lambda s: f"/experiments/{s.experiment_id}/models",
        _models_view,
    ),
    View(
        "logged-model",
        "Logged model, overview",
        lambda s: f"/experiments/{s.experiment_id}/models/{s.model_id}",
        _logged_model,
        height=1400,
    ),
    View(
        "logged-model-artifacts",
        "Logged model, artifacts (MLmodel selected)",
        lambda s: f"/experiments/{s.experiment_id}/models/{s.model_id}/artifacts",
        _logged_model_artifacts,
        height=1300,
    ),
    View(
        "registered-model",
        "Registered model",
        lambda s: f"/models/{s.registered_model}",
        _registered_model,
    ),
    View(
        "model-version",
        "Registered model version (tags and schema opened)",
        lambda s: f"/models/{s.registered_model}/versions/{s.version}",
        _model_version,
        height=1200,
    ),
)


def _init_script(sides: list[Side]) -> str:
    """localStorage set before MLflow's UI loads: the "Model training" workflow (not GenAI),
    the assistant panel closed, nested runs expanded in each runs table."""
    items = {
        "mlflow.workflowType_v1": '"machine_learning"',
        "mlflow.assistant.panelOpen_v1": "false",
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    }
    for side in sides:
        items[f"MLflowLocalStorage-1.1-ExperimentView-{side.experiment_id}-expandRows"] = "true"
    return "".join(
        f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in items.items()
    )


def _screenshots(url: str, sides: list[Side], out: Path, env: dict[str, str]) -> list[str]:
    """Drive Debian's Chromium through every view of every side; the failures, if any."""
    from playwright.sync_api import sync_playwright

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            env=dict[str, "str | float | bool"](env),
            viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
            locale="en-US",
            timezone_id="UTC",
        )
        try:
            context.add_init_script(_init_script(sides))
            page = context.new_page()
            for view in VIEWS:
                for side in sides:
                    page.set_viewport_size({"width": VIEWPORT["width"], "height": view.height})
                    page.goto("about:blank")  # a fresh app for every view, no state carried
                    page.goto(f"{url}/#{view.route(side)}")
                    shot = out / f"{view.name}-{side.name}.png"
                    try:
                        view.ready(page, side)
                    except Exception as exc:  # the page as it is, and the reason, in the report
                        failures.append(f"{shot.name}: {type(exc).__name__}: {exc}")
                    page.screenshot(path=str(shot))
        finally:
            context.close()
    return failures


# --- the report -----------------------------------------------------------------------------


def _index_html(sides: list[Side], failures: list[str]) -> str:
    """A page that shows each view's pair side by side, MLflow's client on the left."""
    rows = []
    for view in VIEWS:
        cells = "".join(
            f'<td><div class="side">{html.escape(EXPERIMENTS[s.name])}</div>'
            f'<a href="{view.name}-{s.name}.png"><img src="{view.name}-{s.name}.png"></a></td>'
            for s in sides
        )
        rows.append(f"<h2>{html.escape(view.title)}</h2><table><tr>{cells}</tr></table>")
    ids = "".join(
        f"<li>{html.escape(s.name)}: experiment {s.experiment_id}, run {s.run_id}, "
        f"child {s.child_run_id}, logged model {s.model_id}, "
        f"{html.escape(s.registered_model)} v{s.version}</li>"
        for s in sides
    )
    problems = "".join(f"<li>{html.escape(f)}</li>" for f in failures)
    return (
        "<!doctype html><meta charset=utf-8><title>MLflow UI: MLflow's client vs mlrelay</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{width:100%;table-layout:fixed}"
        "td{vertical-align:top}img{width:100%;border:1px solid #ccc}.side{font-weight:bold}"
        "</style><h1>The same run in MLflow's UI: MLflow's client (left), mlrelay (right)</h1>"
        f"<ul>{ids}</ul>"
        + (f"<p>Views not drawn as expected:</p><ul>{problems}</ul>" if problems else "")
        + "".join(rows)
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the PNGs and index.html (created; default: a new temporary folder)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Log the run with both clients, screenshot every view, write index.html; 1 if any
    view was not drawn as expected (its screenshot is kept all the same)."""
    args = _parse_args(argv)
    import httpx

    out: Path = args.out or Path(tempfile.mkdtemp(prefix="mlrelay-ui-"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlrelay-ui-work-") as tmp:
        workdir = Path(tmp)
        env = _isolated_env(workdir / "home")
        os.environ.update({k: env[k] for k in HOME_VARS})  # Playwright's driver too
        with _server(workdir, env) as url:
            sides = []
            for name in SIDES:
                side = Side(name, client_result=_log_side(name, url, env, workdir))
                with httpx.Client(base_url=url, timeout=30) as api:
                    _resolve(side, api)
                sides.append(side)
            failures = _screenshots(url, sides, out, env)
        for name in SIDES:  # the loggers' warnings, kept next to the pictures
            (out / f"log-{name}.stderr.txt").write_text(
                (workdir / f"log-{name}.stderr").read_text()
            )
    (out / "index.html").write_text(_index_html(sides, failures))
    (out / "sides.json").write_text(json.dumps([s.__dict__ for s in sides], indent=2))
    for failure in failures:
        sys.stderr.write(f"not as expected: {failure}\n")
    sys.stderr.write(f"done in {time.monotonic() - started:.0f} s\n")
    sys.stdout.write(f"{out}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
