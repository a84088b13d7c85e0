"""App operations as the admin API offers them: validate everything, then change the store once.

Each operation checks all of its input before it writes anything, so a bad
request changes nothing; the store write is a single transaction.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from appyard.apps.approval import check_options, grant, missing
from appyard.apps.manager import AppManager
from appyard.apps.model import App, AppVersion, AppView, Source
from appyard.apps.paths import glob_matches, parse_app_path, validate_glob
from appyard.apps.plan import app_containerfile, make_plan
from appyard.apps.sources import describe_source, snapshot, tree_digest
from appyard.config import parse_conf_overrides
from appyard.errors import Conflict, NotFound, UserError
from appyard.home import Home
from appyard.runtime.engine import LABEL_PREFIX
from appyard.secrets.refs import parse as parse_refs
from appyard.specs import Spec

log = logging.getLogger("appyard.ops")


class CreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    source: str = "-"
    spec: str | None = None
    approve: bool = False
    dev: bool = False
    branch: str = ""
    commit: str = ""
    params: list[str] = []
    conf: list[str] = []
    cargs: list[str] = []
    copts: list[str] = []


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {item!r} must be KEY=VALUE")
        out[key.strip()] = check_value(flag, key.strip(), value)
    return out


def check_value(flag: str, key: str, value: str) -> str:
    """Env-safe, single-line values whose secret references parse."""
    if not key.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise UserError(f"{flag} name {key!r} may only use letters, digits, _ . -")
    if any(c in value for c in "\n\r\0"):
        raise UserError(f"{flag} {key}: value must be a single line")
    try:
        parse_refs(value)
    except UserError as exc:
        raise UserError(f"{flag} {key}: {exc}") from None
    return value


def parse_options(items: list[str]) -> dict[str, str | None]:
    """`--copt cpu-shares=1000` or a flag such as `--copt read-only`."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key or not all(c.isalnum() or c in "-_." for c in key):
            raise UserError(f"--copt {item!r} must be NAME or NAME=VALUE (e.g. cpu-shares=1000)")
        out[key] = value if sep else None
    return out


def _pick_spec(manager: AppManager, name: str | None, source: Source) -> Spec:
    if name:
        return manager.specs.get(name)
    if source.kind == "dir" and app_containerfile(Path(source.location)):
        return manager.specs.get("container")
    known = ", ".join(s.name for s in manager.specs.all())
    raise UserError(f"pass --spec NAME (one of: {known})")


async def create_app(manager: AppManager, home: Home, req: CreateRequest) -> AppView:
    app_path = parse_app_path(req.path)
    source = describe_source(req.source, req.branch, req.commit)
    spec = _pick_spec(manager, req.spec, source)
    if spec.needs_source and source.kind == "none":
        raise UserError(f"spec {spec.name} needs a source: a directory or a git URL")
    if not spec.needs_source and source.kind != "none":
        raise UserError(f"spec {spec.name} takes no source; use - as the source")
    if req.dev and source.kind != "dir":
        raise UserError("--dev needs a local source directory")
    params = spec.validate_params(parse_pairs(req.params, "--param"))
    build_args = spec.validate_build_args(parse_pairs(req.cargs, "--carg"))
    options = parse_options(req.copts)
    check_options(options, manager.runtime.config)
    conf = parse_conf_overrides(req.conf)
    if manager.store.get_app(app_path) is not None:
        raise Conflict(f"app {app_path} already exists")

    app_id = "app" + secrets.token_hex(5)
    snap_dir = home.sources_dir / app_id / "v1"
    try:
        if req.dev:
            source = Source(
                kind="dir",
                location=source.location,
                snapshot=source.location,
                digest=await asyncio.to_thread(tree_digest, Path(source.location)),
            )
        else:
            source = await asyncio.to_thread(snapshot, source, snap_dir)
        now = time.time()
        version = AppVersion(
            app_id=app_id,
            version=1,
            spec=spec.name,
            source=source,
            params=params,
            build_args=build_args,
            container_opts=options,
            conf=conf,
            dev=req.dev,
            created_at=now,
        )
        if spec.kind != "proxy":  # refuse now what would only fail at the first request
            make_plan(version, spec, app_path, "prod", manager.instance_id, None)
        app = App(
            id=app_id,
            path=app_path,
            prod_version=1,
            stage_version=1,
            approval=grant(None, version) if req.approve else None,
            created_at=now,
            updated_at=now,
        )
        async with manager.lock:
            manager.store.create_app(app, version)
    except BaseException:
        shutil.rmtree(home.sources_dir / app_id, ignore_errors=True)
        raise
    view = AppView(app, version, version)
    await manager.apply(view)
    log.info("created app %s (%s, spec %s)", app_path, app_id, spec.name)
    return view


def select_apps(manager: AppManager, glob: str) -> list[AppView]:
    glob = validate_glob(glob)
    return [v for v in manager.store.list_apps() if glob_matches(glob, v.app.path)]


def find_app(manager: AppManager, raw_path: str) -> AppView:
    view = manager.store.get_app(parse_app_path(raw_path))
    if view is None:
        raise NotFound(f"no app at {raw_path}")
    return view


async def delete_apps(manager: AppManager, home: Home, glob: str) -> list[AppView]:
    views = select_apps(manager, glob)
    if not views:
        raise NotFound(f"no app matches {glob}")
    ids = [v.app.id for v in views]
    async with manager.lock:
        manager.store.delete_apps(ids)
    await manager.remove(ids)
    for app_id in ids:
        shutil.rmtree(home.sources_dir / app_id, ignore_errors=True)
        shutil.rmtree(home.logs_dir / app_id, ignore_errors=True)
    engine = manager.runtime.engine
    if engine is not None:
        for app_id in ids:
            for image in await engine.list_images(f"{LABEL_PREFIX}app_id={app_id}"):
                await engine.remove_image(image)
    return views


def app_summary(manager: AppManager, view: AppView) -> dict[str, Any]:
    """What `app list` shows for an app."""
    prod = manager.target(view.app.id, "prod")
    stage = manager.target(view.app.id, "stage")
    info = prod.info() if prod else {"state": "error"}
    return {
        "id": view.app.id,
        "path": str(view.app.path),
        "spec": view.prod.spec,
        "source": view.prod.source.describe(),
        "commit": view.prod.source.commit,
        "approved": not missing(view.prod, view.app.approval),
        "stage_approved": not missing(view.stage, view.app.approval),
        "dev": view.prod.dev,
        "version": view.app.prod_version,
        "stage_version": view.app.stage_version,
        "state": info.get("state"),
        "image": info.get("image", ""),
        "last_start_secs": info.get("last_start_secs"),
        "last_error": info.get("last_error", ""),
        "stage_state": stage.info().get("state") if stage else None,
        "params": view.prod.params,
        "created_at": view.app.created_at,
    }
