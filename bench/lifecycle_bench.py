"""Cold start, burst to a stopped app, idle-stop accuracy."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import aiohttp

from bench.harness import (
    ENGINE,
    container_names,
    create_go_app,
    host_port,
    median,
    percentile,
    start_server,
    time_to_first_byte,
    wait_until,
)


async def cold_start(home: Path, runs: int = 5) -> dict:
    """Bare `podman start` to first answer, versus appyard's first request to first byte."""
    server = start_server(home, "")
    try:
        create_go_app(server, "/cold", "--conf", "container.idle_shutdown_secs=1")
        await time_to_first_byte(server.url + "/cold/")  # build once, outside the timing
        image = server.app("/cold")["image"]
        appyard_times = []
        for _ in range(runs):
            await wait_until(lambda: not container_names(server.home, running_only=True), 30)
            await wait_until(lambda: server.app("/cold")["state"] == "stopped", 10)
            appyard_times.append(await time_to_first_byte(server.url + "/cold/"))
    finally:
        server.stop()
    bare_times = []
    name = f"appyard-bench-bare-{int(time.time())}"
    subprocess.run(
        [
            ENGINE,
            "create",
            "--name",
            name,
            "--init",
            "-e",
            "PORT=8080",
            "-p",
            "127.0.0.1::8080",
            image,
        ],
        check=True,
        capture_output=True,
    )
    try:
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([ENGINE, "start", name], check=True, capture_output=True)
            port = host_port(name, 8080)
            await _poll_http(f"http://127.0.0.1:{port}/")
            bare_times.append(time.perf_counter() - started)
            subprocess.run([ENGINE, "stop", "-t", "0", name], capture_output=True)
    finally:
        subprocess.run([ENGINE, "rm", "-f", name], capture_output=True)
    bare, ours = median(bare_times) * 1000, median(appyard_times) * 1000
    return {
        "bare_start_ms": round(bare, 1),
        "appyard_first_byte_ms": round(ours, 1),
        "added_ms": round(ours - bare, 1),
        "runs": runs,
    }


async def _poll_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    await r.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.005)
    raise TimeoutError(url)


async def burst(home: Path, count: int = 500) -> dict:
    """`count` concurrent first requests to a stopped app."""
    server = start_server(home, "")
    try:
        create_go_app(server, "/burst")
        server.cli("app", "reload", "/burst")  # image built; now stop it again
        server.stop()
        subprocess.run(
            [ENGINE, "stop", "-t", "0", *container_names(server.home)], capture_output=True
        )
        server.start()
        log_before = server.log().count("starting container") + server.log().count(
            "creating container"
        )
        latencies: list[float] = []
        errors = 0
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as s:

            async def one() -> None:
                nonlocal errors
                started = time.perf_counter()
                try:
                    async with s.get(server.url + "/burst/") as r:
                        await r.read()
                        if r.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(one() for _ in range(count)))
        started = (
            server.log().count("starting container")
            + server.log().count("creating container")
            - log_before
        )
        running = len(container_names(server.home, running_only=True))
    finally:
        server.stop()
    return {
        "requests": count,
        "errors": errors,
        "containers_started": started,
        "containers_running": running,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


async def idle_accuracy(home: Path, runs: int = 5, idle: float = 5.0) -> dict:
    """Seconds from the last response to the container being stopped (apps run in parallel)."""
    server = start_server(home, "")
    try:
        paths = [f"/idle{i}" for i in range(runs)]
        for path in paths:
            create_go_app(server, path, "--conf", f"container.idle_shutdown_secs={idle:g}")
        server.cli("app", "reload", "/idle*")
        names = {
            p: next(n for n in container_names(server.home) if server.app(p)["id"] in n)
            for p in paths
        }
        last_response: dict[str, float] = {}
        async with aiohttp.ClientSession() as s:
            for path in paths:
                async with s.get(server.url + path + "/") as r:
                    await r.read()
                last_response[path] = time.monotonic()
                await asyncio.sleep(0.3)  # stagger, so the deadlines do not coincide
        stopped: dict[str, float] = {}
        deadline = time.monotonic() + idle + 15
        while len(stopped) < len(paths) and time.monotonic() < deadline:
            running = set(container_names(server.home, running_only=True))
            now = time.monotonic()
            for path, name in names.items():
                if path not in stopped and name not in running:
                    stopped[path] = now
            await asyncio.sleep(0.05)
    finally:
        server.stop()
    late = [stopped[p] - last_response[p] - idle for p in paths if p in stopped]
    return {
        "idle_secs": idle,
        "runs": runs,
        "stopped": len(late),
        "late_secs": [round(x, 2) for x in late],
        "max_late_secs": round(max(late), 2) if late else None,
    }
