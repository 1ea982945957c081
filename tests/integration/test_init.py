"""mlrelay.init against a mock posing as DagsHub (path prefix, token auth), and git tags."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlrelay_mock import AuthConfig, MockServer

import mlrelay
from mlrelay._formats.gitinfo import git_info
from tests._servers import free_port
from tests._timing import deadline

TOKEN = "dh-token-1234567890"


@pytest.fixture
def dagshub() -> Iterator[MockServer]:
    """A mock serving repository ann/demo under its .mlflow prefix, Basic ann:TOKEN only."""
    with MockServer(prefix="/ann/demo.mlflow", auth=AuthConfig(basic={"ann": TOKEN})) as s:
        yield s


def _host(server: MockServer) -> str:
    return server.url.split("/ann/")[0]


def test_init_points_the_fluent_api_at_the_repository(dagshub: MockServer) -> None:
    """init(owner, repo) with a token logs to {host}/{owner}/{repo}.mlflow, env untouched."""
    before = dict(os.environ)
    uri = mlrelay.init("ann", "demo", host=_host(dagshub), token=TOKEN, username="ann")
    assert uri == dagshub.url
    with mlrelay.start_run() as run:
        mlrelay.log_metric("acc", 0.9)
    assert mlrelay.flush(deadline(20))
    assert dict(os.environ) == before
    with mlrelay.Client(tracking_uri=dagshub.url, username="ann", password=TOKEN) as c:
        assert c.get_run(run.run_id).data.metrics_dict == {"acc": 0.9}


def test_init_accepts_owner_slash_repo_and_env_token(
    dagshub: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init('owner/repo') takes DAGSHUB_CLIENT_HOST and MLFLOW_TRACKING_* from the environment."""
    monkeypatch.setenv("DAGSHUB_CLIENT_HOST", _host(dagshub))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", TOKEN)
    assert mlrelay.init("ann/demo") == dagshub.url


def test_init_with_a_wrong_token_names_the_repository_and_source(
    dagshub: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected token raises AuthenticationError naming the repo and DAGSHUB_USER_TOKEN."""
    monkeypatch.setenv("DAGSHUB_USER_TOKEN", "wrong-token-value")
    with pytest.raises(mlrelay.AuthenticationError) as info:
        mlrelay.init("ann", "demo", host=_host(dagshub), username="ann")
    assert "ann/demo" in str(info.value)
    assert "DAGSHUB_USER_TOKEN" in str(info.value)
    assert "wrong-token-value" not in str(info.value)


def test_init_with_a_missing_repository_is_a_configuration_error(dagshub: MockServer) -> None:
    """A repository the host does not serve gives a clear error, and nothing is created."""
    with pytest.raises(mlrelay.ConfigurationError, match="ann/nope"):
        mlrelay.init("ann", "nope", host=_host(dagshub), token=TOKEN, username="ann")


def test_init_with_an_unreachable_host_falls_back_with_one_warning() -> None:
    """A dead host warns once and logging continues locally."""
    with pytest.warns(RuntimeWarning, match="unreachable"):
        mlrelay.init("ann", "demo", host=f"http://127.0.0.1:{free_port()}", token=TOKEN)


def test_init_rejects_a_malformed_repository() -> None:
    """A single argument without exactly one slash is a ConfigurationError."""
    with pytest.raises(mlrelay.ConfigurationError, match="owner/repo"):
        mlrelay.init("just-a-name")


def test_delete_tag_and_log_input_keep_their_order(dagshub: MockServer) -> None:
    """set_tag then delete_tag leaves no tag; a dataset logged with log_input arrives."""
    mlrelay.init("ann", "demo", host=_host(dagshub), token=TOKEN, username="ann")
    dataset = mlrelay.Dataset(name="train", digest="d1", source_type="local", source="{}")
    with mlrelay.start_run() as run:
        mlrelay.set_tag("temp", "1")
        mlrelay.delete_tag("temp")
        mlrelay.set_tag("kept", "yes")
        mlrelay.log_input(dataset, context="training")
    assert mlrelay.flush(deadline(20))
    got = mlrelay.get_run(run.run_id)
    assert "temp" not in got.data.tags_dict
    assert got.data.tags_dict["kept"] == "yes"
    assert [d.dataset.name for d in got.inputs.dataset_inputs] == ["train"]
    found = mlrelay.search_runs([run.experiment_id or "0"], output_format="list")
    assert [r.info.run_id for r in found] == [run.run_id]


def test_git_info_reads_a_real_repository(tmp_path: Path) -> None:
    """Commit, branch and a credential-free origin URL come from .git without GitPython."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q", "-b", "trunk")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    git("remote", "add", "origin", "https://tok123@example.com/ann/demo.git")
    (repo / "f.txt").write_text("x")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    git("pack-refs", "--all")
    (repo / "sub").mkdir()
    info = git_info(repo / "sub")
    assert info is not None
    assert info.commit == git("rev-parse", "HEAD")
    assert info.branch == "trunk"
    assert info.repo_url == "https://example.com/ann/demo.git"
    assert git_info(tmp_path) is None


def test_init_offline_checks_nothing_and_sync_delivers_later(
    dagshub: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init(..., mode="offline") sends no request (not even the endpoint check); the run
    waits in the journal and `mlrelay sync` with the same credentials delivers it."""
    import io

    from mlrelay import cli

    seen = len(dagshub.requests)
    uri = mlrelay.init("ann", "demo", host=_host(dagshub), token=TOKEN, mode="offline")
    with mlrelay.start_run():
        mlrelay.log_metric("acc", 0.5)
    assert mlrelay.flush(deadline(5))
    assert len(dagshub.requests) == seen
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", TOKEN)
    out = io.StringIO()
    assert cli.main(["sync"], out=out) == 0, out.getvalue()
    assert TOKEN not in out.getvalue()
    with mlrelay.Client(tracking_uri=uri, username="ann", password=TOKEN) as c:
        runs = list(c.search_runs(["0"]))
        assert len(runs) == 1, out.getvalue()
        assert runs[0].data.metrics_dict == {"acc": 0.5}
