"""The ``mlrelay`` command: ``login``, ``logout`` and ``doctor``.

``login`` stores a token for a tracking host in the OS keyring (never in a file of
ours); ``logout`` removes it; ``doctor`` shows where every setting came from, whether
the server answers and whether it accepts the credentials, and never prints a secret.
Exit codes: 0 all good, 1 a check failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import httpx

from . import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    Client,
    ConfigurationError,
    MlrelayError,
    PermissionDeniedError,
    __version__,
)
from ._config import resolve
from ._credentials import auth_scheme, host_of, keyring_backend_name, keyring_delete, keyring_store

__all__ = ["main"]

_DESCRIPTION = """\
mlrelay: log ML experiments to any MLflow-compatible tracking server.

Settings are resolved in this order: command-line options, the environment
(MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN, MLRELAY_*),
a .env file in the working directory, the OS keyring (tokens stored by `mlrelay login`),
then defaults. See .env.example for every variable.
"""


def _host(args: argparse.Namespace) -> str:
    uri = args.tracking_uri or resolve({"keyring": False}).tracking_uri
    if not uri:
        raise ConfigurationError(
            "no tracking host: pass --tracking-uri URI or set MLFLOW_TRACKING_URI"
        )
    return host_of(uri)


def _read_token(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.token_stdin or not stdin.isatty():
        token = stdin.readline().strip()
    else:
        token = getpass.getpass("Token (input hidden): ").strip()
    if not token:
        raise ConfigurationError("no token given: type it at the prompt or pipe it on stdin")
    return token


def _cmd_login(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    host = _host(args)
    token = _read_token(args, stdin)
    keyring_store(host, token, username=args.username)
    who = f" as {args.username}" if args.username else ""
    print(f"Stored a token for {host}{who} in the keyring ({keyring_backend_name()}).", file=out)
    return 0


def _cmd_logout(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    host = _host(args)
    if keyring_delete(host):
        print(f"Removed the stored token for {host}.", file=out)
    else:
        print(f"No stored token for {host}.", file=out)
    return 0


def _probe(client: Client, path: str) -> httpx.Response | None:
    try:
        return client._transport.send("GET", path, idempotent=True)
    except APIError:
        return None


def _cmd_doctor(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    explicit = {"tracking_uri": args.tracking_uri} if args.tracking_uri else {}
    settings = resolve(explicit)
    print(f"mlrelay {__version__}", file=out)
    print("Settings (value, then where it came from):", file=out)
    for name, source in settings.sources.items():
        value = getattr(settings, name)
        if name in {"password", "token"}:
            shown = "set (hidden)" if value is not None else "not set"
        else:
            shown = "not set" if value is None else str(value)
        print(f"  {name:<17} {shown:<40} {source}", file=out)
    scheme = auth_scheme(settings)
    print(f"Authentication: {scheme or 'none'}", file=out)
    print(f"Keyring backend: {keyring_backend_name() or 'none available'}", file=out)
    if not settings.tracking_uri:
        print("FAIL no tracking URI configured (set MLFLOW_TRACKING_URI)", file=out)
        return 1
    quick = {"max_retries": 1, "retry_budget": 10.0, "timeout": min(settings.timeout, 10.0)}
    with Client(**explicit, **quick) as client:  # type: ignore[arg-type]
        started = time.perf_counter()
        version = _probe(client, "/version")
        try:
            next(client.search_experiments(max_results=1, page_size=1), None)
        except APIConnectionError as exc:
            print(f"FAIL server unreachable at {client.tracking_uri}: {exc}", file=out)
            return 1
        except AuthenticationError as exc:
            hint = "check the token" if scheme else "set credentials or run `mlrelay login`"
            print(f"OK   server reachable at {client.tracking_uri}", file=out)
            print(f"FAIL credentials rejected (HTTP {exc.status_code}); {hint}", file=out)
            return 1
        except PermissionDeniedError as exc:
            print(f"OK   server reachable at {client.tracking_uri}", file=out)
            print(f"FAIL credentials accepted but lack permission: {exc.server_message}", file=out)
            return 1
        except APIError as exc:
            print(f"FAIL the server answered with an error: {exc}", file=out)
            return 1
        elapsed = (time.perf_counter() - started) * 1000
        server = version.text.strip()[:40] if version is not None else "unknown version"
        print(
            f"OK   server reachable at {client.tracking_uri} (MLflow {server}, {elapsed:.0f} ms)",
            file=out,
        )
        print(f"OK   credentials accepted ({scheme or 'no authentication needed'})", file=out)
    return 0


def _cmd_sync(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    from pathlib import Path

    from ._journal import Journal, RunRecord, default_home
    from ._pipeline import sync_orphans

    settings = resolve()
    path = Path(settings.home or default_home()) / "journal.db"
    if not path.exists():
        print(f"Nothing to sync: no journal at {path}.", file=out)
        return 0
    journal = Journal(path)

    def report(run: RunRecord, left: int) -> None:
        where = run.server_run_id or "not created yet"
        state = "done" if left == 0 and run.final_sent else f"{left} entries left"
        print(f"run {run.local_id} -> {where} on {run.tracking_uri}: {state}", file=out)

    try:
        left = sync_orphans(
            journal,
            lambda uri: Client(tracking_uri=uri, max_retries=2, retry_budget=30.0),
            tracking_uri=args.tracking_uri,
            report=report,
        )
    finally:
        journal.close()
    remaining = sum(left.values())
    print(f"Synced {len(left)} run(s); {remaining} entries left.", file=out)
    return 1 if remaining else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlrelay", description=_DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mlrelay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--tracking-uri",
            metavar="URI",
            help="the tracking server (default: MLFLOW_TRACKING_URI); credentials are per host",
        )
        return p

    login = add(
        "login",
        "Store a token for the tracking host in the OS keyring. The token is read from a\n"
        "hidden prompt, or from stdin when piped (echo $TOKEN | mlrelay login).",
    )
    login.add_argument(
        "--username",
        help="user name for HTTP Basic auth (DagsHub: your user name); "
        "without it the token is sent as a Bearer token",
    )
    login.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    login.set_defaults(func=_cmd_login)
    add("logout", "Remove the stored token for the tracking host.").set_defaults(func=_cmd_logout)
    add(
        "sync",
        "Send what exited processes left in the journal ($MLRELAY_HOME/journal.db): runs are\n"
        "created once, entries sent in order, final status last. Runs of live processes are\n"
        "left to them. Exit code 1 if anything is left.",
    ).set_defaults(func=_cmd_sync)
    add(
        "doctor",
        "Show the resolved settings and where each came from (never secrets), check that the\n"
        "server answers and that it accepts the credentials. Exit code 1 if a check fails.",
    ).set_defaults(func=_cmd_doctor)
    return parser


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    """Run the ``mlrelay`` command and return its exit code.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
        out: where to print (stdout when None).
        stdin: where a piped token is read from (stdin when None).
    """
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        code: int = args.func(args, out, stdin or sys.stdin)
    except ConfigurationError as exc:
        print(f"mlrelay {args.command}: {exc}", file=sys.stderr)
        return 2
    except MlrelayError as exc:
        print(f"mlrelay {args.command}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
