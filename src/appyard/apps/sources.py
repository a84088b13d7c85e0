"""Fetch an app's source into an immutable per-version snapshot.

The server runs apps from `$APPYARD_HOME/sources/<app>/<version>/`, never from
the user's folder or branch, so later edits change nothing until a reload.
The snapshot's content digest feeds the image hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from appyard.apps.model import Source
from appyard.errors import UserError

_GIT_URL_RE = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")
_IGNORED = {".git", "__pycache__", ".venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def is_git_url(source: str) -> bool:
    if _GIT_URL_RE.match(source) or source.endswith(".git"):
        return True
    p = Path(source)
    return p.is_dir() and (p / "HEAD").is_file() and (p / "objects").is_dir()


def redact_url(url: str) -> str:
    """Drop credentials from a URL before it is shown or stored."""
    return re.sub(r"^(\w+://)[^/@]+@", r"\1", url)


def describe_source(raw: str, branch: str = "", commit: str = "") -> Source:
    """Classify what the user passed (`-`, a directory, or a git URL[#subdir]); no I/O on git."""
    if raw == "-":
        return Source(kind="none")
    location, _, subdir = raw.partition("#")
    if is_git_url(location):
        return Source(
            kind="git", location=location, branch=branch, pin=commit, subdir=subdir.strip("/")
        )
    if branch or commit:
        raise UserError("--branch/--commit apply to git sources only")
    path = Path(raw).expanduser()
    if not path.exists():
        raise UserError(f"source directory {raw} does not exist")
    if not path.is_dir():
        raise UserError(f"source {raw} is not a directory or a git URL")
    return Source(kind="dir", location=str(path.resolve()))


def snapshot(source: Source, dest: Path) -> Source:
    """Copy (dir) or fetch (git) the source into `dest`; returns the source with digest set."""
    if source.kind == "none":
        return source
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    if source.kind == "dir":
        shutil.copytree(
            source.location,
            dest,
            symlinks=True,
            ignore=lambda _d, names: [n for n in names if n in _IGNORED],
        )
        commit = ""
    else:
        commit = _git_fetch(source, dest)
    return Source(
        kind=source.kind,
        location=redact_url(source.location) if source.kind == "git" else source.location,
        branch=source.branch,
        commit=commit,
        pin=source.pin,
        subdir=source.subdir,
        snapshot=str(dest),
        digest=tree_digest(dest),
    )


def _git(args: list[str], cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )
    if proc.returncode != 0:
        detail = redact_url(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
        raise UserError(f"git {args[0]} failed: {detail}")
    return proc.stdout.strip()


def _git_fetch(source: Source, dest: Path) -> str:
    """Shallow-fetch one commit (branch head or the given SHA); returns the full commit id."""
    with tempfile.TemporaryDirectory(prefix="appyard-git-") as tmp:
        work = Path(tmp) / "repo"
        work.mkdir()
        _git(["init", "-q"], work)
        _git(["remote", "add", "origin", source.location], work)
        ref = source.pin or source.branch or "HEAD"
        try:
            _git(["fetch", "-q", "--depth", "1", "origin", ref], work)
        except UserError:
            if not source.pin:
                raise
            # Servers that refuse fetching an arbitrary SHA: fetch everything, then check out.
            _git(["fetch", "-q", "origin"], work)
        _git(
            ["-c", "advice.detachedHead=false", "checkout", "-q", source.pin or "FETCH_HEAD"], work
        )
        commit = _git(["rev-parse", "HEAD"], work)
        root = work / source.subdir if source.subdir else work
        if not root.is_dir():
            raise UserError(
                f"sub-folder {source.subdir!r} not found in {redact_url(source.location)}"
            )
        shutil.copytree(
            root, dest, symlinks=True, ignore=lambda _d, names: [n for n in names if n in _IGNORED]
        )
    return commit


def tree_digest(root: Path) -> str:
    """Hash of file names, modes and contents, independent of timestamps."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            h.update(rel.encode() + b"\0")
            if path.is_symlink():
                h.update(b"L" + os.readlink(path).encode())
            else:
                h.update(oct(path.stat().st_mode & 0o111).encode())
                with open(path, "rb") as f:
                    for block in iter(lambda f=f: f.read(1 << 16), b""):
                        h.update(block)
            h.update(b"\0")
    return h.hexdigest()
