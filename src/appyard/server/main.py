"""Start and stop the appyard server: HTTP and HTTPS fronts, the admin socket, the apps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from appyard.apps.health import Runtime
from appyard.apps.manager import AppManager
from appyard.config import ServerConfig
from appyard.errors import UserError
from appyard.home import Home
from appyard.runtime.engine import detect_engine
from appyard.secrets.providers import build_providers
from appyard.secrets.resolver import SecretResolver
from appyard.server.admin import AdminAPI
from appyard.server.fastpath import FrontConnection, UpstreamPool, front_factory
from appyard.server.proxy import Proxy
from appyard.server.tls import server_context
from appyard.specs import SpecRegistry
from appyard.store import SqliteStore

log = logging.getLogger("appyard.server")


def _socket_in_use(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


class Server:
    def __init__(self, config: ServerConfig, home: Home) -> None:
        self.config = config
        self.home = home
        self.stop_event = asyncio.Event()
        self._runners: list[web.BaseRunner] = []
        self._listeners: list[asyncio.base_events.Server] = []
        self.pool = UpstreamPool()
        self.front_conns: set[FrontConnection] = set()
        self.ports: dict[str, int] = {}

    async def run(self) -> None:
        home, cfg = self.home, self.config
        home.ensure()
        sock_path = str(home.socket_path)
        if _socket_in_use(sock_path):
            raise UserError(
                f"an appyard server is already running for {home.root} "
                f"(socket {sock_path}); stop it with: appyard server stop"
            )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)

        store = SqliteStore(home.db_path)
        specs = SpecRegistry(home.user_specs_dir)
        engine = await detect_engine(cfg.container.command)
        if engine is None:
            log.warning(
                "no container engine answered (%s); container apps cannot start",
                cfg.container.command,
            )
        health_http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        secrets = SecretResolver(build_providers(cfg.secret.providers), cfg.secret.default)
        runtime = Runtime(engine, cfg.container, home.logs_dir, health_http, secrets)
        manager = AppManager(store, specs, cfg.app_config, runtime, home.instance_id)
        proxy = Proxy(lambda: manager.router)
        try:
            await manager.load()
            await proxy.start()
            await self._start_fronts(proxy, lambda: manager.router)
            await self._start_admin(AdminAPI(manager, home, cfg, self.stop_event))
            home.pid_file.write_text(str(os.getpid()))
            log.info(
                "appyard ready: %s; engine %s; %d targets",
                ", ".join(f"{k} port {v}" for k, v in self.ports.items()),
                engine.name if engine else "none",
                len(manager.targets),
            )
            print(
                f"appyard ready {' '.join(f'{k}={v}' for k, v in self.ports.items())}", flush=True
            )
            await self.stop_event.wait()
            log.info("shutting down")
        finally:
            for listener in self._listeners:
                listener.close()
            await self._drain_fronts()
            for runner in reversed(self._runners):
                await runner.cleanup()
            self.pool.close()
            await manager.shutdown()
            await proxy.close()
            await health_http.close()
            store.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sock_path)
            with contextlib.suppress(FileNotFoundError):
                home.pid_file.unlink()

    async def _start_fronts(self, proxy: Proxy, get_router: Callable[[], Any]) -> None:
        """HTTP and HTTPS listeners: the fast path first, aiohttp behind it."""
        cfg = self.config
        server = web.Server(
            proxy.handle, access_log=log if cfg.log.access_log else None, handler_cancellation=True
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=5)
        await runner.setup()
        self._runners.append(runner)
        loop = asyncio.get_running_loop()
        fronts = [("http", cfg.http.host, cfg.http.port, None)]
        if cfg.https.port >= 0:
            fronts.append(
                ("https", cfg.https.host, cfg.https.port, server_context(self.home.certs_dir))
            )
        for name, host, port, ssl_ctx in fronts:
            if port < 0:
                continue
            factory = front_factory(get_router, self.pool, server, name, self.front_conns)
            try:
                listener = await loop.create_server(
                    factory, host, port, ssl=ssl_ctx, backlog=1024, reuse_address=True
                )
            except OSError as exc:
                raise UserError(
                    f"cannot listen on {host}:{port} ({name}): {exc.strerror}"
                ) from None
            self._listeners.append(listener)
            self.ports[name] = listener.sockets[0].getsockname()[1]

    async def _drain_fronts(self, timeout: float = 5.0) -> None:
        """Let fast-path exchanges in flight finish, then close every front connection."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (
            any(c.busy for c in self.front_conns) and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.05)
        for conn in list(self.front_conns):
            conn.close()

    async def _start_admin(self, api: AdminAPI) -> None:
        runner = web.AppRunner(api.app(), handle_signals=False, access_log=None)
        await runner.setup()
        self._runners.insert(0, runner)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            await web.UnixSite(runner, str(self.home.socket_path)).start()
        finally:
            os.umask(old_umask)
        os.chmod(self.home.socket_path, 0o600)


def _raise_open_file_limit() -> None:
    """A proxy holds two sockets per open stream: use the whole hard limit for files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_server(config: ServerConfig, home: Home) -> None:
    _raise_open_file_limit()
    logging.basicConfig(
        level=config.log.level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    server = Server(config, home)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop_event.set)
        await server.run()

    if uvloop is not None:
        uvloop.run(main())
    else:
        asyncio.run(main())
