"""Staged changes, promotion, versions, approval and zero-downtime switches (podman)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.engines import containers, flavour_app, sh
from tests.support.server import AppyardServer

APPS = Path(__file__).resolve().parents[1] / "apps"
CONFIG = "start_timeout_secs = 30\ndrain_timeout_secs = 10\nkeep_images = 2\n"  # [container]


async def body(server: AppyardServer, path: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(server.url + path) as r:
        text = await r.text()
        assert r.status == 200, (path, r.status, text)
        return text


@pytest.fixture
def staged_app(server_factory, tmp_path: Path) -> AppyardServer:
    server: AppyardServer = server_factory("podman", CONFIG)
    src = tmp_path / "staged"
    shutil.copytree(APPS / "staged", src)
    server.cli(
        "app",
        "create",
        "--spec",
        "python-wsgi",
        "--approve",
        "--param",
        "WORKERS=1",
        str(src),
        "/st",
    )
    return server


async def test_param_update_is_staged_then_promoted(staged_app: AppyardServer) -> None:
    server = staged_app
    assert await body(server, "/st/") == "app1 bucket=-"
    out = server.cli("param", "update", "APP_MODULE", "app:app2", "/st").stdout
    assert "param APP_MODULE: 'app:app' -> 'app:app2' (staging, version 2)" in out
    assert await body(server, "/st/") == "app1 bucket=-"  # production unchanged
    assert await body(server, "/st_cl_stage/") == "app2 bucket=-"
    params = {p["name"]: p for p in server.cli_json("param", "list", "/st")}
    assert params["APP_MODULE"]["prod"] == "app:app"
    assert params["APP_MODULE"]["staged"] == "app:app2" and params["APP_MODULE"]["differs"]
    assert "version 1 -> 2" in server.cli("app", "promote", "/st").stdout
    assert await body(server, "/st/") == "app2 bucket=-"
    image_v2 = server.app("/st")["image"]
    # revert: the previous version again, from its existing image (no rebuild)
    build_log = server.home / "logs" / server.app("/st")["id"] / "build.log"
    built_at = build_log.stat().st_mtime
    assert "version 2 -> 1" in server.cli("version", "revert", "/st").stdout
    assert await body(server, "/st/") == "app1 bucket=-"
    assert build_log.stat().st_mtime == built_at
    assert server.app("/st")["image"] == image_v2  # a param change reuses the image
    rows = server.cli_json("version", "list", "/st")
    assert [(r["version"], r["serving"]) for r in rows] == [(1, "prod"), (2, "stage")]
    server.cli("version", "switch", "2", "/st")
    assert await body(server, "/st/") == "app2 bucket=-"


async def test_promote_flag_param_delete_and_dry_run(staged_app: AppyardServer) -> None:
    server = staged_app
    out = server.cli("param", "update", "BUCKET", "b1", "/st", "--dry-run").stdout
    assert out.startswith("would change /st: param BUCKET")
    assert len(server.cli_json("version", "list", "/st")) == 1
    server.cli("param", "update", "BUCKET", "b1", "/st", "--promote")
    assert await body(server, "/st/") == "app1 bucket=b1"
    server.cli("param", "update", "BUCKET", "-", "/st", "--promote")
    assert await body(server, "/st/") == "app1 bucket=-"
    proc = server.cli("param", "update", "BUCKET", "-", "/st", check=False)
    assert proc.returncode == 1 and "param BUCKET is not set" in proc.stderr
    assert len(server.cli_json("version", "list", "/st")) == 3


async def test_copt_needs_approval_before_promote(staged_app: AppyardServer) -> None:
    server = staged_app
    assert await body(server, "/st/") == "app1 bucket=-"
    server.cli("app", "update-metadata", "copt", "cpu-shares=500", "/st")
    async with aiohttp.ClientSession() as s, s.get(server.url + "/st_cl_stage/") as r:
        assert r.status == 403 and "appyard app approve /st" in await r.text()
    proc = server.cli("app", "promote", "/st", check=False)
    assert proc.returncode == 1
    assert "needs approval for copt cpu-shares; run: appyard app approve /st" in proc.stderr
    assert await body(server, "/st/") == "app1 bucket=-"
    assert "approve copt cpu-shares" in server.cli("app", "approve", "/st").stdout
    server.cli("app", "promote", "/st")
    assert await body(server, "/st/") == "app1 bucket=-"
    running = containers("podman", server.home, running_only=True)
    prod = [c for c in running if "-prod-" in c["name"]]
    assert len(prod) == 1
    shares = sh(
        "podman", "container", "inspect", "--format", "{{.HostConfig.CpuShares}}", prod[0]["name"]
    ).strip()
    assert shares == "500"
    proc = server.cli("app", "update-metadata", "copt", "privileged", "/st", check=False)
    assert proc.returncode == 1 and "forbidden by the server config" in proc.stderr


async def test_carg_update_staged_and_promoted(server_factory, tmp_path: Path) -> None:
    server: AppyardServer = server_factory("podman", CONFIG)
    src = tmp_path / "argapp"
    flavour_app(src)
    server.cli("app", "create", "--spec", "container", "--approve", str(src), "/arg")
    assert json.loads(await body(server, "/arg/env"))["FLAVOUR"] == "plain"
    server.cli("app", "update-metadata", "carg", "FLAVOUR=spicy", "/arg")
    assert json.loads(await body(server, "/arg/env"))["FLAVOUR"] == "plain"
    assert json.loads(await body(server, "/arg_cl_stage/env"))["FLAVOUR"] == "spicy"
    server.cli("app", "update-metadata", "carg", "FLAVOUR=-", "/arg", "--promote")
    assert json.loads(await body(server, "/arg/env"))["FLAVOUR"] == "plain"
    server.cli("app", "update-metadata", "carg", "FLAVOUR=hot", "/arg", "--promote")
    assert json.loads(await body(server, "/arg/env"))["FLAVOUR"] == "hot"
    server.cli("app", "update-metadata", "carg", "FLAVOUR=mild", "/arg", "--promote")
    assert json.loads(await body(server, "/arg/env"))["FLAVOUR"] == "mild"
    # old images are pruned: only the last keep_images (2 here) versions' images remain
    app_id = server.app("/arg")["id"]

    def images() -> list[str] | None:  # None: the listing raced with a removal
        proc = subprocess.run(
            [
                "podman",
                "images",
                "--filter",
                f"label=dev.appyard.app_id={app_id}",
                "--format",
                "{{.Tag}}",
            ],
            capture_output=True,
            text=True,
        )
        return proc.stdout.split() if proc.returncode == 0 else None

    for _ in range(100):
        listed = images()
        if listed is not None and len(listed) <= 2:
            break
        await asyncio.sleep(0.1)
    assert listed is not None and len(listed) == 2, listed


async def test_failed_promote_keeps_production(staged_app: AppyardServer) -> None:
    server = staged_app
    assert await body(server, "/st/") == "app1 bucket=-"
    proc = server.cli(
        "param", "update", "APP_MODULE", "app:missing", "/st", "--promote", check=False
    )
    assert proc.returncode == 1
    assert "the new version failed to start" in proc.stderr
    assert "production still serves the previous version" in proc.stderr
    assert await body(server, "/st/") == "app1 bucket=-"
    assert [r["version"] for r in server.cli_json("version", "list", "/st")] == [1]
    assert len(containers("podman", server.home)) == 1


async def test_no_failed_request_during_promote(staged_app: AppyardServer) -> None:
    server = staged_app
    assert await body(server, "/st/") == "app1 bucket=-"
    server.cli("param", "update", "APP_MODULE", "app:app2", "/st")
    seen: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def load() -> None:
        async with aiohttp.ClientSession() as s:
            while not stop.is_set():  # 50 requests/s, bounded by the promote below
                try:
                    async with s.get(server.url + "/st/") as r:
                        seen.append((r.status, await r.text()))
                except aiohttp.ClientError as exc:
                    seen.append((0, repr(exc)))
                await asyncio.sleep(0.02)

    loader = asyncio.ensure_future(load())
    await asyncio.sleep(0.5)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appyard", "app", "promote", "/st", env=server.env
    )
    assert await asyncio.wait_for(proc.wait(), 120) == 0
    await asyncio.sleep(1.0)
    stop.set()
    await loader
    failures = [r for r in seen if r[0] != 200]
    assert failures == [], failures[:5]
    texts = [t for _, t in seen]
    assert texts[0] == "app1 bucket=-" and texts[-1] == "app2 bucket=-"
    switch = texts.index("app2 bucket=-")
    assert all(t == "app2 bucket=-" for t in texts[switch:])  # switched once, atomically
    assert len(seen) > 40
    await asyncio.sleep(0.5)
    assert (
        len(
            [
                c
                for c in containers("podman", server.home, running_only=True)
                if "-prod-" in c["name"]
            ]
        )
        == 1
    )  # the old one was drained and removed


async def test_concurrent_admin_commands_keep_store_consistent(staged_app: AppyardServer) -> None:
    server = staged_app

    async def update(i: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "appyard",
            "param",
            "update",
            f"P{i}",
            f"v{i}",
            "/st",
            env=server.env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait()

    started = time.monotonic()
    codes = await asyncio.gather(*(update(i) for i in range(20)))
    assert codes == [0] * 20, codes
    assert time.monotonic() - started < 60
    versions = server.cli_json("version", "list", "/st")
    assert [v["version"] for v in versions] == list(range(1, 22))
    params = {p["name"]: p["staged"] for p in server.cli_json("param", "list", "/st")}
    assert all(params[f"P{i}"] == f"v{i}" for i in range(20))
    db = sqlite3.connect(server.home / "metadata/appyard.db")
    (stage,) = db.execute("SELECT stage_version FROM apps").fetchone()
    db.close()
    assert stage == 21
