"""The front door: a raw HTTP/1.1 forwarder for the common case, aiohttp for the rest.

Most requests are bodyless requests (GET, DELETE, OPTIONS) to an app that is already
running. For those, this protocol parses only the request head, rewrites it (path
prefix, Host, X-Forwarded-*), sends it on a pooled upstream connection and relays the
response bytes verbatim, parsing them with httptools only to find where the response
ends. Nothing is buffered, so streams and SSE pass through as they are written.

Anything else (request bodies, HEAD, upgrades/WebSockets, HTTP/1.0, apps that must
start first, approval and error pages) is handed over, bytes and all, to aiohttp's
request handler on the same connection, which runs the full-featured proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httptools

from appyard.apps.target import Target, Upstream
from appyard.server.router import Router

log = logging.getLogger("appyard.fastpath")

_HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)
_BODYLESS = frozenset((b"GET", b"DELETE", b"OPTIONS"))
_MAX_HEAD = 65536
_MAX_IDLE_PER_UPSTREAM = 256
KEEPALIVE_SECS = 75.0  # like aiohttp's keepalive_timeout


class UpstreamPool:
    """Idle keep-alive connections per upstream (host, port)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[UpstreamConnection]] = {}

    def get_idle(self, host: str, port: int) -> UpstreamConnection | None:
        idle = self._idle.get((host, port))
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self, host: str, port: int) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: UpstreamConnection(self, (host, port)), host, port
        )
        return conn

    def put(self, conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) < _MAX_IDLE_PER_UPSTREAM and not conn.closed:
            idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


class UpstreamConnection(asyncio.Protocol):
    """One connection to an app; relays each response to the front connection that asked."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.front: FrontConnection | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._done = False
        self._keep_alive = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.front is not None:
            front, self.front = self.front, None
            front.upstream_lost(self)

    def send(self, front: FrontConnection, head: bytes) -> None:
        self.front = front
        self._parser = httptools.HttpResponseParser(self)
        self._done = False
        assert self.transport is not None
        self.transport.write(head)

    def data_received(self, data: bytes) -> None:
        front = self.front
        if front is None:  # unsolicited bytes on an idle connection: drop it
            self.close()
            return
        front.relay(data)
        try:
            self._parser.feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserError:
            self.close()
            return
        if self._done:
            keep = self._keep_alive
            self.front = None
            front.response_done(keep)
            if keep:
                self.pool.put(self)
            else:
                self.close()

    def on_message_complete(self) -> None:
        # Asked here: once feed_data returns, the parser has reset for the next message.
        self._keep_alive = self._parser.should_keep_alive()  # type: ignore[union-attr]
        self._done = True

    def eof_received(self) -> bool | None:
        # A response delimited by closing the connection ends here.
        if self.front is not None and self._parser is not None:
            with contextlib.suppress(httptools.HttpParserError):
                self._parser.feed_data(b"")
        return None

    def pause_front_writes(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_front_writes(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        self.front = None
        if self.transport is not None:
            self.transport.close()


class FrontConnection(asyncio.Protocol):
    """One client connection; forwards simple requests itself, hands the rest to aiohttp."""

    def __init__(
        self,
        get_router: Callable[[], Router[Target]],
        pool: UpstreamPool,
        slow_path: Callable[[], asyncio.Protocol],
        scheme: str,
        connections: set[FrontConnection],
    ) -> None:
        self._get_router = get_router
        self._pool = pool
        self._slow_path = slow_path
        self._scheme = scheme
        self._connections = connections
        self._buf = b""
        self._busy = False  # a request is being forwarded
        self._target: Target | None = None
        self._upstream: UpstreamConnection | None = None
        self._close_after = False
        self.transport: asyncio.Transport | None = None
        self._peer = ""
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._timeout = 300.0
        self._handed_off = False
        self._current = b""
        self._connecting: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_seen = 0.0

    @property
    def busy(self) -> bool:
        return self._busy

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- client side ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if peer else ""
        self._connections.add(self)
        self._loop = loop = asyncio.get_running_loop()
        self._last_seen = loop.time()
        self._idle_timer = loop.call_later(KEEPALIVE_SECS, self._idle_check)

    def _idle_check(self) -> None:
        """Close keep-alive connections idle for KEEPALIVE_SECS (one lazy timer each)."""
        if self._handed_off or self.transport is None or self.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_seen
        if self._busy or quiet < KEEPALIVE_SECS:
            delay = KEEPALIVE_SECS - quiet if not self._busy else KEEPALIVE_SECS
            self._idle_timer = loop.call_later(max(delay, 1.0), self._idle_check)
            return
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._busy:
            self._finish(keep_upstream=False)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._last_seen = self._loop.time()
        if not self._busy:
            self._next_request()

    def pause_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.pause_front_writes()

    def resume_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.resume_front_writes()

    def _next_request(self) -> None:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HEAD:
                self._hand_off()
            return
        head = self._buf[:end]
        route = self._fast_route(head)
        if route is None:
            self._hand_off()
            return
        target, upstream, request_head = route
        self._current = self._buf[: end + 4]  # as the client sent it, for a hand-over
        self._buf = self._buf[end + 4 :]
        self._busy = True
        self._target = target
        host, port = upstream.addr  # type: ignore[misc]
        conn = self._pool.get_idle(host, port)
        if conn is not None:  # the common case: no task, no await
            self._send(conn, request_head)
        else:
            self._connecting = asyncio.ensure_future(
                self._connect_and_send(target, host, port, request_head)
            )

    def _fast_route(self, head: bytes) -> tuple[Target, Upstream, bytes] | None:
        """The target and rewritten head, if this request can take the fast path."""
        lines = head.split(b"\r\n")
        try:
            method, raw_path, version = lines[0].split(b" ")
        except ValueError:
            return None
        if method not in _BODYLESS or version != b"HTTP/1.1":
            return None
        headers: list[tuple[bytes, bytes]] = []
        host = b""
        connection = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                return None
            lname = name.lower()
            value = value.strip()
            if lname in (b"content-length", b"transfer-encoding", b"upgrade", b"expect") and (
                lname != b"content-length" or value != b"0"
            ):
                return None
            if lname == b"host":
                host = value
            elif lname == b"connection":
                connection = value.lower()
            headers.append((name, value))
        path = raw_path.split(b"?", 1)[0].decode("latin-1")
        if not path.startswith("/"):
            return None
        match = self._get_router().lookup(host.decode("latin-1"), path)
        if match is None or not match.target.approved:
            return None
        target = match.target
        upstream = target.acquire_nowait()
        if upstream is None or upstream.addr is None:  # https or no explicit port: full proxy
            if upstream is not None:
                target.release()
            return None
        self._close_after = b"close" in connection
        self._timeout = target.settings.timeout_secs
        return (
            target,
            upstream,
            self._rewrite(
                method, raw_path, headers, connection, host, target, upstream, match.prefix
            ),
        )

    def _rewrite(
        self,
        method: bytes,
        raw_path: bytes,
        headers: list[tuple[bytes, bytes]],
        connection: bytes,
        host: bytes,
        target: Target,
        upstream: Upstream,
        prefix: str,
    ) -> bytes:
        drop = _HOP_BY_HOP
        if connection:
            drop = drop | {t.strip() for t in connection.split(b",")}
        settings = target.settings
        prefix_b = prefix.encode()
        if settings.strip_path and prefix != "/":
            raw_path = raw_path[len(prefix_b) :]
            if not raw_path.startswith(b"/"):
                raw_path = b"/" + raw_path
        if upstream.base_path:  # proxy spec URLs may have a path
            raw_path = upstream.base_path + raw_path
        out = [method, b" ", raw_path, b" HTTP/1.1\r\n"]
        forwarded_for = b""
        for name, value in headers:
            lname = name.lower()
            if lname in drop or lname.startswith(b"x-forwarded-"):
                if lname == b"x-forwarded-for":
                    forwarded_for = value + b", "
                elif lname not in drop:
                    out += [name, b": ", value, b"\r\n"]
                continue
            if lname == b"host" and not settings.preserve_host:
                continue
            out += [name, b": ", value, b"\r\n"]
        if not settings.preserve_host or not host:
            out += [b"Host: ", upstream.host.encode(), b"\r\n"]
        out += [
            b"X-Forwarded-For: ",
            forwarded_for,
            self._peer.encode(),
            b"\r\n",
            b"X-Forwarded-Host: ",
            host,
            b"\r\n",
            b"X-Forwarded-Proto: ",
            self._scheme.encode(),
            b"\r\n",
        ]
        if prefix != "/":
            out += [b"X-Forwarded-Prefix: ", prefix_b, b"\r\n"]
        out.append(b"\r\n")
        return b"".join(out)

    async def _connect_and_send(self, target: Target, host: str, port: int, head: bytes) -> None:
        try:
            conn = await self._pool.connect(host, port)
        except OSError:
            # Let the full proxy deal with it: it asks the target (a crashed container is
            # restarted) and answers with a proper error page.
            self._busy = False
            self._target = None
            target.release()
            self._buf = self._current + self._buf
            self._hand_off()
            return
        if self.transport is None or self.transport.is_closing():
            self._finish(keep_upstream=True)
            self._pool.put(conn)
            return
        self._send(conn, head)

    def _send(self, conn: UpstreamConnection, head: bytes) -> None:
        self._upstream = conn
        loop = asyncio.get_running_loop()
        self._last_data = loop.time()
        self._timer = loop.call_later(self._timeout, self._check_timeout)
        conn.send(self, head)

    # -- upstream side ----------------------------------------------------

    def relay(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def response_done(self, upstream_keep_alive: bool) -> None:
        self._upstream = None
        self._finish(keep_upstream=True)
        if self._close_after or not upstream_keep_alive:
            if self.transport is not None:
                self.transport.close()
            return
        if self._buf and self.transport is not None and not self.transport.is_closing():
            self._next_request()

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """The app closed the connection before the response ended: cut the client off."""
        self._upstream = None
        self._finish(keep_upstream=False)
        if self.transport is not None:
            self.transport.close()

    def _check_timeout(self) -> None:
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_data
        if not self._busy:
            return
        if idle < self._timeout:
            self._timer = loop.call_later(self._timeout - idle, self._check_timeout)
            return
        log.info("upstream read timeout after %gs; closing", self._timeout)
        self._timer = None
        self._finish(keep_upstream=False)
        if self.transport is not None:
            self.transport.close()

    def _finish(self, keep_upstream: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not keep_upstream and self._upstream is not None:
            self._upstream.close()
        self._upstream = None
        if self._target is not None:
            self._target.release()
            self._target = None
        self._busy = False

    # -- handing over to aiohttp -----------------------------------------

    def _hand_off(self) -> None:
        """Give this connection, and the bytes not yet handled, to aiohttp's handler."""
        if self.transport is None or self._handed_off:
            return
        self._handed_off = True
        self._connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        data, self._buf = self._buf, b""
        handler = self._slow_path()
        self.transport.set_protocol(handler)
        handler.connection_made(self.transport)
        if data:
            handler.data_received(data)


def front_factory(
    get_router: Callable[[], Router[Target]],
    pool: UpstreamPool,
    slow_path: Callable[[], Any],
    scheme: str,
    connections: set[FrontConnection],
) -> Callable[[], FrontConnection]:
    return lambda: FrontConnection(get_router, pool, slow_path, scheme, connections)
