"""The container lifecycle of one app instance: an explicit state machine.

    stopped ──request──▶ building ──▶ starting ──healthy──▶ running
       ▲                    │            │                     │
       └──────failure───────┴────────────┘        idle / crash / unhealthy
       └──────────────────────── stopping ◀────────────────────┘

* Single flight: however many requests arrive while the app is stopped, one task
  builds and starts it; the requests wait on that task (bounded count and time).
* Activity: `acquire()`/`release()` bracket every proxied exchange, including
  open streams and WebSockets, so the idle clock starts when the last one ends.
  One timer per instance fires at the idle deadline; nothing sweeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appyard.apps.health import Runtime, StartFailed, State, exited_log_tail, probe
from appyard.apps.paths import AppPath
from appyard.apps.plan import ContainerPlan, prepare_context
from appyard.apps.target import AppUnavailable, ProxySettings, Upstream
from appyard.errors import UserError
from appyard.runtime.engine import Engine, EngineError, pick_free_port
from appyard.secrets.refs import has_refs
from appyard.secrets.resolver import uses_secrets

log = logging.getLogger("appyard.lifecycle")


class ContainerTarget:
    def __init__(
        self,
        runtime: Runtime,
        plan: ContainerPlan,
        app_path: AppPath,
        settings: ProxySettings,
        approved: bool,
        idle_secs: float,
    ) -> None:
        self.rt = runtime
        self.plan = plan
        self.app_path = app_path
        self.settings = settings
        self.approved = approved
        self.idle_secs = idle_secs
        self.state = State.STOPPED
        self.last_start_secs: float | None = None
        self.last_error = ""
        self._loop = asyncio.get_running_loop()
        self._upstream: Upstream | None = None
        self._active = 0
        self._last_done = self._loop.time()
        self._waiting = 0
        self._start_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._known_port: int | None = None  # host port of our container, once known
        self._stopped_cleanly = False  # our container exists, stopped, port unchanged
        self._listeners: set[Callable[[str], None]] = set()
        self._closed = False
        app_id = plan.labels.get("dev.appyard.app_id", "app")
        self._log_dir = runtime.logs_dir / app_id
        self.container = plan.run.name
        # Apps that keep their path prefix answer health checks below it too.
        below = "" if settings.strip_path or app_path.path == "/" else app_path.path
        self.health_path = below + plan.health_path

    # -- proxy side -------------------------------------------------------

    async def acquire(self) -> Upstream:
        self._active += 1
        upstream = self._upstream
        if upstream is not None and self.state is State.RUNNING:
            return upstream
        try:
            await self._wait_until_running()
        except BaseException:
            self._active -= 1
            self._last_done = self._loop.time()
            raise
        assert self._upstream is not None
        return self._upstream

    def acquire_nowait(self) -> Upstream | None:
        upstream = self._upstream
        if upstream is None or self.state is not State.RUNNING:
            return None
        self._active += 1
        return upstream

    def release(self) -> None:
        self._active -= 1
        self._last_done = self._loop.time()
        if self._active == 0 and self._idle_timer is None:
            self._arm_idle_timer()

    async def upstream_failed(self, exc: BaseException) -> bool:
        """Connection refused: if the container died, note it so the retry restarts it."""
        if self.rt.engine is None or self.state is not State.RUNNING:
            return False
        info = await self.rt.engine.inspect(self.container)
        if info is not None and info.running:
            return False
        await self._container_exited(info.exit_code if info else None)
        return True

    # -- starting ---------------------------------------------------------

    async def ensure_running(self, on_line: Callable[[str], None] | None = None) -> None:
        """Start now (used by reload/--wait); progress lines go to `on_line`."""
        if on_line is not None:
            self._listeners.add(on_line)
        try:
            self._active += 1
            await self._wait_until_running()
        finally:
            self._listeners.discard(on_line)  # type: ignore[arg-type]
            self.release()

    async def _wait_until_running(self) -> None:
        cfg = self.rt.config
        if self._closed:
            raise AppUnavailable(503, "the app is being removed or replaced", retry_after=1)
        if self._waiting >= cfg.max_held_requests:
            raise AppUnavailable(
                503,
                f"too many requests waiting for the app to start (max {cfg.max_held_requests})",
                retry_after=5,
            )
        while self.state is not State.RUNNING:
            if self._start_task is None:
                self._start_task = asyncio.ensure_future(self._start())
            self._waiting += 1
            try:
                await asyncio.wait_for(asyncio.shield(self._start_task), cfg.hold_timeout_secs)
            except TimeoutError:
                raise AppUnavailable(
                    503, f"the app did not start within {cfg.hold_timeout_secs:g}s", retry_after=5
                ) from None
            except StartFailed as exc:
                raise AppUnavailable(500, exc.reason, exc.log_tail) from None
            finally:
                self._waiting -= 1

    def _emit(self, line: str) -> None:
        for listener in list(self._listeners):
            listener(line)

    async def _start(self) -> None:
        began = time.monotonic()
        try:
            if self._stop_task is not None:
                await asyncio.shield(self._stop_task)
            engine = self.rt.engine
            if engine is None:
                raise StartFailed(
                    "no container engine found: install podman or docker, "
                    "or set [container] command in appyard.toml"
                )
            self._set_state(State.BUILDING)
            await self._ensure_image(engine)
            self._set_state(State.STARTING)
            port = await self._fast_restart(engine)
            if port is None:
                port = await self._ensure_container(engine)
                await self._wait_healthy(engine, port)
        except StartFailed as exc:
            self.last_error = exc.reason
            self._set_state(State.STOPPED)
            raise
        except EngineError as exc:
            self.last_error = str(exc)
            self._set_state(State.STOPPED)
            raise StartFailed(str(exc), exc.log_tail) from None
        except UserError as exc:  # e.g. a secret that cannot be resolved
            self.last_error = str(exc)
            self._set_state(State.STOPPED)
            raise StartFailed(str(exc)) from None
        except Exception as exc:
            log.exception("starting %s failed", self.app_path)
            self.last_error = f"unexpected error: {exc!r}"
            self._set_state(State.STOPPED)
            raise StartFailed(self.last_error) from None
        finally:
            self._start_task = None
        self.last_start_secs = time.monotonic() - began
        self.last_error = ""
        self._upstream = Upstream.local(port)
        self._set_state(State.RUNNING)
        self._emit(f"app {self.app_path} is running ({self.last_start_secs:.2f}s)")
        self._last_done = self._loop.time()
        self._start_monitor()
        if self._active == 0:
            self._arm_idle_timer()

    async def _ensure_image(self, engine: Engine) -> None:
        plan = self.plan
        if await engine.image_exists(plan.image):
            return
        log_file = self._log_dir / "build.log"
        if plan.build is None:
            self._emit(f"pulling image {plan.image}")
            await engine.pull(plan.image, self._emit, log_file)
            return
        self._emit(f"building image {plan.image}")
        args = plan.build.build_args
        plain = {k: v for k, v in args.items() if not has_refs(v)}
        secret = await self.rt.secrets.resolve({k: v for k, v in args.items() if has_refs(v)})
        with tempfile.TemporaryDirectory(prefix="appyard-build-") as tmp:
            containerfile = prepare_context(plan.build, Path(tmp) / "context")
            try:
                await engine.build(
                    containerfile.parent,
                    containerfile,
                    plan.image,
                    plain,
                    plan.labels,
                    self._emit,
                    log_file,
                    secret,
                )
            except EngineError as exc:
                raise StartFailed(f"build of {self.app_path} failed: {exc}", exc.log_tail) from None

    async def _fast_restart(self, engine: Engine) -> int | None:
        """Restart the container this target stopped itself, polling health meanwhile.

        Its name and host port are known, so there is nothing to inspect: the engine's
        `start` and the readiness polling run side by side and the first healthy answer
        wins. Returns None (use the full path) when that does not apply or fails early.
        """
        port = self._known_port
        if not (self._stopped_cleanly and port) or uses_secrets(self.plan.run.env):
            return None
        self._stopped_cleanly = False
        log.info("%s: starting container %s", self.app_path, self.container)
        self._emit(f"starting container {self.container}")
        started = asyncio.ensure_future(engine.start(self.container))
        try:
            await self._wait_healthy(engine, port, started)
        except EngineError as exc:  # e.g. the port was taken meanwhile: create afresh
            log.info("%s: quick restart failed (%s); recreating", self.app_path, exc)
            await engine.remove(self.container)
            return None
        started.add_done_callback(_log_failure)
        return port

    async def _ensure_container(self, engine: Engine) -> int:
        """Start the existing container for this plan, or create it; returns the host port.

        Containers whose env holds secret references are created afresh on every start,
        so a changed secret takes effect on the next start.
        """
        name = self.container
        info = await engine.inspect(name)
        run = self.plan.run
        if uses_secrets(run.env):
            run = dataclasses.replace(run, env=await self.rt.secrets.resolve(run.env))
            if info is not None:
                await engine.remove(name)
                info = None
        if info is None:
            log.info("%s: creating container %s", self.app_path, name)
            self._emit(f"creating container {name}")
            run = dataclasses.replace(run, host_port=pick_free_port())
            await engine.run(run)
        elif not info.running:
            log.info("%s: starting container %s", self.app_path, name)
            self._emit(f"starting container {name}")
            try:
                await engine.start(name)
            except EngineError:
                await engine.remove(name)
                await engine.run(run)
        info = await engine.inspect(name)
        if info is None or not info.running:
            tail = await self._exit_tail(engine)
            raise StartFailed(
                f"container exited at start (exit code {info.exit_code if info else '?'})", tail
            )
        port = info.host_port(self.plan.run.port)
        if port is None:
            raise StartFailed(f"container does not publish port {self.plan.run.port}")
        self._known_port = port
        return port

    async def _wait_healthy(
        self, engine: Engine, port: int, starting: asyncio.Future[None] | None = None
    ) -> None:
        """Poll fast at first (10 ms), backing off to 250 ms, until 2xx/3xx or timeout.

        `starting` is the engine's start command when it runs alongside; its failure
        ends the wait (raised as the EngineError it is).
        """
        url = f"http://127.0.0.1:{port}{self.health_path}"
        deadline = self._loop.time() + self.rt.config.start_timeout_secs
        delay, checks, last = 0.01, 0, "no answer yet"
        while self._loop.time() < deadline:
            ok, last = await probe(self.rt.http, url)
            if ok:
                return
            if starting is not None and starting.done() and starting.exception():
                raise starting.exception()  # type: ignore[misc]
            checks += 1
            if checks % 10 == 0:
                info = await engine.inspect(self.container)
                if info is None or not info.running:
                    tail = await self._exit_tail(engine)
                    raise StartFailed(
                        "container exited before it became healthy "
                        f"(exit code {info.exit_code if info else '?'})",
                        tail,
                    )
            await asyncio.sleep(delay)
            delay = min(delay * 1.2, 0.25)  # fine-grained while a start is typical
        tail = await engine.logs(self.container, 30)
        await engine.stop(self.container, self.rt.config.stop_grace_secs)
        raise StartFailed(
            f"health check {self.plan.health_path} did not pass within "
            f"{self.rt.config.start_timeout_secs:g}s: {last}",
            tail,
        )

    async def _exit_tail(self, engine: Engine) -> str:
        """The last lines of an exited container (the engine may still be writing them)."""
        tail = await exited_log_tail(engine, self.container)
        await self._save_exit_log(tail)
        return tail

    # -- running ----------------------------------------------------------

    def _start_monitor(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.ensure_future(self._monitor_health())

    async def _monitor_health(self) -> None:
        """Periodic check while running; N failures in a row restart the container."""
        cfg = self.rt.config
        failures = 0
        while self.state is State.RUNNING and self._upstream is not None:
            await asyncio.sleep(cfg.health_interval_secs)
            if self.state is not State.RUNNING or self._upstream is None:
                return
            ok, reason = await probe(self.rt.http, self._upstream.base_url + self.health_path)
            failures = 0 if ok else failures + 1
            if failures >= cfg.health_failures:
                log.warning(
                    "%s failed %d health checks (%s); restarting", self.app_path, failures, reason
                )
                info = await self.rt.engine.inspect(self.container) if self.rt.engine else None
                if info is None or not info.running:
                    await self._container_exited(info.exit_code if info else None)
                else:
                    await self._stop("unhealthy")
                self._restart_task = asyncio.ensure_future(self._restart_quietly())
                return

    async def _restart_quietly(self) -> None:
        try:
            await self.ensure_running()
        except AppUnavailable as exc:
            log.warning("restart of %s failed: %s", self.app_path, exc.reason)

    async def _container_exited(self, exit_code: int | None) -> None:
        log.warning("container of %s exited (code %s)", self.app_path, exit_code)
        if self.rt.engine is not None:
            await self._exit_tail(self.rt.engine)
        self._upstream = None
        self._set_state(State.STOPPED)

    async def _save_exit_log(self, text: str) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        (self._log_dir / "last-exit.log").write_text(text)

    # -- idle stop --------------------------------------------------------

    def _arm_idle_timer(self) -> None:
        if self.idle_secs <= 0 or self.state is not State.RUNNING or self._closed:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = self._loop.call_at(self._last_done + self.idle_secs, self._idle_due)

    def _idle_due(self) -> None:
        self._idle_timer = None
        if self._active > 0 or self.state is not State.RUNNING:
            return  # release() re-arms when the last exchange ends
        if self._loop.time() < self._last_done + self.idle_secs:
            self._arm_idle_timer()
            return
        log.info("%s idle for %gs; stopping", self.app_path, self.idle_secs)
        self._stop_task = asyncio.ensure_future(self._stop("idle"))

    async def _stop(self, why: str) -> None:
        self._upstream = None
        self._set_state(State.STOPPING)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        try:
            if self.rt.engine is not None:
                await self.rt.engine.stop(self.container, self.rt.config.stop_grace_secs)
                self._stopped_cleanly = True
        finally:
            self._set_state(State.STOPPED)
            self._stop_task = None
            log.info("%s stopped (%s)", self.app_path, why)

    async def restart(self, on_line: Callable[[str], None] | None = None) -> None:
        """Create the container afresh (re-resolving secrets) and start it now."""
        await self.shutdown_container()
        await self.ensure_running(on_line)

    async def shutdown_container(self) -> None:
        if self._start_task is not None:
            await asyncio.gather(asyncio.shield(self._start_task), return_exceptions=True)
        if self.state is State.RUNNING:
            await self._stop("restart")
        if self.rt.engine is not None:
            await self.rt.engine.remove(self.container)
        self._stopped_cleanly = False

    # -- adoption, retirement and shutdown -------------------------------

    @property
    def upstream_port(self) -> int | None:
        up = self._upstream
        return up.addr[1] if up is not None and up.addr is not None else None

    async def retire(self, drain_secs: float, remove: bool) -> None:
        """Replaced by a new version: let in-flight requests and streams finish, then go."""
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        deadline = self._loop.time() + drain_secs
        while self._active > 0 and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self._active:
            log.warning(
                "%s: %d exchanges still open after %gs drain; closing",
                self.app_path,
                self._active,
                drain_secs,
            )
        if remove:
            await self.shutdown(remove=True)
        else:
            if self._monitor is not None:
                self._monitor.cancel()
            self._upstream = None

    def adopt(self, port: int) -> None:
        """Take over a running container found at server start (no second copy)."""
        self._known_port = port
        self._upstream = Upstream.local(port)
        self._set_state(State.RUNNING)
        self._last_done = self._loop.time()
        self._start_monitor()
        self._arm_idle_timer()

    async def shutdown(self, remove: bool) -> None:
        """Stop serving; with `remove`, delete the container too (app deleted or replaced)."""
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._monitor is not None:
            self._monitor.cancel()
        if self._start_task is not None:
            self._start_task.cancel()
        engine = self.rt.engine
        if engine is None:
            return
        if remove:
            await engine.remove(self.container)
            self._stopped_cleanly = False
        elif self.state in (State.RUNNING, State.STARTING):
            await self._stop("server shutdown")
        self._upstream = None
        self._set_state(State.STOPPED)

    def _set_state(self, state: State) -> None:
        if state is not self.state:
            log.debug("%s: %s -> %s", self.app_path, self.state.value, state.value)
            self.state = state

    def info(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "image": self.plan.image,
            "container": self.container,
            "last_start_secs": self.last_start_secs,
            "last_error": self.last_error,
            "active": self._active,
        }

    def build_log(self) -> str:
        path = self._log_dir / "build.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def exit_log(self) -> str:
        path = self._log_dir / "last-exit.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("engine start reported: %s", task.exception())
