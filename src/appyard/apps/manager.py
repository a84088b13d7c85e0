"""The app manager: owns the live targets for every app and the router that finds them.

It loads apps from the store at start, adopts the containers this appyard already
runs, and swaps in a new (immutable) router whenever apps change. Version changes of a
running app go through `prepare` (start the new target and wait until healthy) and
`commit` (switch the router, then drain and remove the old target), so traffic never
sees a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from appyard.apps.approval import missing
from appyard.apps.devmode import DevWatcher, live_version
from appyard.apps.health import Runtime, State
from appyard.apps.lifecycle import ContainerTarget
from appyard.apps.model import AppVersion, AppView
from appyard.apps.paths import AppPath
from appyard.apps.plan import make_plan
from appyard.apps.target import AppUnavailable, ProxySettings, StaticTarget, Target
from appyard.config import AppConfig, effective_app_config
from appyard.errors import UserError
from appyard.runtime.engine import LABEL_PREFIX, EngineError
from appyard.server.router import Router
from appyard.specs import SpecRegistry
from appyard.store import Store

log = logging.getLogger("appyard.manager")

SLOTS = ("prod", "stage")


@dataclass
class Swap:
    key: tuple[str, str]
    new: Target
    old: Target | None
    keep_container: bool = False  # new and old share a container: hand it over


class AppManager:
    def __init__(
        self,
        store: Store,
        specs: SpecRegistry,
        app_defaults: AppConfig,
        runtime: Runtime,
        instance_id: str,
    ) -> None:
        self.store = store
        self.specs = specs
        self.app_defaults = app_defaults
        self.runtime = runtime
        self.instance_id = instance_id
        self.targets: dict[tuple[str, str], Target] = {}
        self.router: Router[Target] = Router()
        self.lock = asyncio.Lock()  # serializes admin changes
        self._watchers: dict[str, DevWatcher] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        for view in self.store.list_apps():
            try:
                for slot in SLOTS:
                    self.targets[(view.app.id, slot)] = self.make_target(view, slot)
                self._watch_if_dev(view)
            except UserError as exc:
                log.error("app %s cannot be served: %s", view.app.path, exc)
        self._rebuild_router()
        await self.reconcile_containers()

    # -- targets ----------------------------------------------------------

    def make_target(self, view: AppView, slot: str) -> Target:
        version = view.prod if slot == "prod" else view.stage
        if version.dev:
            version = live_version(version)
        public = view.app.path if slot == "prod" else view.app.path.stage
        approved = not missing(version, view.app.approval)
        return self._target_for(version, public, slot, approved)

    def _target_for(
        self, version: AppVersion, public: AppPath, slot: str, approved: bool
    ) -> Target:
        spec = self.specs.get(version.spec)
        conf = effective_app_config(self.app_defaults, version.conf)
        settings = ProxySettings(
            strip_path=spec.strip_path if conf.proxy.strip_path is None else conf.proxy.strip_path,
            preserve_host=spec.preserve_host
            if conf.proxy.preserve_host is None
            else conf.proxy.preserve_host,
            timeout_secs=conf.proxy.timeout_secs,
        )
        if spec.kind == "proxy":
            return StaticTarget(public, version.params["url"], settings, approved)
        plan = make_plan(version, spec, public, slot, self.instance_id, conf.container.health_url)
        idle = conf.container.idle_shutdown_secs
        if version.dev and not conf.container.idle_shutdown_dev_apps:
            idle = 0
        return ContainerTarget(self.runtime, plan, public, settings, approved, idle)

    def target(self, app_id: str, slot: str = "prod") -> Target | None:
        return self.targets.get((app_id, slot))

    def _rebuild_router(self) -> None:
        self.router = Router((t.app_path, t) for t in self.targets.values())

    # -- changing what is served -----------------------------------------

    async def prepare(
        self,
        view: AppView,
        slots: Iterable[str] = SLOTS,
        on_line: Callable[[str], None] | None = None,
    ) -> list[Swap]:
        """Targets for `view`; where the current one runs, the new one is started first.

        Raises UserError (and leaves everything as it was) if a new target fails to start.
        """
        swaps: list[Swap] = []
        for slot in slots:
            key = (view.app.id, slot)
            new, old = self.make_target(view, slot), self.targets.get(key)
            if old is not None and _same_target(old, new):
                old.approved = new.approved
                continue
            swap = Swap(key, new, old)
            swaps.append(swap)
            if not (
                isinstance(new, ContainerTarget)
                and isinstance(old, ContainerTarget)
                and old.state is State.RUNNING
            ):
                continue
            if new.container == old.container and old.upstream_port is not None:
                new.adopt(old.upstream_port)
                swap.keep_container = True
                continue
            try:
                await new.ensure_running(on_line)
            except AppUnavailable as exc:
                await asyncio.gather(
                    *(s.new.shutdown(remove=True) for s in swaps if not s.keep_container)
                )
                serving = "production" if slot == "prod" else "staging"
                raise UserError(
                    f"{view.app.path}: the new version failed to start: "
                    f"{exc.reason}; {serving} still serves the previous version"
                ) from None
        return swaps

    def commit(self, swaps: list[Swap]) -> None:
        """Switch traffic to the prepared targets; old ones drain and go in the background."""
        if not swaps:
            return
        for swap in swaps:
            self.targets[swap.key] = swap.new
        self._rebuild_router()
        for swap in swaps:
            if swap.old is not None:
                task = asyncio.ensure_future(self._retire(swap))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)

    async def _retire(self, swap: Swap) -> None:
        assert swap.old is not None
        await swap.old.retire(self.runtime.config.drain_timeout_secs, not swap.keep_container)
        try:
            await self.prune_images(swap.key[0])
        except EngineError as exc:
            log.warning("pruning old images failed: %s", exc)

    async def prune_images(self, app_id: str) -> None:
        """Remove the app's images except those of its last `keep_images` versions and of
        what production and staging run (a revert to those needs no rebuild)."""
        engine = self.runtime.engine
        view = next((v for v in self.store.list_apps() if v.app.id == app_id), None)
        if engine is None or view is None:
            return
        wanted = {
            t.plan.image
            for slot in SLOTS
            if isinstance(t := self.targets.get((app_id, slot)), ContainerTarget)
        }
        if not view.prod.dev:
            recent = self.store.list_versions(app_id)[-self.runtime.config.keep_images :]
            for version in recent:
                spec = self.specs.get(version.spec)
                if spec.kind == "build":
                    with contextlib.suppress(UserError):
                        plan = make_plan(
                            version, spec, view.app.path, "prod", self.instance_id, None
                        )
                        wanted.add(plan.image)
        for image in await engine.list_images(f"{LABEL_PREFIX}app_id={app_id}"):
            if image not in wanted:
                log.info("removing old image %s", image)
                await engine.remove_image(image)

    async def apply(self, view: AppView) -> None:
        """Serve an app as stored now, starting new versions of running targets first."""
        self.commit(await self.prepare(view))
        self._watch_if_dev(view)

    async def remove(self, app_ids: Iterable[str]) -> None:
        app_ids = list(app_ids)
        for app_id in app_ids:
            watcher = self._watchers.pop(app_id, None)
            if watcher is not None:
                await watcher.close()
        removed = [
            self.targets.pop((app_id, slot))
            for app_id in app_ids
            for slot in SLOTS
            if (app_id, slot) in self.targets
        ]
        self._rebuild_router()
        await asyncio.gather(*(t.shutdown(remove=True) for t in removed))

    # -- dev apps ---------------------------------------------------------

    def _watch_if_dev(self, view: AppView) -> None:
        if view.prod.dev and view.app.id not in self._watchers:
            self._watchers[view.app.id] = DevWatcher(
                Path(view.prod.source.location), lambda: self._dev_reload(view.app.id)
            )

    async def _dev_reload(self, app_id: str) -> None:
        """Rebuild a dev app from its live directory; switch once the new one is up."""
        view = next((v for v in self.store.list_apps() if v.app.id == app_id), None)
        if view is None:
            return
        try:
            swaps = await self.prepare(view, ("prod",))
        except UserError as exc:  # switch anyway: the next request shows the build error
            log.warning("dev rebuild failed: %s", exc)
            swaps = [
                Swap(
                    (app_id, "prod"),
                    self.make_target(view, "prod"),
                    self.targets.get((app_id, "prod")),
                )
            ]
        self.commit(swaps)

    # -- containers -------------------------------------------------------

    async def reconcile_containers(self) -> None:
        """Adopt our running containers that match a current target; remove all others."""
        engine = self.runtime.engine
        if engine is None:
            return
        by_name = {t.container: t for t in self.targets.values() if isinstance(t, ContainerTarget)}
        for info in await engine.list_containers(f"{LABEL_PREFIX}instance={self.instance_id}"):
            target = by_name.get(info.name)
            if target is None:
                log.info("removing orphan container %s", info.name)
                await engine.remove(info.name)
            elif info.running and (port := info.host_port(target.plan.run.port)):
                log.info("adopting running container %s for %s", info.name, target.app_path)
                target.adopt(port)

    async def shutdown(self) -> None:
        await asyncio.gather(*(w.close() for w in self._watchers.values()))
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(
            *(t.shutdown(remove=False) for t in self.targets.values()), return_exceptions=True
        )


def _same_target(old: Target, new: Target) -> bool:
    if isinstance(old, ContainerTarget) and isinstance(new, ContainerTarget):
        return (
            old.plan == new.plan and old.settings == new.settings and old.idle_secs == new.idle_secs
        )
    if isinstance(old, StaticTarget) and isinstance(new, StaticTarget):
        return old.info() == new.info() and old.settings == new.settings
    return False
