"""Warm proxy throughput against nginx, scale to 1,000 apps, streaming."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from bench.harness import (
    Nginx,
    container_names,
    create_go_app,
    host_port,
    median,
    rss_mb,
    start_server,
    wrk,
)
from tests.support.server import REPO, free_port, wait_port


async def warm_proxy(home: Path, seconds: int = 8) -> dict:
    """wrk at c=1 and c=64: direct to the container, through appyard, through nginx."""
    server = start_server(home, "")
    try:
        create_go_app(server, "/warm")
        server.cli("app", "reload", "/warm")
        [name] = container_names(server.home, running_only=True)
        port = host_port(name, 8080)
        nginx = Nginx(port)
        try:
            targets = {
                "direct": f"http://127.0.0.1:{port}/",
                "appyard": f"{server.url}/warm/",
                "nginx": f"http://127.0.0.1:{nginx.port}/",
            }
            results = {}
            for conns in (1, 64):
                for label, url in targets.items():
                    wrk(url, conns, 2)  # warm up connections and caches
                    results[f"{label}_c{conns}"] = wrk(url, conns, seconds).as_dict()
        finally:
            nginx.stop()
        rss = rss_mb(server.proc.pid)
    finally:
        server.stop()
    ratio = results["appyard_c64"]["rps"] / results["nginx_c64"]["rps"]
    added = results["appyard_c1"]["p50_ms"] - results["direct_c1"]["p50_ms"]
    return {
        **results,
        "appyard_vs_nginx_c64": round(ratio, 2),
        "added_p50_ms_c1": round(added, 3),
        "server_rss_mb": round(rss, 1),
    }


async def _create_proxy_apps(server, count: int, url: str) -> None:  # type: ignore[no-untyped-def]
    connector = aiohttp.UnixConnector(path=str(server.home / "run/appyard.sock"))
    async with aiohttp.ClientSession(connector=connector) as s:
        sem = asyncio.Semaphore(16)

        async def create(i: int) -> None:
            async with (
                sem,
                s.post(
                    "http://appyard/v1/apps",
                    json={
                        "path": f"/team{i % 50}/app{i}",
                        "source": "-",
                        "spec": "proxy",
                        "approve": True,
                        "params": [f"url={url}"],
                    },
                ) as r,
            ):
                if r.status != 201:
                    raise RuntimeError(await r.text())

        await asyncio.gather(*(create(i) for i in range(count)))


@contextlib.contextmanager
def aiohttp_backend() -> Iterator[str]:
    """The test suite's aiohttp upstream (echo, SSE, WebSocket) as a subprocess."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.backend", str(port)], cwd=REPO)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def scale(home: Path, count: int = 1000, seconds: int = 6) -> dict:
    """1,000 proxy apps: RSS, restart time, routing latency compared with 1 app."""
    with aiohttp_backend() as url:
        one = start_server(home / "one")
        try:
            await _create_proxy_apps(one, 1, url)
            single = wrk(f"{one.url}/team0/app0/", 1, seconds).as_dict()
        finally:
            one.stop()
        many = start_server(home / "many")
        try:
            started = time.monotonic()
            await _create_proxy_apps(many, count, url)
            create_secs = time.monotonic() - started
            many.stop()
            started = time.monotonic()
            many.start()
            start_secs = time.monotonic() - started
            rss = rss_mb(many.proc.pid)
            routed = wrk(f"{many.url}/team0/app0/", 1, seconds).as_dict()
            deep = wrk(f"{many.url}/team49/app999/x/y", 1, seconds).as_dict()
        finally:
            many.stop()
    return {
        "apps": count,
        "create_secs": round(create_secs, 2),
        "server_start_secs": round(start_secs, 2),
        "rss_mb": round(rss, 1),
        "p50_ms_1_app": single["p50_ms"],
        "p50_ms_1000_apps": routed["p50_ms"],
        "p50_ms_1000_apps_deep": deep["p50_ms"],
        "latency_ratio": round(routed["p50_ms"] / single["p50_ms"], 3),
    }


async def _sse_latencies(url: str, events: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        async for line in r.content:
            if line.startswith(b"data:"):
                sent = json.loads(line[5:])["t"]
                out.append((time.monotonic() - sent) * 1000)
                if len(out) == events:
                    break
    return out


async def streaming(home: Path, sockets: int = 1000, hold: float = 30.0) -> dict:
    """SSE event latency through appyard vs direct; `sockets` idle WebSockets held."""
    with aiohttp_backend() as url:
        return await _streaming(home, url, sockets, hold)


async def _streaming(home: Path, url: str, sockets: int, hold: float) -> dict:
    server = start_server(home)
    try:
        await _create_proxy_apps(server, 1, url)
        path = f"{server.url}/team0/app0"
        sse_query = "/sse?n=40&gap=0.05"
        direct = await _sse_latencies(url + sse_query, 40)
        proxied = await _sse_latencies(path + sse_query, 40)
        rss_before = rss_mb(server.proc.pid)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as s:
            ws_url = path.replace("http", "ws") + "/ws"
            conns = await asyncio.gather(
                *(s.ws_connect(ws_url) for _ in range(sockets)), return_exceptions=True
            )
            opened = [c for c in conns if not isinstance(c, BaseException)]
            await asyncio.sleep(hold)
            rss_held = rss_mb(server.proc.pid)
            alive = 0
            for ws in opened:
                try:
                    await ws.send_str("ping")
                    if await ws.receive_str(timeout=10) == "echo:ping":
                        alive += 1
                except (aiohttp.ClientError, TimeoutError, TypeError):
                    pass
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    finally:
        server.stop()
    return {
        "sse_direct_p50_ms": round(median(direct), 3),
        "sse_appyard_p50_ms": round(median(proxied), 3),
        "sse_added_ms": round(median(proxied) - median(direct), 3),
        "websockets": sockets,
        "opened": len(opened),
        "alive_after_hold": alive,
        "dropped": sockets - alive,
        "hold_secs": hold,
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_held": round(rss_held, 1),
    }
