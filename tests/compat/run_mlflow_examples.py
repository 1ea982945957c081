"""Run MLflow's own classic-ML examples twice, with MLflow's client and with mlrelay.

Usage (from the repository root, with the test virtualenv that has ``mlflow`` installed)::

    PYTHONPATH=src:. python tests/compat/run_mlflow_examples.py /path/to/mlflow-checkout
    python tests/compat/run_mlflow_examples.py CHECKOUT --tracking-uri URI_A \
        --mlrelay-tracking-uri URI_B [--only NAME ...] [--json report.json]

``CHECKOUT`` is a source checkout of MLflow (its ``examples/`` and ``docs/``; nothing of it is
copied into this repository). Each example runs in a child process twice from the same
directory: once unchanged with MLflow's client, once with only its import lines rewritten
(``import mlflow`` -> ``import mlrelay as mlflow``, ``from mlflow.X import`` ->
``from mlrelay.X import``, ``import mlflow.X`` -> ``import mlrelay.X``) and the real ``mlflow``
package made unimportable by a meta-path finder. Each side logs to its own tracking server
(registered model names repeat between the sides); without ``--tracking-uri`` the script starts
two real ``mlflow server`` processes on 127.0.0.1 itself. The children get a throwaway HOME,
MLRELAY_HOME and XDG directories.

What each side landed is read back through MLflow's own ``MlflowClient`` and compared: runs
(status, params, metric histories, tags without ids and timestamps, dataset inputs, artifact
paths), logged models (name, params, metric keys, tags, artifact paths) and registered model
versions. The report says per example whether each side completed (exit code, last traceback
line) and what differed. Exit status: 0 when every example completed on both sides and landed
the same, 1 otherwise.

Data: the examples that download ``winequality-red.csv`` from GitHub read, instead, the
``wine-quality.csv`` the checkout carries (the white-wine set), written with ``;`` as the
URL's file is; both sides read the same substitute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
WINE_URL = (
    "https://raw.githubusercontent.com/mlflow/mlflow/master/tests/datasets/winequality-red.csv"
)
CHILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Example:
    """One script to run: a file of the checkout, or python blocks of a docs page joined."""

    name: str
    path: str  # relative to the checkout
    args: tuple[str, ...] = ()
    blocks: tuple[int, ...] = ()  # for a .md/.mdx page: which ```python blocks, in order
    random_values: bool = False  # the example draws random numbers: compare keys, not values
    env: tuple[tuple[str, str], ...] = ()


EXAMPLES: tuple[Example, ...] = (
    Example("sklearn_elasticnet_wine", "examples/sklearn_elasticnet_wine/train.py"),
    Example("sklearn_logistic_regression", "examples/sklearn_logistic_regression/train.py"),
    Example(
        "sklearn_elasticnet_diabetes",
        "examples/sklearn_elasticnet_diabetes/linux/train_diabetes.py",
    ),
    Example("quickstart_tracking", "examples/quickstart/mlflow_tracking.py", random_values=True),
    Example("mlflow_artifacts", "examples/mlflow_artifacts/example.py"),
    Example("remote_server", "examples/remote_store/remote_server.py", random_values=True),
    Example(
        "docker_train", "examples/docker/train.py", args=("--alpha", "0.5", "--l1-ratio", "0.1")
    ),
    Example("load_model_runs_uri", "examples/mlflow-3/load_model_from_runs_uri.py"),
    Example("pyfunc_train", "examples/pyfunc/train.py"),
    Example("sklearn_autolog_linear", "examples/sklearn_autolog/linear_regression.py"),
    Example("sklearn_autolog_pipeline", "examples/sklearn_autolog/pipeline.py"),
    Example("sklearn_autolog_grid_search", "examples/sklearn_autolog/grid_search_cv.py"),
    Example(  # splits the data without a seed
        "mlflow3_sklearn_example", "examples/mlflow-3/sklearn_example.py", random_values=True
    ),
    Example("mlflow3_sklearn_autolog", "examples/mlflow-3/sklearn_autolog.py"),
    Example("mlflow3_register_model", "examples/mlflow-3/register_model.py"),
    Example(
        "docs_quickstart",
        "docs/docs/classic-ml/getting-started/quickstart.mdx",
        blocks=(0, 1, 2, 3, 4),
    ),
    Example(
        "docs_autolog",
        "docs/docs/classic-ml/tracking/autolog/index.mdx",
        blocks=(1,),
        random_values=True,
    ),
    Example(
        "docs_sklearn_autolog", "docs/docs/classic-ml/traditional-ml/sklearn/index.mdx", blocks=(0,)
    ),
    Example(
        "docs_registry_tutorial", "docs/docs/classic-ml/model-registry/tutorial.mdx", blocks=(0, 1)
    ),
)

# Import lines, rewritten for the mlrelay side. Only lines that start (after indentation) with
# an import of mlflow change; everything else stays byte for byte.
_IMPORT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\s*)import mlflow\s*$"), r"\1import mlrelay as mlflow"),
    (re.compile(r"^(\s*)import mlflow\.([\w.]+) as (\w+)\s*$"), r"\1import mlrelay.\2 as \3"),
    (
        re.compile(r"^(\s*)import mlflow\.([\w.]+)\s*$"),
        r"\1import mlrelay.\2; import mlrelay as mlflow",
    ),
    (re.compile(r"^(\s*)from mlflow import "), r"\1from mlrelay import "),
    (re.compile(r"^(\s*)from mlflow\.([\w.]+) import "), r"\1from mlrelay.\2 import "),
)

_BLOCKER = '''\
import importlib.abc
import sys


class _NoMlflow(importlib.abc.MetaPathFinder):
    """Make the real mlflow package unimportable."""

    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError(f"the real mlflow package is blocked here ({name})")
        return None


sys.meta_path.insert(0, _NoMlflow())
'''

_RUNNER = """\
import runpy
import sys

script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, __import__("os").path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


def rewrite_imports(source: str) -> str:
    """The source with only its mlflow import lines pointed at mlrelay."""
    out = []
    for line in source.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        for pattern, replacement in _IMPORT_RULES:
            new, n = pattern.subn(replacement, body)
            if n:
                body = new
                break
        out.append(body + ending)
    return "".join(out)


def docs_script(page: Path, blocks: tuple[int, ...]) -> str:
    """The chosen ```python blocks of a docs page, joined into one script."""
    found = re.findall(r"```python[^\n]*\n(.*?)```", page.read_text(), re.S)
    return "\n\n".join(textwrap.dedent(found[i]) for i in blocks)


def prepare_workdir(checkout: Path, example: Example, workdir: Path, *, mlrelay: bool) -> Path:
    """Copy the example (and its directory's files) to ``workdir``; return the script path."""
    if workdir.exists():
        shutil.rmtree(workdir)
    src = checkout / example.path
    if example.blocks:
        workdir.mkdir(parents=True)
        script = workdir / (src.stem.replace("-", "_") + "_snippets.py")
        script.write_text(docs_script(src, example.blocks))
    else:
        shutil.copytree(src.parent, workdir, ignore=shutil.ignore_patterns("*.ipynb", "*.png"))
        script = workdir / src.name
    wine = checkout / "examples/sklearn_elasticnet_wine/wine-quality.csv"
    for py in workdir.rglob("*.py"):
        text = py.read_text()
        if WINE_URL in text:
            local = workdir / "winequality-red-substitute.csv"
            local.write_text(wine.read_text().replace(",", ";"))
            text = text.replace(WINE_URL, str(local))
        if mlrelay:
            text = rewrite_imports(text)
        py.write_text(text)
    return script


@dataclass
class Outcome:
    """How one side's child process ended."""

    returncode: int
    seconds: float
    last_error: str
    log: str

    @property
    def completed(self) -> bool:
        """The script ran to its end."""
        return self.returncode == 0


def _last_traceback_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if "Traceback (most recent call last)" not in text:
        return lines[-1] if lines else ""
    tail = text[text.rindex("Traceback (most recent call last)") :].splitlines()
    for ln in reversed(tail):
        if ln and not ln.startswith(" "):
            return ln
    return lines[-1]


def run_child(
    script: Path, example: Example, *, tracking_uri: str, home: Path, mlrelay: bool
) -> Outcome:
    """Run ``script`` in a child interpreter against ``tracking_uri``."""
    runner_dir = home / "_runner"
    runner_dir.mkdir(parents=True, exist_ok=True)
    runner = runner_dir / "run.py"
    runner.write_text((_BLOCKER if mlrelay else "") + _RUNNER)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "MLRELAY_", "DAGSHUB_", "XDG_", "PYTHON"))
    }
    for sub in ("config", "cache", "data", "state"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        MLRELAY_HOME=str(home / "mlrelay"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        MLFLOW_TRACKING_URI=tracking_uri,
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
        **dict(example.env),
    )
    if mlrelay:
        env["PYTHONPATH"] = str(REPO_ROOT / "src")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(runner), str(script), *example.args],
            cwd=script.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = -9, f"{exc.stdout or ''}{exc.stderr or ''}\ntimed out after {CHILD_TIMEOUT_S} s"
    seconds = time.monotonic() - started
    return Outcome(code, seconds, "" if code == 0 else _last_traceback_line(out), out)


# ---------------------------------------------------------------------------------------------
# Reading back what a side landed, through MLflow's own client.

_HIDDEN_TAGS = {"mlflow.runName", "mlflow.mlrelay.clientKey", "mlrelay.client_key"}
_ID_PATTERNS = (
    (re.compile(r"m-[0-9a-f]{32}"), "<model-id>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?"), "<time>"),
    (re.compile(r"\b1[6-9]\d{11}\b"), "<ms>"),
    (re.compile(r"\b1[6-9]\d{8}(\.\d+)?\b"), "<s>"),
    (re.compile(r"/tmp/[^\s\"']*"), "<tmp>"),
)


def normalise(value: str) -> str:
    """``value`` with ids, timestamps and temp paths replaced by placeholders."""
    for pattern, placeholder in _ID_PATTERNS:
        value = pattern.sub(placeholder, value)
    return value


@dataclass
class Landed:
    """What one side left on its server for one example."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)


def _artifact_paths(list_fn: Any, path: str | None = None) -> list[str]:
    out: list[str] = []
    for item in list_fn(path):
        if item.is_dir:
            out.extend(_artifact_paths(list_fn, item.path))
        else:
            out.append(item.path)
    return sorted(out)


def _in_pairing_order(runs: list[Any]) -> list[Any]:
    """Top-level runs by start time, then each run's children after it, ordered by their
    params (a grid search's candidates start in a different order on each side)."""
    by_parent: dict[str | None, list[Any]] = {}
    ids = {r.info.run_id for r in runs}
    for r in runs:
        parent = r.data.tags.get("mlflow.parentRunId")
        by_parent.setdefault(parent if parent in ids else None, []).append(r)
    ordered: list[Any] = []

    def visit(parent: str | None) -> None:
        children = by_parent.get(parent, [])
        if parent is None:
            children.sort(key=lambda r: (r.info.start_time or 0, r.info.run_name or ""))
        else:
            children.sort(key=lambda r: (sorted(r.data.params.items()), r.info.start_time or 0))
        for child in children:
            ordered.append(child)
            visit(child.info.run_id)

    visit(None)
    return ordered


class Reader:
    """Reads one server's state through ``mlflow.MlflowClient``."""

    def __init__(self, tracking_uri: str) -> None:
        """Bind a client to ``tracking_uri``."""
        from mlflow import MlflowClient

        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """Point MLflow's process-wide URIs at this server (as MLFLOW_TRACKING_URI would):
        ``list_artifacts`` of a run's model folder resolves ``models:/`` through them."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        yield

    def snapshot(self) -> tuple[set[str], set[str], set[tuple[str, str]]]:
        """The ids of every run, logged model and model version on the server now."""
        runs, models = self._runs(), self._models()
        return {r.info.run_id for r in runs}, {m.model_id for m in models}, self._version_keys()

    def _experiment_ids(self) -> list[str]:
        from mlflow.entities import ViewType

        return [e.experiment_id for e in self.client.search_experiments(view_type=ViewType.ALL)]

    def _runs(self) -> list[Any]:
        from mlflow.entities import ViewType

        ids = self._experiment_ids()
        return list(self.client.search_runs(ids, run_view_type=ViewType.ALL, max_results=50000))

    def _models(self) -> list[Any]:
        ids = self._experiment_ids()
        return list(self.client.search_logged_models(experiment_ids=ids, max_results=10000))

    def _version_keys(self) -> set[tuple[str, str]]:
        return {(v.name, v.version) for v in self.client.search_model_versions(max_results=10000)}

    def landed_since(self, before: tuple[set[str], set[str], set[tuple[str, str]]]) -> Landed:
        """Everything that appeared on the server after ``before`` was taken."""
        run_ids, model_ids, version_keys = before
        runs = _in_pairing_order([r for r in self._runs() if r.info.run_id not in run_ids])
        index = {r.info.run_id: i for i, r in enumerate(runs)}
        models = sorted(
            (m for m in self._models() if m.model_id not in model_ids),
            key=lambda m: (m.creation_timestamp or 0, m.name),
        )
        midx = {m.model_id: i for i, m in enumerate(models)}
        versions = sorted(
            (k for k in self._version_keys() if k not in version_keys),
            key=lambda k: (k[0], int(k[1])),
        )
        return Landed(
            runs=[self._run(r, index, midx) for r in runs],
            models=[self._model(m, index) for m in models],
            versions=[self._version(name, v, index, midx) for name, v in versions],
        )

    def _run(self, run: Any, index: dict[str, int], midx: dict[str, int]) -> dict[str, Any]:
        rid = run.info.run_id
        metrics = {}
        for key in sorted(run.data.metrics):
            hist = self.client.get_metric_history(rid, key)
            metrics[key] = sorted((m.step, m.value) for m in hist)
        tags = {}
        for k, v in sorted(run.data.tags.items()):
            if k in _HIDDEN_TAGS:
                continue
            if k == "mlflow.parentRunId":
                tags[k] = f"<run {index.get(v, '?')}>"
            else:
                tags[k] = normalise(v)
        inputs = sorted(
            (
                d.dataset.name,
                d.dataset.digest,
                d.dataset.source_type,
                tuple(sorted((t.key, t.value) for t in d.tags)),
            )
            for d in (run.inputs.dataset_inputs if run.inputs else [])
        )
        outputs = sorted(
            (f"<model {midx.get(o.model_id, '?')}>", o.step)
            for o in (run.outputs.model_outputs if run.outputs else [])
        )
        return {
            "run_name": run.info.run_name,
            "status": run.info.status,
            "lifecycle_stage": run.info.lifecycle_stage,
            "params": dict(sorted(run.data.params.items())),
            "metrics": metrics,
            "tags": tags,
            "inputs": inputs,
            "outputs": outputs,
            "artifacts": self._listing(lambda p: self.client.list_artifacts(rid, p)),
        }

    def _listing(self, list_fn: Any) -> list[str] | str:
        try:
            return _artifact_paths(list_fn)
        except Exception as exc:  # a listing error is a finding, not a crash of the report
            return f"<listing failed: {type(exc).__name__}: {str(exc)[:120]}>"

    def _model(self, model: Any, index: dict[str, int]) -> dict[str, Any]:
        mid = model.model_id
        return {
            "name": model.name,
            "source_run": f"<run {index.get(model.source_run_id, '?')}>",
            "status": str(model.status),
            "params": dict(sorted((model.params or {}).items())),
            "metrics": sorted({(m.key, m.step, round(m.value, 9)) for m in (model.metrics or [])}),
            "tags": {
                k: normalise(v)
                for k, v in sorted((model.tags or {}).items())
                if k not in _HIDDEN_TAGS
            },
            "artifacts": self._listing(lambda p: self.client.list_logged_model_artifacts(mid, p)),
        }

    def _version(
        self, name: str, version: str, index: dict[str, int], midx: dict[str, int]
    ) -> dict[str, Any]:
        mv = self.client.get_model_version(name, version)
        return {
            "name": name,
            "version": mv.version,
            "status": mv.status,
            "run": f"<run {index.get(mv.run_id, '?')}>",
            "model": f"<model {midx.get(getattr(mv, 'model_id', None) or '', '?')}>",
            "source": normalise(mv.source or ""),
            "tags": {k: normalise(v) for k, v in sorted(mv.tags.items()) if k not in _HIDDEN_TAGS},
            "aliases": sorted(mv.aliases),
        }


# ---------------------------------------------------------------------------------------------
# Comparing the two sides.


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _diff_dict(
    label: str, a: dict[str, Any], b: dict[str, Any], *, values: bool = True
) -> list[str]:
    out = []
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a:
        out.append(f"{label}: only MLflow: {only_a}")
    if only_b:
        out.append(f"{label}: only mlrelay: {only_b}")
    if values:
        for k in sorted(set(a) & set(b)):
            if not _same_value(a[k], b[k]):
                out.append(f"{label}[{k}]: MLflow {_short(a[k])} != mlrelay {_short(b[k])}")
    return out


def _short(v: Any, n: int = 160) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def _diff_list(label: str, a: Any, b: Any) -> list[str]:
    if a == b:
        return []
    if isinstance(a, list) and isinstance(b, list):
        sa, sb = {repr(x) for x in a}, {repr(x) for x in b}
        parts = []
        if sa - sb:
            parts.append(f"only MLflow {sorted(sa - sb)}")
        if sb - sa:
            parts.append(f"only mlrelay {sorted(sb - sa)}")
        if not parts:
            parts.append(f"counts MLflow {len(a)} / mlrelay {len(b)}")
        return [f"{label}: " + "; ".join(parts)]
    return [f"{label}: MLflow {_short(a)} != mlrelay {_short(b)}"]


def compare(a: Landed, b: Landed, *, random_values: bool) -> list[str]:
    """What ``b`` (mlrelay) landed differently from ``a`` (MLflow's client)."""
    diffs: list[str] = []
    if len(a.runs) != len(b.runs):
        diffs.append(f"runs: MLflow {len(a.runs)} != mlrelay {len(b.runs)}")
    for i, (ra, rb) in enumerate(zip(a.runs, b.runs, strict=False)):
        p = f"run {i}"
        for key in ("status", "lifecycle_stage", "run_name"):
            if key == "run_name" and not (ra[key] or "").strip(" ") and not rb[key]:
                continue
            if key == "run_name" and ra[key] != rb[key] and _generated(ra[key], rb[key]):
                continue
            if ra[key] != rb[key]:
                diffs.append(f"{p} {key}: MLflow {ra[key]!r} != mlrelay {rb[key]!r}")
        diffs += _diff_dict(f"{p} params", ra["params"], rb["params"], values=not random_values)
        diffs += _diff_dict(
            f"{p} metrics",
            _untimed(ra["metrics"]),
            _untimed(rb["metrics"]),
            values=not random_values,
        )
        if random_values:  # values drawn at random: still the same steps
            for k in sorted(set(ra["metrics"]) & set(rb["metrics"])):
                sa = [s for s, _ in ra["metrics"][k]]
                sb = [s for s, _ in rb["metrics"][k]]
                if sa != sb:
                    diffs.append(f"{p} metric steps[{k}]: MLflow {sa} != mlrelay {sb}")
        diffs += _diff_dict(f"{p} tags", ra["tags"], rb["tags"])
        ia, ib = ra["inputs"], rb["inputs"]
        if random_values:  # the data are drawn at random: the digest differs by design
            ia, ib = [(n, t, c) for n, _, t, c in ia], [(n, t, c) for n, _, t, c in ib]
        diffs += _diff_list(f"{p} inputs", ia, ib)
        diffs += _diff_list(f"{p} outputs", ra["outputs"], rb["outputs"])
        diffs += _diff_list(f"{p} artifacts", ra["artifacts"], rb["artifacts"])
    if len(a.models) != len(b.models):
        diffs.append(
            f"logged models: MLflow {len(a.models)} {[m['name'] for m in a.models]} != "
            f"mlrelay {len(b.models)} {[m['name'] for m in b.models]}"
        )
    for i, (ma, mb) in enumerate(zip(a.models, b.models, strict=False)):
        p = f"model {i} ({ma['name']})"
        for key in ("name", "source_run", "status"):
            if ma[key] != mb[key]:
                diffs.append(f"{p} {key}: MLflow {ma[key]!r} != mlrelay {mb[key]!r}")
        diffs += _diff_dict(f"{p} params", ma["params"], mb["params"], values=not random_values)
        ka = sorted({(k, s) for k, s, _ in ma["metrics"]})
        kb = sorted({(k, s) for k, s, _ in mb["metrics"]})
        diffs += _diff_list(f"{p} metric keys", ka, kb)
        steady_a = [m for m in ma["metrics"] if not m[0].endswith("_time")]  # wall-clock values
        steady_b = [m for m in mb["metrics"] if not m[0].endswith("_time")]  # differ every run
        if not random_values and ka == kb and not _same_value(steady_a, steady_b):
            diffs.append(f"{p} metric values differ")
        diffs += _diff_dict(f"{p} tags", ma["tags"], mb["tags"])
        diffs += _diff_list(f"{p} artifacts", ma["artifacts"], mb["artifacts"])
    va = [(v["name"], v["version"]) for v in a.versions]
    vb = [(v["name"], v["version"]) for v in b.versions]
    diffs += _diff_list("model versions", va, vb)
    for xa, xb in zip(a.versions, b.versions, strict=False):
        if (xa["name"], xa["version"]) != (xb["name"], xb["version"]):
            continue
        p = f"version {xa['name']}/{xa['version']}"
        for key in ("status", "run", "model", "source", "aliases"):
            if xa[key] != xb[key]:
                diffs.append(f"{p} {key}: MLflow {xa[key]!r} != mlrelay {xb[key]!r}")
        diffs += _diff_dict(f"{p} tags", xa["tags"], xb["tags"])
    return diffs


def _untimed(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics without wall-clock measurements (a grid search's ``mean_fit_time``, ...),
    whose values differ on every run; their keys and steps are still compared."""
    return {k: ([s for s, _ in v] if k.endswith("_time") else v) for k, v in metrics.items()}


def _generated(a: str, b: str) -> bool:
    """Both run names look like MLflow's generated ``adjective-animal-123``."""
    pat = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")
    return bool(pat.match(a or "") and pat.match(b or ""))


# ---------------------------------------------------------------------------------------------
# Driving.


@contextlib.contextmanager
def _servers(root: Path, count: int) -> Iterator[list[str]]:
    sys.path.insert(0, str(REPO_ROOT))
    from tests._servers import mlflow_server

    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(mlflow_server(root / f"server-{i}")).url for i in range(count)]
        yield urls


@dataclass
class Result:
    """One example's outcome on both sides and the differences in what they landed."""

    example: Example
    mlflow: Outcome
    mlrelay: Outcome
    diffs: list[str]
    landed: dict[str, Any]


def run_example(
    checkout: Path, example: Example, root: Path, readers: dict[str, Reader], uris: dict[str, str]
) -> Result:
    """Run one example on both sides and compare what each landed."""
    outcomes: dict[str, Outcome] = {}
    landed: dict[str, Landed] = {}
    workdir = root / "work" / example.name  # the same path for both sides: same source tags
    for side in ("mlflow", "mlrelay"):
        script = prepare_workdir(checkout, example, workdir, mlrelay=side == "mlrelay")
        with readers[side].bound():
            before = readers[side].snapshot()
        outcomes[side] = run_child(
            script,
            example,
            tracking_uri=uris[side],
            home=root / "homes" / side / example.name,
            mlrelay=side == "mlrelay",
        )
        with readers[side].bound():
            landed[side] = readers[side].landed_since(before)
    diffs = compare(landed["mlflow"], landed["mlrelay"], random_values=example.random_values)
    return Result(
        example,
        outcomes["mlflow"],
        outcomes["mlrelay"],
        diffs,
        {k: v.__dict__ for k, v in landed.items()},
    )


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def report(results: list[Result]) -> None:
    """Print one block per example."""
    for r in results:
        blocks = f" blocks {r.example.blocks}" if r.example.blocks else ""
        _say(f"== {r.example.name}  ({r.example.path}{blocks})")
        for side, o in (("MLflow ", r.mlflow), ("mlrelay", r.mlrelay)):
            state = "completed" if o.completed else f"FAILED rc={o.returncode}: {o.last_error}"
            _say(f"   {side}: {state} ({o.seconds:.1f} s)")
        if r.diffs:
            _say("   landed differently:")
            for d in r.diffs:
                _say(f"     - {d}")
        else:
            _say("   landed the same")
    ok = sum(r.mlflow.completed and r.mlrelay.completed and not r.diffs for r in results)
    _say(f"\n{ok}/{len(results)} examples completed on both sides and landed the same")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the examples, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="an MLflow source checkout (examples/, docs/)")
    parser.add_argument("--tracking-uri", help="server for MLflow's client (default: start one)")
    parser.add_argument(
        "--mlrelay-tracking-uri", help="server for mlrelay (default: --tracking-uri or start one)"
    )
    parser.add_argument("--only", action="append", default=[], help="run only these examples")
    parser.add_argument("--json", type=Path, help="also write the full results here")
    parser.add_argument("--show-logs", action="store_true", help="print each child's output")
    args = parser.parse_args(argv)
    chosen = [e for e in EXAMPLES if not args.only or e.name in args.only]
    with tempfile.TemporaryDirectory(prefix="mlflow-examples-") as tmp:
        root = Path(tmp)
        with contextlib.ExitStack() as stack:
            if args.tracking_uri:
                uris = {"mlflow": args.tracking_uri}
                uris["mlrelay"] = args.mlrelay_tracking_uri or args.tracking_uri
            else:
                started = stack.enter_context(_servers(root, 2))
                uris = {"mlflow": started[0], "mlrelay": started[1]}
            readers = {side: Reader(uri) for side, uri in uris.items()}
            results = []
            for example in chosen:
                result = run_example(args.checkout.resolve(), example, root, readers, uris)
                results.append(result)
                if args.show_logs:
                    for side in ("mlflow", "mlrelay"):
                        _say(f"---- {example.name} [{side}] output ----")
                        _say(getattr(result, side).log[-6000:])
                report([result])
    _say("\n==== summary ====")
    report(results)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "name": r.example.name,
                        "path": r.example.path,
                        "blocks": r.example.blocks,
                        "mlflow": {**r.mlflow.__dict__, "log": r.mlflow.log[-4000:]},
                        "mlrelay": {**r.mlrelay.__dict__, "log": r.mlrelay.log[-4000:]},
                        "diffs": r.diffs,
                        "landed": r.landed,
                    }
                    for r in results
                ],
                indent=1,
                default=str,
            )
        )
    return (
        0 if all(r.mlflow.completed and r.mlrelay.completed and not r.diffs for r in results) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
