"""The proxy spec end to end: real server subprocess, real CLI, real HTTP/WS/SSE/TLS."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import ssl
import stat
import sys
import time

import aiohttp
import pytest

from tests.support.server import AppyardServer, free_port


def _create_proxy(server: AppyardServer, url: str, path: str) -> None:
    server.cli("app", "create", "--spec", "proxy", "--approve", "--param", f"url={url}", "-", path)


async def _get(url: str, host: str | None = None, **kw) -> tuple[int, str]:
    headers = {"Host": host} if host else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers, **kw) as r:
        return r.status, await r.text()


async def test_domain_and_path_routing(server: AppyardServer, backend: str) -> None:
    _create_proxy(server, backend, "/p1")
    _create_proxy(server, backend, "/p1/deeper")
    _create_proxy(server, backend, "a.localhost:/")
    status, body = await _get(server.url + "/p1/x?q=1")
    assert status == 200
    echoed = json.loads(body)
    assert echoed["path"] == "/x?q=1"  # the proxy spec strips the app path
    assert echoed["headers"]["X-Forwarded-Prefix"] == "/p1"
    assert echoed["headers"]["X-Forwarded-Proto"] == "http"
    assert echoed["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert echoed["headers"]["X-Forwarded-Host"] == f"127.0.0.1:{server.http_port}"
    assert echoed["headers"]["Host"] == backend.removeprefix("http://")  # rewritten
    # longest prefix wins
    assert json.loads((await _get(server.url + "/p1/deeper/y"))[1])["path"] == "/y"
    # a domain app takes its whole host
    body = (await _get(server.url + "/p1/x", host="a.localhost"))[1]
    assert json.loads(body)["path"] == "/p1/x"
    body = (await _get(server.url + "/p1/x", host=f"A.LOCALHOST:{server.http_port}"))[1]
    assert json.loads(body)["path"] == "/p1/x"
    # unclaimed hosts fall to the apps without a domain
    assert json.loads((await _get(server.url + "/p1/z", host="b.localhost"))[1])["path"] == "/z"
    # no prefix match: a segment boundary is required
    status, body = await _get(server.url + "/p1x")
    assert status == 404 and "no app" in body


async def test_large_bodies_stream_without_buffering(server: AppyardServer, backend: str) -> None:
    _create_proxy(server, backend, "/big")
    rss_before = _rss_kb(server.proc.pid)
    received = 0
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/big/big?mb=200") as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(200 * 1024 * 1024)
            async for chunk in r.content.iter_any():
                received += len(chunk)
        assert received == 200 * 1024 * 1024

        async def body():
            for _ in range(100):
                yield b"y" * (1024 * 1024)

        async with s.post(server.url + "/big/upload", data=body()) as r:
            assert (await r.json())["received"] == 100 * 1024 * 1024
    grown_mb = (_rss_kb(server.proc.pid) - rss_before) / 1024
    assert grown_mb < 60, f"server RSS grew {grown_mb:.0f} MB: bodies are being buffered"


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


async def test_sse_events_arrive_one_by_one(server: AppyardServer, backend: str) -> None:
    _create_proxy(server, backend, "/events")
    arrivals = []
    async with aiohttp.ClientSession() as s:
        start = time.monotonic()
        async with s.get(server.url + "/events/sse?n=5&gap=0.4") as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            async for line in r.content:
                if line.startswith(b"data:"):
                    arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5
    assert arrivals[0] < 0.3, f"first event held back: {arrivals}"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(g > 0.25 for g in gaps), f"events were batched: {arrivals}"


async def test_websocket_echo(server: AppyardServer, backend: str) -> None:
    _create_proxy(server, backend, "/ws")
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            server.url.replace("http", "ws") + "/ws/ws", protocols=("chat",)
        ) as ws:
            assert ws.protocol == "chat"
            for i in range(3):
                await ws.send_str(f"hi {i}")
                assert (await ws.receive_str(timeout=5)) == f"echo:hi {i}"
            await ws.send_bytes(b"\x00\x01binary")
            assert (await ws.receive_bytes(timeout=5)) == b"\x00\x01binary"


async def test_upstream_down_gives_502(server: AppyardServer) -> None:
    _create_proxy(server, f"http://127.0.0.1:{free_port()}", "/down")
    status, body = await _get(server.url + "/down/anything")
    assert status == 502
    assert "/down" in body and "cannot connect" in body
    assert "Traceback" not in body
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/down/", headers={"Accept": "text/html"}) as r:
            assert r.status == 502 and "<h1>502 Bad Gateway</h1>" in await r.text()


async def test_https_self_signed(server: AppyardServer, backend: str) -> None:
    _create_proxy(server, backend, "/secure")
    ctx = ssl.create_default_context(cafile=str(server.home / "config/certificates/default.crt"))
    async with (
        aiohttp.ClientSession() as s,
        s.get(server.https_url + "/secure/x", ssl=ctx, server_hostname="localhost") as r,
    ):
        assert r.status == 200
        data = await r.json()
    assert data["headers"]["X-Forwarded-Proto"] == "https"
    # kept across restarts: the same certificate is served again
    cert = (server.home / "config/certificates/default.crt").read_bytes()
    server.stop()
    server.start()
    assert (server.home / "config/certificates/default.crt").read_bytes() == cert


def test_admin_socket_is_private(server: AppyardServer) -> None:
    mode = stat.S_IMODE(os.stat(server.home / "run/appyard.sock").st_mode)
    assert mode == 0o600


async def test_no_admin_on_tcp_ports(server: AppyardServer) -> None:
    status, _ = await _get(server.url + "/v1/apps")
    assert status == 404


def _store_is_empty(server: AppyardServer) -> None:
    db = sqlite3.connect(server.home / "metadata/appyard.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM apps").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM app_versions").fetchone()[0] == 0
    finally:
        db.close()
    assert not any((server.home / "sources").iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spec", "proxy", "-", "/p"], "param url is a required param"),
        (["--spec", "nope", "-", "/p"], "unknown spec 'nope'; known specs: container, "),
        (
            ["--spec", "proxy", "--param", "url=http://x", "-", "/a/../b"],
            "must not contain . or ..",
        ),
        (["--spec", "proxy", "--param", "url=http://x", "-", "/a//b"], "must not contain //"),
        (["--spec", "proxy", "--param", "url=http://x", "-", "nope"], "must start with /"),
        (["--spec", "proxy", "--param", "url=http://x", "-", "/x_cl_stage"], "reserved suffix"),
        (["--spec", "proxy", "--param", "url=http://x", "-", "/a\x01b"], "control characters"),
        (
            ["--spec", "proxy", "--param", "url=http://x", "-", "bad_domain!:/"],
            "is not a valid domain name",
        ),
        (
            ["--spec", "proxy", "--param", "url=http://x", "--conf", "container.nope=1", "-", "/p"],
            "invalid conf: unknown key container.nope",
        ),
        (
            [
                "--spec",
                "proxy",
                "--param",
                "url=http://x",
                "--conf",
                "container.idle_shutdown_secs=abc",
                "-",
                "/p",
            ],
            "invalid conf: container.idle_shutdown",
        ),
        (["--spec", "proxy", "--param", "url=http://x", "/does/not/exist", "/p"], "does not exist"),
        (["--spec", "proxy", "--param", "noequals", "-", "/p"], "must be KEY=VALUE"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    server: AppyardServer, args: list[str], message: str
) -> None:
    proc = server.cli("app", "create", *args, check=False)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    _store_is_empty(server)


def test_duplicate_path_is_refused(server: AppyardServer, backend: str) -> None:
    _create_proxy(server, backend, "/dup")
    proc = server.cli(
        "app", "create", "--spec", "proxy", "--param", f"url={backend}", "-", "/dup/", check=False
    )
    assert proc.returncode == 1 and "app /dup already exists" in proc.stderr
    assert len(server.cli_json("app", "list")) == 1


def test_list_and_delete_with_globs(server: AppyardServer, backend: str) -> None:
    for p in ("/team/a", "/team/b", "/team/b/c", "/other", "x.localhost:/"):
        _create_proxy(server, backend, p)
    paths = lambda glob: [a["path"] for a in server.cli_json("app", "list", glob)]  # noqa: E731
    assert paths("/team/*") == ["/team/a", "/team/b"]
    assert paths("/team/**") == ["/team/a", "/team/b", "/team/b/c"]
    assert paths("all") == ["/other", "/team/a", "/team/b", "/team/b/c", "x.localhost:/"]
    assert paths("*.localhost:**") == ["x.localhost:/"]
    jsonl = server.cli("app", "list", "--format", "jsonl", "/team/*").stdout.splitlines()
    assert [json.loads(x)["path"] for x in jsonl] == ["/team/a", "/team/b"]
    table = server.cli("app", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["PATH", "SPEC", "STATE"]
    out = server.cli("app", "delete", "/team/**").stdout
    assert "deleted app /team/b/c" in out
    assert paths("all") == ["/other", "x.localhost:/"]
    proc = server.cli("app", "delete", "/nothing/*", check=False)
    assert proc.returncode == 1 and "no app matches" in proc.stderr


def test_spec_list_and_config_show(server: AppyardServer) -> None:
    specs = {s["name"]: s for s in server.cli_json("spec", "list")}
    assert specs["proxy"]["params"]["url"]["required"] is True
    assert "image*" in server.cli("spec", "list").stdout
    shown = server.cli("config", "show").stdout
    assert f"port = {server.http_port}" in shown and "idle_shutdown_secs = 180.0" in shown


def test_bad_config_stops_the_server(tmp_path) -> None:
    srv = AppyardServer(tmp_path / "h", extra_config="[http]\nbogus = 1\n")
    srv.write_config()
    (srv.home / "appyard.toml").write_text('[http]\nport = "abc"\nbogus = 1\n')
    proc = srv.cli("server", "start", check=False, timeout=30)
    assert proc.returncode == 1
    assert "http.port: Input should be a valid integer" in proc.stderr
    assert "unknown key http.bogus" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_without_server_says_how_to_start(tmp_path) -> None:
    srv = AppyardServer(tmp_path / "none")
    proc = srv.cli("app", "list", check=False)
    assert proc.returncode == 1
    assert "appyard server is not running" in proc.stderr and "Traceback" not in proc.stderr


def test_server_stop_command(server: AppyardServer) -> None:
    assert "server stopped" in server.cli("server", "stop").stdout
    assert server.proc.wait(10) == 0
    assert not (server.home / "run/appyard.sock").exists()


async def test_concurrent_creates_keep_store_consistent(
    server: AppyardServer, backend: str
) -> None:
    async def create(i: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            *[
                sys.executable,
                "-m",
                "appyard",
                "app",
                "create",
                "--spec",
                "proxy",
                "--param",
                f"url={backend}",
                "-",
                f"/c{i % 10}",
            ],
            env=server.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait()

    codes = await asyncio.gather(*(create(i) for i in range(20)))
    assert sorted(codes).count(0) == 10
    assert len(server.cli_json("app", "list")) == 10


async def test_fast_and_full_paths_share_a_connection(server: AppyardServer, backend: str) -> None:
    """Bodyless requests take the raw fast path, a POST on the same keep-alive connection is
    handed to the full proxy; both see the same rewriting."""
    _create_proxy(server, backend, "/mix")
    connector = aiohttp.TCPConnector(limit=1)  # one connection for everything
    async with aiohttp.ClientSession(connector=connector) as s:
        for _ in range(3):
            async with s.get(
                server.url + "/mix/a?x=1", headers={"X-Forwarded-For": "10.9.9.9"}
            ) as r:
                echoed = await r.json()
                assert echoed["path"] == "/a?x=1"
                assert echoed["headers"]["X-Forwarded-For"] == "10.9.9.9, 127.0.0.1"
                assert echoed["headers"]["X-Forwarded-Prefix"] == "/mix"
            async with s.post(server.url + "/mix/upload", data=b"z" * 1000) as r:
                assert (await r.json())["received"] == 1000
        async with s.delete(server.url + "/mix/thing") as r:
            assert (await r.json())["method"] == "DELETE"
        async with s.head(server.url + "/mix/thing") as r:
            assert r.status == 200


def test_pipelined_requests_and_connection_close(server: AppyardServer, backend: str) -> None:
    import socket

    _create_proxy(server, backend, "/pipe")
    with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
        sock.sendall(
            b"GET /pipe/one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /pipe/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 2
    assert data.index(b'"/one"') < data.index(b'"/two"')  # in order, then closed
