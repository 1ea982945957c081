"""Command-line entry point: ``mlrelay-mock-server --host 127.0.0.1 --port N``."""


def main() -> None:
    """Start the mock server (not implemented yet)."""
    raise SystemExit("mlrelay-mock-server: not implemented yet")
