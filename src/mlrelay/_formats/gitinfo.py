"""Git facts for MLflow's source tags, read from the ``.git`` directory without GitPython.

Reads HEAD, loose and packed refs, and the ``origin`` URL from ``.git/config``;
follows ``gitdir:`` files (worktrees, submodules). Credentials embedded in a remote URL
(``https://token@github.com/...``) are removed. Any problem means "no git info".
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

from mlrelay._errors import redact_url

__all__ = ["GitInfo", "git_info"]


@dataclass(frozen=True)
class GitInfo:
    """What MLflow records as ``mlflow.source.git.*`` tags."""

    commit: str | None
    branch: str | None
    repo_url: str | None

    def tags(self) -> dict[str, str]:
        """The MLflow tags for these facts (only those known)."""
        out = {}
        if self.commit:
            out["mlflow.source.git.commit"] = self.commit
        if self.branch:
            out["mlflow.source.git.branch"] = self.branch
        if self.repo_url:
            out["mlflow.source.git.repoURL"] = self.repo_url
        return out


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    return (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir


def _resolve_ref(common: Path, git_dir: Path, ref: str) -> str | None:
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text().strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


def _origin_url(common: Path) -> str | None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(common / "config")
        url = parser.get('remote "origin"', "url", fallback=None)
    except configparser.Error:
        return None
    if not url:
        return None
    if "://" in url:
        stripped = redact_url(url)
        return stripped.replace("***@", "")
    return url


def git_info(start: Path) -> GitInfo | None:
    """Git facts for the repository containing ``start``, or None outside one."""
    try:
        git_dir = _git_dir(start.resolve())
        if git_dir is None:
            return None
        common = _common_dir(git_dir)
        head = (git_dir / "HEAD").read_text().strip()
        if head.startswith("ref:"):
            ref = head.split(":", 1)[1].strip()
            branch = ref.removeprefix("refs/heads/")
            commit = _resolve_ref(common, git_dir, ref)
        else:
            branch, commit = None, head or None
        return GitInfo(commit=commit, branch=branch, repo_url=_origin_url(common))
    except OSError:
        return None
