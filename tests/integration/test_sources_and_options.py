"""Git sources, dev mode, build args and container options, on podman."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.engines import containers, flavour_app, sh
from tests.support.server import AppyardServer

APPS = Path(__file__).resolve().parents[1] / "apps"


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as s:
        async with s.get(url) as r:
            return r.status, await r.text()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def bare_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A local bare repo: main has two commits, branch 'other' one more; app in sub/."""
    work = tmp_path / "work"
    shutil.copytree(APPS / "httpapp", work / "sub")
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    (work / "sub" / "greeting.txt").write_text("one")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "one")
    first = git(work, "rev-parse", "HEAD")
    (work / "sub" / "greeting.txt").write_text("two")
    git(work, "commit", "-qam", "two")
    second = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-qb", "other")
    (work / "sub" / "greeting.txt").write_text("other")
    git(work, "commit", "-qam", "other")
    other = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "main")  # the remote's default branch
    bare = tmp_path / "repo.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare, {"first": first, "second": second, "other": other}


async def test_git_sources_branch_commit_subdir(server_factory, bare_repo) -> None:
    server: AppyardServer = server_factory("podman")
    bare, commits = bare_repo
    url = f"file://{bare}#sub"
    server.cli("app", "create", "--spec", "container", "--approve", url, "/g-default")
    server.cli(
        "app", "create", "--spec", "container", "--approve", "--branch", "other", url, "/g-branch"
    )
    server.cli(
        "app",
        "create",
        "--spec",
        "container",
        "--approve",
        "--commit",
        commits["first"],
        url,
        "/g-commit",
    )
    expected = {"/g-default": "second", "/g-branch": "other", "/g-commit": "first"}
    for path, which in expected.items():
        app = server.app(path)
        assert app["commit"] == commits[which], (path, app)
        assert commits[which][:12] in app["source"]
        snapshot = server.home / "sources" / app["id"] / "v1" / "greeting.txt"
        assert snapshot.read_text() == {"first": "one", "second": "two"}.get(which, which)
    table = server.cli("app", "list").stdout
    assert commits["other"][:12] in table
    status, body = await get(server.url + "/g-branch/")
    assert (status, body) == (200, "hello world")
    proc = server.cli(
        "app", "create", "--spec", "container", "--branch", "nope", url, "/bad", check=False
    )
    assert proc.returncode == 1 and "git fetch failed" in proc.stderr
    assert len(server.cli_json("app", "list")) == 3


async def test_dev_mode_rebuilds_on_change(server_factory, tmp_path: Path) -> None:
    server: AppyardServer = server_factory("podman")
    src = tmp_path / "devapp"
    shutil.copytree(APPS / "httpapp", src)
    server.cli(
        "app",
        "create",
        "--spec",
        "container",
        "--approve",
        "--dev",
        "--param",
        "GREETING=dev",
        str(src),
        "/dev",
    )
    assert await get(server.url + "/dev/") == (200, "hello dev")
    code = (src / "server.py").read_text()
    (src / "server.py").write_text(code.replace('f"hello {', 'f"edited {'))
    edited_at = time.monotonic()
    while time.monotonic() - edited_at < 10:
        if await get(server.url + "/dev/") == (200, "edited dev"):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the edit did not show within 10 s")
    assert server.app("/dev")["dev"] is True
    assert len(containers("podman", server.home)) == 1  # the old container was removed


async def test_build_args_and_container_options(server_factory, tmp_path: Path) -> None:
    server: AppyardServer = server_factory("podman")
    src = tmp_path / "argapp"
    flavour_app(src)
    server.cli(
        "app",
        "create",
        "--spec",
        "container",
        "--approve",
        "--carg",
        "FLAVOUR=spicy",
        "--copt",
        "cpu-shares=1000",
        "--copt",
        "memory=256m",
        str(src),
        "/opts",
    )
    status, body = await get(server.url + "/opts/env")
    assert status == 200 and json.loads(body)["FLAVOUR"] == "spicy"
    [c] = containers("podman", server.home)
    inspected = json.loads(sh("podman", "container", "inspect", c["name"]))[0]
    assert inspected["HostConfig"]["CpuShares"] == 1000
    assert inspected["HostConfig"]["Memory"] == 256 * 1024 * 1024
    # a bad carg (a base image that does not exist) fails the build; the reason reaches curl
    server.cli(
        "app",
        "create",
        "--spec",
        "python-wsgi",
        "--approve",
        "--carg",
        "PYTHON_VERSION=0.0-nonexistent",
        str(APPS / "wsgi"),
        "/badarg",
    )
    status, body = await get(server.url + "/badarg/")
    assert status == 500 and "build of /badarg failed" in body and "0.0-nonexistent" in body
    # a bad copt fails the start with the engine's own words
    server.cli(
        "app",
        "create",
        "--spec",
        "container",
        "--approve",
        "--copt",
        "memory=lots",
        str(src),
        "/badopt",
    )
    status, body = await get(server.url + "/badopt/")
    assert status == 500 and "lots" in body


def test_spec_param_validation_at_create(server_factory) -> None:
    server: AppyardServer = server_factory("podman")
    cases = [
        (["--spec", "go", str(APPS / "goapp"), "/go"], "param port is a required param"),
        (
            ["--spec", "go", "--param", "port=http", str(APPS / "goapp"), "/go"],
            "param port must be an integer",
        ),
        (["--spec", "python-nope", str(APPS / "wsgi"), "/w"], "unknown spec 'python-nope'"),
        (["--spec", "python-wsgi", "-", "/w"], "spec python-wsgi needs a source"),
    ]
    for args, message in cases:
        proc = server.cli("app", "create", *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert server.cli_json("app", "list") == []
    specs = {s["name"]: s for s in server.cli_json("spec", "list")}
    assert specs["python-wsgi"]["build_args"]["PYTHON_VERSION"]["default"] == "3.11-slim"
    assert specs["go"]["params"]["port"]["required"] is True
