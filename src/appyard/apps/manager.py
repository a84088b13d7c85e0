"""The app manager: owns the live targets for every app and the router that finds them.

It loads apps from the store at start, adopts the containers this appyard
already runs, and rebuilds the (immutable) router whenever apps change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

from appyard.apps.devmode import DevWatcher, live_version
from appyard.apps.lifecycle import ContainerTarget, Runtime, State
from appyard.apps.model import AppVersion, AppView
from appyard.apps.paths import AppPath
from appyard.apps.plan import make_plan
from appyard.apps.target import AppUnavailable, ProxySettings, StaticTarget, Target
from appyard.config import AppConfig, effective_app_config
from appyard.errors import UserError
from appyard.runtime.engine import LABEL_PREFIX
from appyard.server.router import Router
from appyard.specs import SpecRegistry
from appyard.store import Store

log = logging.getLogger("appyard.manager")

SLOTS = ("prod", "stage")


class AppManager:
    def __init__(self, store: Store, specs: SpecRegistry, app_defaults: AppConfig,
                 runtime: Runtime, instance_id: str) -> None:
        self.store = store
        self.specs = specs
        self.app_defaults = app_defaults
        self.runtime = runtime
        self.instance_id = instance_id
        self.targets: dict[tuple[str, str], Target] = {}
        self.router: Router[Target] = Router()
        self.lock = asyncio.Lock()  # serializes admin changes
        self._watchers: dict[str, DevWatcher] = {}

    async def load(self) -> None:
        for view in self.store.list_apps():
            try:
                self._install(view)
                self._watch_if_dev(view)
            except UserError as exc:
                log.error("app %s cannot be served: %s", view.app.path, exc)
        self._rebuild_router()
        await self.reconcile_containers()

    def make_target(self, view: AppView, slot: str) -> Target:
        version = view.prod if slot == "prod" else view.stage
        if version.dev:
            version = live_version(version)
        public = view.app.path if slot == "prod" else view.app.path.stage
        return self._target_for(version, public, slot, view.app.approved)

    def _target_for(self, version: AppVersion, public: AppPath, slot: str,
                    approved: bool) -> Target:
        spec = self.specs.get(version.spec)
        conf = effective_app_config(self.app_defaults, version.conf)
        settings = ProxySettings(
            strip_path=spec.strip_path if conf.proxy.strip_path is None
            else conf.proxy.strip_path,
            preserve_host=spec.preserve_host if conf.proxy.preserve_host is None
            else conf.proxy.preserve_host,
            timeout_secs=conf.proxy.timeout_secs)
        if spec.kind == "proxy":
            return StaticTarget(public, version.params["url"], settings, approved)
        plan = make_plan(version, spec, public, slot, self.instance_id,
                         conf.container.health_url)
        idle = conf.container.idle_shutdown_secs
        if version.dev and not conf.container.idle_shutdown_dev_apps:
            idle = 0
        return ContainerTarget(self.runtime, plan, public, settings, approved, idle)

    def _install(self, view: AppView) -> list[Target]:
        """Create targets for an app's slots; returns the targets they replace."""
        replaced = []
        for slot in SLOTS:
            new = self.make_target(view, slot)
            old = self.targets.get((view.app.id, slot))
            if old is not None and _same_target(old, new):
                old.approved = new.approved
                continue
            self.targets[(view.app.id, slot)] = new
            if old is not None:
                replaced.append(old)
        return replaced

    def _rebuild_router(self) -> None:
        self.router = Router((t.app_path, t) for t in self.targets.values())

    async def apply(self, view: AppView) -> None:
        """Serve an app as stored now (after create or update)."""
        replaced = self._install(view)
        self._rebuild_router()
        self._watch_if_dev(view)
        await asyncio.gather(*(t.shutdown(remove=True) for t in replaced))

    def _watch_if_dev(self, view: AppView) -> None:
        if view.prod.dev and view.app.id not in self._watchers:
            self._watchers[view.app.id] = DevWatcher(
                Path(view.prod.source.location), lambda: self._dev_reload(view.app.id))

    async def _dev_reload(self, app_id: str) -> None:
        """Rebuild a dev app from its live directory; switch once the new one is up."""
        view = next((v for v in self.store.list_apps() if v.app.id == app_id), None)
        if view is None:
            return
        old = self.targets.get((app_id, "prod"))
        new = self.make_target(view, "prod")
        if old is not None and _same_target(old, new):
            return
        if isinstance(new, ContainerTarget) and isinstance(old, ContainerTarget) \
                and old.state is State.RUNNING:
            try:
                await new.ensure_running()
            except AppUnavailable as exc:  # switch anyway: the next request shows the error
                log.warning("dev rebuild of %s failed: %s", view.app.path, exc)
        self.targets[(app_id, "prod")] = new
        self._rebuild_router()
        if old is not None:
            await old.shutdown(remove=True)

    async def remove(self, app_ids: Iterable[str]) -> None:
        for app_id in app_ids:
            watcher = self._watchers.pop(app_id, None)
            if watcher is not None:
                await watcher.close()
        removed = [self.targets.pop((app_id, slot)) for app_id in app_ids for slot in SLOTS
                   if (app_id, slot) in self.targets]
        self._rebuild_router()
        await asyncio.gather(*(t.shutdown(remove=True) for t in removed))

    def target(self, app_id: str, slot: str = "prod") -> Target | None:
        return self.targets.get((app_id, slot))

    async def reconcile_containers(self) -> None:
        """Adopt our running containers that match a current target; remove all others."""
        engine = self.runtime.engine
        if engine is None:
            return
        by_name = {t.container: t for t in self.targets.values()
                   if isinstance(t, ContainerTarget)}
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
        await asyncio.gather(*(t.shutdown(remove=False) for t in self.targets.values()),
                             return_exceptions=True)


def _same_target(old: Target, new: Target) -> bool:
    if isinstance(old, ContainerTarget) and isinstance(new, ContainerTarget):
        return (old.plan == new.plan and old.settings == new.settings
                and old.idle_secs == new.idle_secs)
    if isinstance(old, StaticTarget) and isinstance(new, StaticTarget):
        return old.info() == new.info() and old.settings == new.settings
    return False
