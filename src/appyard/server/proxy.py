"""The reverse proxy: forwards HTTP (streamed both ways), SSE and WebSockets to app targets.

Bodies are never buffered whole: request bodies stream from the client to the
upstream, response chunks are written as they arrive, so server-sent events
reach the client as the app flushes them.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from appyard.apps.target import AppUnavailable, Target, Upstream
from appyard.server.pages import error_response
from appyard.server.router import Router

log = logging.getLogger("appyard.proxy")

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE"))
_WS_HANDSHAKE = frozenset(
    (
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    )
)


class Proxy:
    def __init__(self, get_router: callable) -> None:  # type: ignore[valid-type]
        self._get_router = get_router
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=0,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
            keepalive_timeout=30,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        router: Router[Target] = self._get_router()
        match = router.lookup(request.host, request.path)
        if match is None:
            return error_response(request, 404, "", f"no app at {request.host}{request.path}")
        target = match.target
        if not target.approved:
            return error_response(
                request,
                403,
                str(target.app_path),
                f"app is not approved; run: appyard app approve {target.app_path}",
            )
        try:
            upstream = await target.acquire()
        except AppUnavailable as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return error_response(
                request, exc.status, str(target.app_path), exc.reason, exc.log_tail, headers
            )
        try:
            return await self._forward(request, target, upstream, match.prefix)
        finally:
            target.release()

    async def _forward(
        self, request: web.Request, target: Target, upstream: Upstream, prefix: str
    ) -> web.StreamResponse:
        is_ws = (
            request.headers.get("Upgrade", "").lower() == "websocket" and request.method == "GET"
        )
        # A retry is only safe before any of the client's body was read.
        replayable = not request.body_exists and request.method in _IDEMPOTENT
        for attempt in (1, 2):
            try:
                if is_ws:
                    return await self._forward_ws(request, target, upstream, prefix)
                return await self._forward_http(request, target, upstream, prefix)
            except aiohttp.ClientConnectorError as exc:
                # Nothing listens: the container may have died. The target checks, and if so
                # the retry below starts it again.
                if not (attempt == 1 and replayable and await target.upstream_failed(exc)):
                    return error_response(
                        request,
                        502,
                        str(target.app_path),
                        f"cannot connect to the app: {exc.os_error or exc}",
                    )
                try:
                    upstream = await target.acquire()
                    target.release()  # acquire() counted once more; keep a single hold
                except AppUnavailable as unavailable:
                    return error_response(
                        request,
                        unavailable.status,
                        str(target.app_path),
                        unavailable.reason,
                        unavailable.log_tail,
                    )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # Reset before any response (e.g. a just-started app's full accept queue).
                if not (attempt == 1 and replayable):
                    return error_response(
                        request, 502, str(target.app_path), f"the app closed the connection: {exc}"
                    )
            except TimeoutError:
                return error_response(
                    request,
                    504,
                    str(target.app_path),
                    f"the app did not answer within {target.settings.timeout_secs:g}s",
                )
            except aiohttp.ClientError as exc:
                return error_response(
                    request, 502, str(target.app_path), f"bad response from the app: {exc}"
                )
        raise AssertionError("unreachable")

    def _upstream_url(
        self, request: web.Request, upstream: Upstream, prefix: str, strip: bool
    ) -> str:
        raw = request.raw_path
        if strip and prefix != "/":
            raw = raw[len(prefix) :]
            if not raw.startswith("/"):
                raw = "/" + raw
        return upstream.base_url + raw

    def _upstream_headers(
        self,
        request: web.Request,
        target: Target,
        upstream: Upstream,
        prefix: str,
        drop: frozenset[str] = frozenset(),
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        connection_tokens = {
            t.strip().lower() for t in request.headers.get("Connection", "").split(",")
        }
        for name, value in request.headers.items():
            lname = name.lower()
            if lname in HOP_BY_HOP or lname in connection_tokens or lname in drop:
                continue
            headers.add(name, value)
        if not target.settings.preserve_host:
            headers["Host"] = upstream.host
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        if prefix != "/":
            headers["X-Forwarded-Prefix"] = prefix
        return headers

    async def _forward_http(
        self, request: web.Request, target: Target, upstream: Upstream, prefix: str
    ) -> web.StreamResponse:
        assert self._session is not None
        settings = target.settings
        url = self._upstream_url(request, upstream, prefix, settings.strip_path)
        headers = self._upstream_headers(request, target, upstream, prefix)
        data = request.content if request.body_exists else None
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=10, sock_read=settings.timeout_secs
        )
        async with self._session.request(
            request.method,
            url,
            headers=headers,
            data=data,
            allow_redirects=False,
            timeout=timeout,
            compress=None,
            chunked=None,
        ) as up:
            response = web.StreamResponse(status=up.status, reason=up.reason)
            connection_tokens = {
                t.strip().lower() for t in up.headers.get("Connection", "").split(",")
            }
            for name, value in up.headers.items():
                lname = name.lower()
                if lname in HOP_BY_HOP or lname in connection_tokens:
                    continue
                response.headers.add(name, value)
            await response.prepare(request)
            try:
                if request.method != "HEAD":
                    async for chunk in up.content.iter_any():
                        await response.write(chunk)
                await response.write_eof()
            except (aiohttp.ClientError, TimeoutError, ConnectionResetError) as exc:
                # Headers are out: all that can be done is to cut the client's connection.
                log.info("%s: stream cut: %r", target.app_path, exc)
                response.force_close()
            return response

    async def _forward_ws(
        self, request: web.Request, target: Target, upstream: Upstream, prefix: str
    ) -> web.StreamResponse:
        assert self._session is not None
        url = self._upstream_url(request, upstream, prefix, target.settings.strip_path)
        url = "ws" + url[4:] if url.startswith("http") else url
        headers = self._upstream_headers(request, target, upstream, prefix, drop=_WS_HANDSHAKE)
        protocols = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        async with self._session.ws_connect(
            url,
            headers=headers,
            protocols=protocols,
            autoping=False,
            max_msg_size=0,
            autoclose=False,
        ) as up_ws:
            client_ws = web.WebSocketResponse(
                protocols=[up_ws.protocol] if up_ws.protocol else (),
                autoping=False,
                max_msg_size=0,
                autoclose=False,
            )
            await client_ws.prepare(request)
            await _pump_both(client_ws, up_ws)
            return client_ws


async def _pump(src, dst) -> None:  # type: ignore[no-untyped-def]
    """Copy messages from one WebSocket to the other until `src` closes."""
    async for msg in src:
        kind = msg.type
        if kind == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif kind == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif kind == aiohttp.WSMsgType.PING:
            await dst.ping(msg.data)
        elif kind == aiohttp.WSMsgType.PONG:
            await dst.pong(msg.data)
        elif kind == aiohttp.WSMsgType.CLOSE:
            await dst.close(code=src.close_code or 1000, message=(msg.extra or "").encode())
            return
        else:  # CLOSING, CLOSED, ERROR
            break
    if not dst.closed:
        await dst.close(code=src.close_code or 1000)


async def _pump_both(
    client_ws: web.WebSocketResponse, up_ws: aiohttp.ClientWebSocketResponse
) -> None:
    tasks = [
        asyncio.ensure_future(_pump(client_ws, up_ws)),
        asyncio.ensure_future(_pump(up_ws, client_ws)),
    ]
    try:
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # One side closed: give the other a moment to pass its close frame along.
        if pending:
            await asyncio.wait(pending, timeout=2)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, ConnectionResetError, aiohttp.ClientError) as exc:
                log.debug("websocket pump ended: %r", exc)
