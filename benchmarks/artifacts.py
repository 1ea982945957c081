"""A large artifact up and down through a real MLflow server: peak RSS and integrity.

Usage: python benchmarks/artifacts.py [MiB] [--multipart]   (default 1024, i.e. 1 GiB)

A child process uploads a file of random bytes with ``Client.log_artifact`` and downloads it
with ``Client.download_artifacts``; it reports its peak RSS and both times. The parent
compares SHA-256 digests of the original and the download. With ``--multipart`` the server is
the bundled mock offering multipart uploads (MLflow's own server offers them only on cloud
stores), and the file goes in 10 MiB parts, each streamed from disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._env import child_env  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import mlrelay
    from mlrelay._stores import proxy
    uri, path, out, multipart = sys.argv[1:5]
    if multipart == "1":
        proxy.MULTIPART_MIN_BYTES = 1 << 20  # the server offers it: every file in parts
    with mlrelay.Client(tracking_uri=uri, timeout=600) as client:
        run_id = client.create_run("0").info.run_id
        t = time.perf_counter()
        client.log_artifact(run_id, path, "big")
        up = time.perf_counter() - t
        t = time.perf_counter()
        local = client.download_artifacts(run_id, "big/" + path.rsplit("/", 1)[-1], out)
        down = time.perf_counter() - t
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would include the
    # parent's size at fork time.
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    print(json.dumps({"up_s": up, "down_s": down, "rss_mb": rss, "local": local}))
    """
)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def measure(
    uri: str,
    mib: int,
    workdir: Path,
    *,
    multipart: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, object]:
    """Write ``mib`` MiB of random bytes, send them up and back in a child process (in parts
    when ``multipart`` and the server offers them); ``env`` is added to the child's
    environment (an s3:// endpoint and credentials)."""
    src = workdir / "blob.bin"
    with src.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    out = workdir / "down"
    out.mkdir()
    result = json.loads(
        subprocess.run(
            [sys.executable, "-c", CHILD, uri, str(src), str(out), "1" if multipart else "0"],
            env=child_env(**(env or {})),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    result["intact"] = _digest(src) == _digest(Path(str(result["local"])))
    return result


def main() -> None:
    """Run it and print the table."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    multipart = "--multipart" in sys.argv[1:]
    mib = int(args[0]) if args else 1024
    with tempfile.TemporaryDirectory(prefix="mlrelay-art-bench-") as tmp:
        if multipart:
            from mlrelay_mock import MockServer

            with MockServer(multipart=True) as mock:
                r = measure(mock.url, mib, Path(tmp), multipart=True)
            where = "the mock's multipart uploads (10 MiB parts)"
        else:
            with mlflow_server(Path(tmp) / "server") as server:
                r = measure(server.url, mib, Path(tmp))
            where = "MLflow 3.17.2's proxy"
    print(f"\n{mib:,} MiB artifact through {where} on 127.0.0.1\n")
    print("| upload | download | peak RSS of the client process | bytes intact |")
    print("| --- | --- | --- | --- |")
    up, down = float(r["up_s"]), float(r["down_s"])  # type: ignore[arg-type]
    print(
        f"| {up:.1f} s ({mib / up:,.0f} MiB/s) | {down:.1f} s ({mib / down:,.0f} MiB/s) "
        f"| {float(r['rss_mb']):.0f} MB | {'yes' if r['intact'] else 'NO'} |"  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
