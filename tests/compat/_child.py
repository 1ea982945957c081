"""The child side of the compatibility runner: runs MLflow-style scripts as ``__main__``.

Standard library only, so that any interpreter can run it (the main venv, and MLflow
2.7.1's venv). Two modes:

- ``python _child.py run SCRIPT SOURCE``: run once, in this process, the code in file
  SOURCE as if it were the file SCRIPT (``__file__``, ``sys.argv[0]`` and tracebacks name
  SCRIPT), and exit with its status.
- ``python _child.py serve MODULE...``: a zygote. Imports the heavy MODULEs once, then reads
  requests (one JSON object a line: script, source, env, cwd, log) from stdin; for each it
  forks a child that runs the script like ``run`` with its output in ``log``, and answers
  one JSON line (``{"returncode": N}``) on stdout. The forked child starts from the warm
  interpreter, so a script costs its own work, not the ~5 s of importing MLflow, pandas,
  scikit-learn and the boosters again.

The child ends through the interpreter's at-exit handlers (mlrelay flushes its journal
there, as it does at the end of any user's script) and then ``os._exit``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import sys
import traceback
import types
from typing import Any

# A script's own output never reaches the protocol channel: the zygote keeps a private
# copy of its stdout for the answers and points fd 1 at stderr.
_ANSWERS: Any = None


def _execute(script: str, source_path: str) -> int:
    """Run the code in ``source_path`` as ``__main__`` from ``script``; the exit status."""
    with open(source_path, encoding="utf-8") as f:
        code = compile(f.read(), script, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    sys.argv = [script]
    sys.path.insert(0, os.path.dirname(script))
    try:
        exec(code, main.__dict__)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _finish(status: int) -> None:
    """End the process as the interpreter would: at-exit handlers, flushed streams."""
    try:
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
        status = status or 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _forked(request: dict[str, Any]) -> None:
    """In the forked child: redirect output, set the environment, run, never return."""
    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    _finish(_execute(request["script"], request["source"]))


def _serve(modules: list[str]) -> None:
    """The zygote loop: import once, then fork one child per request."""
    global _ANSWERS
    _ANSWERS = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for name in modules:
        importlib.import_module(name)
    _ANSWERS.write(json.dumps({"ready": sorted(m for m in sys.modules if "." not in m)}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _ANSWERS.close()
            _forked(request)
        _, status = os.waitpid(pid, 0)
        _ANSWERS.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


def main(argv: list[str]) -> None:
    """``run SCRIPT SOURCE`` or ``serve MODULE...``."""
    if argv[0] == "run":
        _finish(_execute(argv[1], argv[2]))
    elif argv[0] == "serve":
        _serve(argv[1:])
    else:
        raise SystemExit(f"usage: {sys.argv[0]} run SCRIPT SOURCE | serve MODULE...")


if __name__ == "__main__":
    main(sys.argv[1:])
