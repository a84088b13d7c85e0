"""A test upstream (aiohttp) with the behaviours the proxy must carry: echo, big bodies,
SSE, WebSockets, uploads. Run as `python -m tests.support.backend PORT`."""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body_len": len(await request.read()),
        }
    )


async def big(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("mb", "20")) * 1024 * 1024
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.content_length = size
    await resp.prepare(request)
    chunk = b"x" * 65536
    for _ in range(size // len(chunk)):
        await resp.write(chunk)
    return resp


async def upload(request: web.Request) -> web.Response:
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
    return web.json_response({"received": total})


async def sse(request: web.Request) -> web.StreamResponse:
    count = int(request.query.get("n", "5"))
    gap = float(request.query.get("gap", "0.3"))
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    for i in range(count):
        await resp.write(f"data: {json.dumps({'i': i, 't': loop.time()})}\n\n".encode())
        await asyncio.sleep(gap)
    return resp


async def ws(request: web.Request) -> web.WebSocketResponse:
    sock = web.WebSocketResponse(protocols=("chat",))
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == web.WSMsgType.TEXT:
            await sock.send_str("echo:" + msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await sock.send_bytes(msg.data)
    return sock


def make_app() -> web.Application:
    app = web.Application(client_max_size=1024**3)
    app.add_routes(
        [
            web.get("/big", big),
            web.post("/upload", upload),
            web.get("/sse", sse),
            web.get("/ws", ws),
            web.route("*", "/{tail:.*}", echo),
        ]
    )
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
