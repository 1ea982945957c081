"""Command-line entry point: ``mlrelay-mock-server --host 127.0.0.1 --port N``.

Prints one line, the tracking URI, once the server accepts connections, then serves until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from mlrelay_mock._app import DEFAULT_MAX_BODY_BYTES
from mlrelay_mock._auth import AuthConfig
from mlrelay_mock._server import MockServer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlrelay-mock-server",
        description="An MLflow-compatible tracking server for tests, with fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (0 = a free one)")
    parser.add_argument("--prefix", default="", help="serve under this path, e.g. /u/r.mlflow")
    parser.add_argument("--data-dir", type=Path, help="keep state here across restarts")
    parser.add_argument("--mlflow-version", default="3.17.2", help="the version to pose as")
    parser.add_argument(
        "--basic-auth",
        action="append",
        default=[],
        metavar="USER:TOKEN",
        help="require HTTP Basic with these credentials (repeatable)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="answer 413 to larger request bodies (artifact uploads excepted; 0 = no limit)",
    )
    parser.add_argument(
        "--default-artifact-root",
        metavar="FOLDER",
        help="keep artifacts in this local folder (path or file: URI); experiments get file: "
        "locations there and clients read and write the files directly, as `mlflow server "
        "--default-artifact-root` without --serve-artifacts (default: proxied artifacts)",
    )
    parser.add_argument(
        "--bearer-token", action="append", default=[], help="accept this Bearer token (repeatable)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the server until interrupted."""
    args = _parser().parse_args(argv)
    auth = None
    if args.basic_auth or args.bearer_token:
        basic = {}
        for item in args.basic_auth:
            user, sep, token = item.partition(":")
            if not sep:
                raise SystemExit(f"--basic-auth needs USER:TOKEN, got {item!r}")
            basic[user] = token
        auth = AuthConfig(basic=basic, bearer=tuple(args.bearer_token))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = MockServer(
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        auth=auth,
        data_dir=args.data_dir,
        mlflow_version=args.mlflow_version,
        max_body_bytes=args.max_body_bytes or None,
        default_artifact_root=args.default_artifact_root,
    )
    with server:
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
