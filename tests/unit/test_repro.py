"""Reproducibility records: installed packages, the entry script, git state, size caps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlrelay._formats import repro as _repro
from mlrelay._formats.repro import collect


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_records_packages_and_the_script(tmp_path: Path) -> None:
    """collect() pins installed packages and copies a small entry script; outside a git
    work tree it says nothing about git."""
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    records = collect(script)
    assert b"pydantic==" in records.files["environment/requirements.txt"]
    assert records.files["code/train.py"] == b"print('hi')\n"
    assert not any(k.startswith("mlflow.source.git") for k in records.tags)


def test_git_state_and_the_diff_of_a_dirty_tree(tmp_path: Path) -> None:
    """In a git work tree: commit, branch and remote (credentials removed) as tags, dirty
    false when clean; with uncommitted changes, dirty true and the diff as a file."""
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "remote", "add", "origin", "https://user:s3cret@example.com/team/repo.git")
    script = tmp_path / "train.py"
    script.write_text("a = 1\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "1")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    clean = collect(script)
    assert clean.tags["mlflow.source.git.commit"] == head
    assert clean.tags["mlflow.source.git.branch"] == "main"
    assert "s3cret" not in clean.tags["mlflow.source.git.repoURL"]
    assert clean.tags["mlflow.source.git.dirty"] == "false"
    assert "code/git.diff" not in clean.files
    script.write_text("a = 2\n")
    dirty = collect(script)
    assert dirty.tags["mlflow.source.git.dirty"] == "true"
    assert b"+a = 2" in dirty.files["code/git.diff"]


def test_size_caps_leave_files_out_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script over MAX_SCRIPT_BYTES and a diff over MAX_DIFF_BYTES are not logged; the
    notes name the cap."""
    monkeypatch.setattr(_repro, "MAX_SCRIPT_BYTES", 10)
    monkeypatch.setattr(_repro, "MAX_DIFF_BYTES", 10)
    _git(tmp_path, "init", "-q")
    script = tmp_path / "train.py"
    script.write_text("x = 1\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "1")
    script.write_text("x = 'a much longer line than ten bytes'\n")
    records = collect(script)
    assert "code/train.py" not in records.files
    assert "code/git.diff" not in records.files
    assert records.tags["mlflow.source.git.dirty"] == "true"
    assert any("MAX_SCRIPT_BYTES" in n for n in records.notes)
    assert any("MAX_DIFF_BYTES" in n for n in records.notes)
