"""A large artifact up and down to S3, directly (``s3://``) and through MLflow's proxy.

Usage: python benchmarks/s3_artifacts.py [MiB]   (default 1024, i.e. 1 GiB)

moto's S3 server stands in for the bucket (it keeps objects in memory: expect it to use
more than twice the file size). For each mode a real ``mlflow server`` (sqlite) is started
on 127.0.0.1:

- direct: ``--default-artifact-root s3://mlrelay-bench/direct --no-serve-artifacts``; the
  client writes the bucket itself with boto3 (``mlrelay[s3]``), in parts, as MLflow's does;
- proxied: ``--serve-artifacts --artifacts-destination s3://mlrelay-bench/proxied``; the
  client streams one PUT to the server, which writes the bucket.

A child process uploads the file with ``Client.log_artifact`` and downloads it with
``Client.download_artifacts`` (benchmarks/artifacts.py's child); it reports both times and
its peak RSS (VmHWM). The parent compares SHA-256 digests. Acceptance (issue 15): direct, the
hashes equal and the client's peak RSS under 150 MB.

``measure()`` returns the rows, for benchmarks/scale.py's table.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._s3 import moto_server  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402

BUCKET = "mlrelay-bench"
RSS_TARGET_MB = 150.0

MODES = {"direct": False, "proxied": True}
"""Mode -> whether the server serves (proxies) the artifacts."""


def _artifacts_bench():  # type: ignore[no-untyped-def]
    """benchmarks/artifacts.py as a module (its child process and ``measure``)."""
    path = Path(__file__).with_name("artifacts.py")
    spec = importlib.util.spec_from_file_location("bench_artifacts", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(
    mib: int = 1024, workdir: Path | None = None, modes: tuple[str, ...] = ("direct", "proxied")
) -> list[dict[str, object]]:
    """Send ``mib`` MiB up and back in each mode; one row per mode: ``mode``, ``mib``,
    ``up_s``, ``down_s``, ``rss_mb`` (the client's peak), ``intact`` (SHA-256 equal)."""
    bench = _artifacts_bench()
    with tempfile.TemporaryDirectory(prefix="mlrelay-s3-bench-") as tmp:
        base = workdir or Path(tmp)
        rows = []
        with moto_server(base / "moto", (BUCKET,)) as s3:
            for mode in modes:
                where = base / mode
                with mlflow_server(
                    where / "server",
                    artifacts=f"s3://{BUCKET}/{mode}",
                    serve_artifacts=MODES[mode],
                    env=s3.env,
                ) as server:
                    client_env = s3.env if mode == "direct" else {}
                    result = bench.measure(server.url, mib, where, env=client_env)
                rows.append({"mode": mode, "mib": mib, **result})
                (where / "blob.bin").unlink()  # disk: one copy of the file at a time
        return rows


def main(mib: int = 1024) -> None:
    """Run both modes with ``mib`` MiB and print the table (benchmarks/scale.py calls it
    without arguments: its own command line is not this one's)."""
    rows = measure(mib)
    print(f"\n{mib:,} MiB artifact to S3 (moto on 127.0.0.1), MLflow 3.17.2 server on sqlite\n")
    print("| mode | upload | download | client peak RSS | bytes intact |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        up, down, rss = float(r["up_s"]), float(r["down_s"]), float(r["rss_mb"])  # type: ignore[arg-type]
        print(
            f"| {r['mode']} | {up:.1f} s ({mib / up:,.0f} MiB/s) | {down:.1f} s "
            f"({mib / down:,.0f} MiB/s) | {rss:.0f} MB | {'yes' if r['intact'] else 'NO'} |"
        )
    direct = next((r for r in rows if r["mode"] == "direct"), None)
    if direct is not None:
        ok = direct["intact"] and float(direct["rss_mb"]) < RSS_TARGET_MB  # type: ignore[arg-type]
        verdict = "yes" if ok else "NO"
        print(f"\ndirect: hashes equal and peak RSS < {RSS_TARGET_MB:.0f} MB: {verdict}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
