"""Run an MLflow-style script twice against the same server: once as written, with MLflow's
own client, and once with only its imports changed to mlrelay and MLflow's package made
unimportable.

Each side runs in a warm child process (a zygote, ``tests/compat/_child.py serve``) that has
imported the heavy libraries once and forks one child per script, so a script costs its
own work rather than five seconds of imports. The two sides of one script run at the same
time, each in its own experiment (its name ends with a per-side suffix, which the scripts
read from ``COMPAT_SUFFIX`` or get through ``MLFLOW_EXPERIMENT_NAME``).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import select
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests._env import child_env
from tests._timing import deadline

__all__ = [
    "MLFLOW27_MODULES",
    "MLFLOW_MODULES",
    "MLRELAY_MODULES",
    "SCRIPTS",
    "Outcome",
    "Side",
    "Zygote",
    "Zygotes",
    "rewrite_imports",
    "run_pair",
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = HERE / "scripts"
CHILD = HERE / "_child.py"
BLOCKER = HERE / "_block_mlflow"

_LIBRARIES = [
    "numpy", "pandas", "sklearn.datasets", "sklearn.linear_model", "sklearn.metrics",
    "sklearn.model_selection", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm",
]  # fmt: skip
MLFLOW_MODULES = [
    *_LIBRARIES, "xgboost", "lightgbm", "mlflow", "mlflow.sklearn", "mlflow.pyfunc",
    "mlflow.models", "mlflow.xgboost", "mlflow.lightgbm",
]  # fmt: skip
MLRELAY_MODULES = [*_LIBRARIES, "xgboost", "lightgbm"]
MLFLOW27_MODULES = [*_LIBRARIES, "mlflow", "mlflow.sklearn", "mlflow.pyfunc", "mlflow.models"]

SCRIPT_TIMEOUT_S = 300.0  # scaled by deadline(): a bound for a broken run, never a wait


def _alias(alias: ast.alias) -> list[str]:
    """``import mlflow...`` names rewritten so that the same names are bound."""
    name = alias.name
    if name != "mlflow" and not name.startswith("mlflow."):
        return [ast.unparse(alias)]
    target = "mlrelay" + name[len("mlflow") :]
    if alias.asname:
        return [f"{target} as {alias.asname}"]
    if name == "mlflow":
        return ["mlrelay as mlflow"]
    # `import mlflow.sklearn` binds `mlflow`: bind it to mlrelay and load the submodule.
    return ["mlrelay as mlflow", target]


def rewrite_imports(source: str) -> str:
    """``source`` with only its MLflow imports changed to mlrelay, line for line.

    ``import mlflow`` becomes ``import mlrelay as mlflow``, ``import mlflow.sklearn`` binds
    ``mlflow`` to mlrelay and loads ``mlrelay.sklearn``, ``import mlflow.x as y`` becomes
    ``import mlrelay.x as y`` and ``from mlflow.x import y`` becomes ``from mlrelay.x import
    y``. Every other line is kept as it is, so line numbers in tracebacks still match.
    """
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            if not any(a.name.split(".")[0] == "mlflow" for a in node.names):
                continue
            new = "import " + ", ".join(n for a in node.names for n in _alias(a))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "mlflow":
                continue
            names = ", ".join(ast.unparse(a) for a in node.names)
            new = f"from mlrelay{node.module[len('mlflow') :]} import {names}"
        else:
            continue
        if node.end_lineno != node.lineno:
            raise ValueError(f"line {node.lineno}: a multi-line MLflow import is not rewritten")
        line = lines[node.lineno - 1]
        lines[node.lineno - 1] = line[: node.col_offset] + new + line[node.end_col_offset :]
    return "".join(lines)


def _base_env(pythonpath: Sequence[Path]) -> dict[str, str]:
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    env["PYTHONWARNINGS"] = "ignore"  # MLflow's and the libraries' chatter stays out of logs
    return env


class Zygote:
    """A warm interpreter that forks one child per script (``_child.py serve``)."""

    def __init__(
        self, name: str, python: str, modules: Sequence[str], pythonpath: Sequence[Path], log: Path
    ) -> None:
        """Start it; :meth:`wait_ready` waits until its imports are done."""
        self.name = name
        self.log = log
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [python, str(CHILD), "serve", *modules],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                env=_base_env(pythonpath), text=True, start_new_session=True,
            )  # fmt: skip
        self.modules: list[str] = []

    def _answer(self, timeout: float) -> dict[str, Any]:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if ready else ""
        if not line:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {self.name} zygote gave no answer in {timeout} s:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def wait_ready(self) -> None:
        """Wait for the imports; remember which top-level modules the zygote holds."""
        self.modules = self._answer(deadline(120))["ready"]

    def submit(self, request: dict[str, Any]) -> None:
        """Ask for one script run (answered by :meth:`result`)."""
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()

    def result(self) -> int:
        """The exit status of the run submitted last."""
        return int(self._answer(deadline(SCRIPT_TIMEOUT_S))["returncode"])

    def close(self) -> None:
        """End the zygote: close its input and wait, then kill its group if it lingers."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(timeout=deadline(10))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=deadline(10))
        finally:
            self.process.stdout.close()  # type: ignore[union-attr]


@dataclass(frozen=True)
class Side:
    """One way of running the scripts: MLflow's client as written, or mlrelay's rewritten."""

    name: str
    zygote: Zygote
    rewrite: bool


class Zygotes:
    """The session's zygotes, started on first use: ``mlflow`` (MLflow 3's client in this
    venv), ``mlflow27`` (MLflow 2.7.1's client from its own venv) and ``mlrelay`` (this venv,
    MLflow's package blocked, mlrelay from the checkout)."""

    def __init__(self, workdir: Path, *, mlflow27_python: str) -> None:
        """Nothing starts yet."""
        self.workdir = workdir
        self.specs: dict[str, tuple[str, list[str], list[Path]]] = {
            "mlflow": (sys.executable, MLFLOW_MODULES, []),
            "mlflow27": (mlflow27_python, MLFLOW27_MODULES, []),
            "mlrelay": (sys.executable, MLRELAY_MODULES, [BLOCKER, ROOT / "src"]),
        }
        self.running: dict[str, Zygote] = {}

    def start(self, *names: str) -> None:
        """Start these zygotes, if not running yet, without waiting for their imports."""
        for name in names:
            if name not in self.running:
                python, modules, path = self.specs[name]
                log = self.workdir / f"zygote-{name}.log"
                self.running[name] = Zygote(name, python, modules, path, log)

    def sides(self, mlflow: str = "mlflow") -> tuple[Side, Side]:
        """The MLflow side (zygote ``mlflow``) and the mlrelay side, both ready; those not
        running yet start together."""
        self.start(mlflow, "mlrelay")
        for name in (mlflow, "mlrelay"):
            if not self.running[name].modules:
                self.running[name].wait_ready()
        if "mlflow" in self.running["mlrelay"].modules:
            raise RuntimeError("the mlrelay side imported MLflow's package")
        return Side("mlflow", self.running[mlflow], False), Side(
            "mlrelay", self.running["mlrelay"], True
        )

    def close(self) -> None:
        """End every zygote that was started."""
        for zygote in self.running.values():
            zygote.close()


@dataclass(frozen=True)
class Outcome:
    """One side's run of one script."""

    side: str
    script: str
    suffix: str
    returncode: int
    log: Path

    def log_tail(self, n: int = 4000) -> str:
        """The end of what the script printed."""
        return self.log.read_text(errors="replace")[-n:]


def _request(side: Side, script: str, url: str, workdir: Path, token: str) -> dict[str, Any]:
    path = SCRIPTS / f"{script}.py"
    source = path
    if side.rewrite:
        source = workdir / f"{script}.{side.name}.py"
        source.write_text(rewrite_imports(path.read_text()))
    suffix = f"-{side.name}-{token}"
    run_dir = workdir / f"{script}-{side.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_EXPERIMENT_NAME": f"{script}{suffix}",
        "COMPAT_SUFFIX": suffix,
        "MLRELAY_HOME": str(run_dir / "mlrelay-home"),
    }
    return {
        "script": str(path), "source": str(source), "env": env, "cwd": str(run_dir),
        "log": str(run_dir / "output.log"), "suffix": suffix,
    }  # fmt: skip


def run_pair(script: str, url: str, workdir: Path, pair: tuple[Side, Side]) -> list[Outcome]:
    """Run ``script`` on both sides at once against the server at ``url``."""
    token = uuid.uuid4().hex[:8]
    requests = [_request(side, script, url, workdir, token) for side in pair]
    for side, request in zip(pair, requests, strict=True):
        side.zygote.submit(request)
    return [
        Outcome(side.name, script, request["suffix"], side.zygote.result(), Path(request["log"]))
        for side, request in zip(pair, requests, strict=True)
    ]
