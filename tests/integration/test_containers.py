"""Container apps on real engines: build, start on first request, health, idle stop, recovery."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp

from tests.support.engines import TEST_IMAGE, containers, create_image_app, sh


async def get(url: str, **kw) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
        return r.status, await r.text()


async def test_image_spec_end_to_end(server_factory, engine: str) -> None:
    server = server_factory(engine)
    proc = server.cli(
        "app", "create", "--spec", "image", "--param", "port=80", "-", "/x", check=False
    )
    assert proc.returncode == 1 and "param image is a required param" in proc.stderr
    create_image_app(server, "/img", "--param", "GREETING=img")
    assert containers(engine, server.home) == []  # nothing runs before the first request
    status, body = await get(server.url + "/img/")
    assert (status, body) == (200, "hello img")
    env = json.loads((await get(server.url + "/img/env"))[1])
    assert env["CL_APP_PATH"] == "/img" and env["PORT"] == "8000" and env["GREETING"] == "img"
    [c] = containers(engine, server.home)
    labels = json.loads(
        sh(engine, "container", "inspect", "--format", "{{json .Config.Labels}}", c["name"])
    )
    assert labels["dev.appyard.app_id"] == server.app("/img")["id"]
    assert labels["dev.appyard.spec"] == "image" and labels["dev.appyard.version"] == "1"
    listed = server.app("/img")
    assert listed["state"] == "running" and listed["image"] == TEST_IMAGE
    assert listed["last_start_secs"] < 30


async def test_container_spec_from_local_dir(
    server_factory, engine: str, httpapp_dir: Path, tmp_path: Path
) -> None:
    server = server_factory(engine)
    server.cli(
        "app",
        "create",
        "--spec",
        "container",
        "--approve",
        "--param",
        "GREETING=built",
        str(httpapp_dir),
        "/built",
    )
    # the snapshot is immutable: later edits to the folder change nothing
    (httpapp_dir / "server.py").write_text("raise SystemExit('edited')\n")
    status, body = await get(server.url + "/built/")
    assert (status, body) == (200, "hello built")
    assert server.app("/built")["image"].startswith("localhost/appyard-")
    # a Dockerfile is taken when there is no Containerfile; no EXPOSE and no port: refused
    empty = tmp_path / "noport"
    empty.mkdir()
    (empty / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["sleep", "1"]\n')
    proc = server.cli("app", "create", "--spec", "container", str(empty), "/noport", check=False)
    assert proc.returncode == 1 and "pass --param port=N or add EXPOSE" in proc.stderr
    (empty / "Dockerfile").unlink()
    proc = server.cli("app", "create", "--spec", "container", str(empty), "/nofile", check=False)
    assert proc.returncode == 1 and "no Containerfile or Dockerfile" in proc.stderr


async def test_concurrent_first_requests_start_one_container(server_factory, engine: str) -> None:
    server = server_factory(engine)
    create_image_app(server, "/burst")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as s:

        async def one() -> tuple[int, str]:
            async with s.get(server.url + "/burst/") as r:
                return r.status, await r.text()

        results = await asyncio.gather(*(one() for _ in range(200)))
    assert [r for r in results if r != (200, "hello world")] == []
    assert len(containers(engine, server.home)) == 1
    assert server.log().count("creating container") == 1


async def _wait_stopped(engine: str, home: Path, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not containers(engine, home, running_only=True):
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError("container did not stop")


async def test_idle_stop_on_deadline_and_restart(server_factory, engine: str) -> None:
    server = server_factory(engine)
    create_image_app(server, "/idle", "--conf", "container.idle_shutdown_secs=3")
    assert (await get(server.url + "/idle/"))[0] == 200
    last_response = time.monotonic()
    await asyncio.sleep(2.3)
    assert containers(engine, server.home, running_only=True), "stopped before the deadline"
    stopped_at = await _wait_stopped(engine, server.home, 10)
    late = stopped_at - (last_response + 3)
    assert -0.2 < late < 2.0, f"stopped {late:.2f}s after the deadline"
    for _ in range(50):  # the engine's stop command may return a moment after the stop
        if server.app("/idle")["state"] == "stopped":
            break
        await asyncio.sleep(0.1)
    assert server.app("/idle")["state"] == "stopped"
    assert (await get(server.url + "/idle/"))[0] == 200  # a new request starts it again
    assert len(containers(engine, server.home, running_only=True)) == 1


async def test_open_websocket_keeps_app_alive(server_factory, engine: str) -> None:
    server = server_factory(engine)
    create_image_app(server, "/wsapp", "--conf", "container.idle_shutdown_secs=2")
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(server.url.replace("http", "ws") + "/wsapp/ws") as ws:
            await asyncio.sleep(5)  # well past the idle timeout, but the stream is open
            assert containers(engine, server.home, running_only=True)
            await ws.send_str("still here")
            assert await ws.receive_str(timeout=5) == "echo:still here"
        closed_at = time.monotonic()
    stopped_at = await _wait_stopped(engine, server.home, 10)
    assert 1.8 < stopped_at - closed_at < 4.5  # the idle clock started when the stream closed


async def test_killed_container_is_restarted_by_next_request(server_factory, engine: str) -> None:
    server = server_factory(engine)
    create_image_app(server, "/crash")
    assert (await get(server.url + "/crash/"))[0] == 200
    [c] = containers(engine, server.home)
    sh(engine, "kill", c["name"])
    status, body = await get(server.url + "/crash/")
    assert (status, body) == (200, "hello world")
    assert len(containers(engine, server.home, running_only=True)) == 1
    logs = server.cli("app", "logs", "/crash").stdout
    assert "last exited container" in logs and "listening on 8000" in logs


async def test_sigkill_server_then_restart_adopts(server_factory, engine: str) -> None:
    server = server_factory(engine)
    create_image_app(server, "/keep")
    create_image_app(server, "/gone")
    assert (await get(server.url + "/keep/"))[0] == 200
    assert (await get(server.url + "/gone/"))[0] == 200
    before = {c["name"]: c for c in containers(engine, server.home)}
    server.kill()
    # While the server is down, /gone is deleted from the store by hand and an unknown
    # container with our label appears: both must be cleaned up, /keep adopted as is.
    import sqlite3

    db = sqlite3.connect(server.home / "metadata/appyard.db")
    with db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("DELETE FROM apps WHERE path = '/gone'")
    db.close()
    from appyard.home import Home

    sh(
        engine,
        "run",
        "-d",
        "--name",
        f"appyard-stray-{engine}-{int(time.time())}",
        "--label",
        f"dev.appyard.instance={Home(server.home.resolve()).instance_id}",
        TEST_IMAGE,
    )
    server.start()
    after = containers(engine, server.home)
    keep = [n for n in before if "-prod-" in n and n in {c["name"] for c in after}]
    assert len(after) == 1 and len(keep) == 1, after
    assert after[0]["started"] == before[keep[0]]["started"]  # adopted, not restarted
    assert (await get(server.url + "/keep/"))[0] == 200
    assert len(containers(engine, server.home)) == 1
    assert server.app("/keep")["state"] == "running"


async def test_build_failure_reaches_the_client(
    server_factory, engine: str, tmp_path: Path
) -> None:
    server = server_factory(engine)
    src = tmp_path / "broken"
    src.mkdir()
    (src / "Containerfile").write_text(
        "FROM python:3.11-slim\nRUN echo about-to-fail && exit 7\nEXPOSE 8000\n"
    )
    server.cli("app", "create", "--spec", "container", "--approve", str(src), "/broken")
    for _ in range(2):  # the next request tries again, and fails the same way
        status, body = await get(server.url + "/broken/")
        assert status == 500
        assert "build of /broken failed" in body and "about-to-fail" in body
        assert "Traceback" not in body
    assert server.app("/broken")["state"] == "stopped"
    logs = server.cli("app", "logs", "/broken").stdout
    assert "about-to-fail" in logs


async def test_unhealthy_start_reports_reason(server_factory, engine: str, tmp_path: Path) -> None:
    server = server_factory(engine)
    src = tmp_path / "exits"
    src.mkdir()
    (src / "Containerfile").write_text(
        "FROM python:3.11-slim\nEXPOSE 8000\n"
        'CMD ["python3", "-c", "print(\'bad config: missing DB_URL\'); raise SystemExit(3)"]\n'
    )
    server.cli("app", "create", "--spec", "container", "--approve", str(src), "/exits")
    status, body = await get(server.url + "/exits/")
    assert status == 500 and "exit" in body and "bad config: missing DB_URL" in body


async def test_reload_streams_progress_and_delete_removes_all(
    server_factory, engine: str, httpapp_dir: Path
) -> None:
    server = server_factory(engine)
    server.cli("app", "create", "--spec", "container", "--approve", str(httpapp_dir), "/rel")
    proc = server.cli("app", "reload", "/rel")
    assert "building image" in proc.stderr and "is running" in proc.stderr
    assert "/rel: running" in proc.stdout
    image = server.app("/rel")["image"]
    assert sh(engine, "image", "inspect", image, check=False)
    assert len(containers(engine, server.home)) == 1
    server.cli("app", "delete", "/rel")
    assert containers(engine, server.home) == []
    assert sh(engine, "image", "inspect", image, check=False) in ("", "[]\n")


async def test_clean_shutdown_stops_containers(server_factory, engine: str) -> None:
    server = server_factory(engine)
    create_image_app(server, "/down")
    assert (await get(server.url + "/down/"))[0] == 200
    server.stop(signal.SIGTERM)
    assert containers(engine, server.home, running_only=True) == []
