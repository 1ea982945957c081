"""`make demo`: start a tracking server on loopback, run examples/quickstart.py against it.

By default the bundled mock server (mlrelay-mock-server) serves the demo; pass --real to
use a real `mlflow server` instead (it must be installed, as `make test` does).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def mock_server() -> Iterator[str]:
    """The bundled MLflow-compatible mock server in a background thread."""
    from mlrelay_mock import MockServer

    with MockServer(host="127.0.0.1", port=0) as server:
        yield server.url


@contextlib.contextmanager
def real_server() -> Iterator[str]:
    """A real `mlflow server` with a temporary sqlite store."""
    sys.path.insert(0, str(HERE.parent))
    from tests._servers import mlflow_server

    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp)) as server:
        yield server.url


def main() -> int:
    """Run the demo and print how to point the same script elsewhere."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", action="store_true", help="use a real `mlflow server`")
    args = parser.parse_args()
    with real_server() if args.real else mock_server() as url:
        kind = "real mlflow server" if args.real else "bundled mock server"
        print(f"Started a {kind} at {url}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_TRACKING_URI"] = url
        code = subprocess.call([sys.executable, str(HERE / "quickstart.py")], env=env)
    print(
        "\nThe same script against your own server or DagsHub:\n"
        "  MLFLOW_TRACKING_URI=https://dagshub.com/<owner>/<repo>.mlflow \\\n"
        "  MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<token> \\\n"
        "  .venv/bin/python examples/quickstart.py\n"
        "or store the token once with:\n"
        "  .venv/bin/mlrelay login --tracking-uri <URI> --username <user>\n"
        "and check the set-up with: .venv/bin/mlrelay doctor"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
