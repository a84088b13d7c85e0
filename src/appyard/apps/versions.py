"""Staged changes, promotion, version switches and approval.

Every change makes a new immutable version and points staging at it; `promote`
(or `--promote`) points production at the staged version. Production moves only
after its new target is up and healthy (see AppManager.prepare), and the store is
written only after that, so a failed start changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from appyard.apps.approval import check_options, grant, missing
from appyard.apps.manager import AppManager
from appyard.apps.model import App, AppVersion, AppView
from appyard.apps.ops import check_value, find_app, parse_options, select_apps
from appyard.apps.plan import make_plan
from appyard.apps.sources import snapshot
from appyard.config import parse_conf_overrides
from appyard.errors import NotFound, UserError
from appyard.home import Home

Kind = Literal["param", "carg", "copt", "spec", "conf"]
DELETE = "-"


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    kind: Kind
    key: str
    value: str | None = None
    promote: bool = False
    dry_run: bool = False


def _changed(
    version: AppVersion, kind: Kind, key: str, value: str | None, manager: AppManager
) -> tuple[AppVersion, str]:
    """The staged version with one change applied, and a line saying what changed."""
    delete = value == DELETE
    if kind == "spec":
        spec = manager.specs.get(key)
        params = spec.validate_params(dict(version.params))
        return dataclasses.replace(
            version, spec=spec.name, params=params
        ), f"spec: {version.spec} -> {spec.name}"
    if kind == "conf":
        conf = {s: dict(v) for s, v in version.conf.items()}
        section, _, name = key.partition(".")
        if delete:
            conf.get(section, {}).pop(name, None)
            conf = {s: v for s, v in conf.items() if v}
        else:
            override = parse_conf_overrides([f"{key}={value}"])
            conf.setdefault(section, {}).update(override[section])
        return dataclasses.replace(version, conf=conf), _line(
            "conf", key, version.conf.get(section, {}).get(name), None if delete else value
        )
    field = {"param": "params", "carg": "build_args", "copt": "container_opts"}[kind]
    current: dict[str, Any] = dict(getattr(version, field))
    old = current.get(key)
    if delete:
        if key not in current:
            raise UserError(f"{kind} {key} is not set")
        del current[key]
    elif kind == "copt":
        current.update(parse_options([key if value is None else f"{key}={value}"]))
        check_options(current, manager.runtime.config)
    else:
        current[key] = check_value(f"--{kind}", key, value or "")
    changed = dataclasses.replace(version, **{field: current})
    if kind == "param":
        manager.specs.get(version.spec).validate_params(changed.params)
    return changed, _line(kind, key, old, None if delete else (value or ""))


def _line(kind: str, key: str, old: Any, new: Any) -> str:
    show = lambda v: "(unset)" if v is None else repr(v)  # noqa: E731
    return f"{kind} {key}: {show(old)} -> {show(new)}"


def _validate(manager: AppManager, view: AppView, version: AppVersion) -> None:
    spec = manager.specs.get(version.spec)
    if spec.kind != "proxy":
        make_plan(version, spec, view.app.path, "stage", manager.instance_id, None)


def _result(view: AppView, changes: list[str], **extra: Any) -> dict[str, Any]:
    return {"path": str(view.app.path), "changes": changes, **extra}


async def update(
    manager: AppManager, req: UpdateRequest, on_line: Callable[[str], None] | None = None
) -> dict[str, Any]:
    async with manager.lock:
        view = find_app(manager, req.path)
        staged, line = _changed(view.stage, req.kind, req.key, req.value, manager)
        if _same_content(staged, view.stage):
            return _result(view, [], note="no change")
        return await _stage(manager, view, staged, [line], req.promote, req.dry_run, on_line)


async def _stage(
    manager: AppManager,
    view: AppView,
    staged: AppVersion,
    changes: list[str],
    promote: bool,
    dry_run: bool,
    on_line: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Store `staged` as a new version for staging (and production with `promote`)."""
    number = manager.store.next_version(view.app.id)
    staged = dataclasses.replace(
        staged, version=number, created_at=time.time(), note="; ".join(changes)
    )
    _validate(manager, view, staged)
    if promote:
        _check_approved(view.app, staged)
    where = "staging and production" if promote else "staging"
    if dry_run:
        return _result(view, changes, version=number, applies_to=where, dry_run=True)
    new_app = dataclasses.replace(
        view.app, stage_version=number, prod_version=number if promote else view.app.prod_version
    )
    new_view = AppView(new_app, staged if promote else view.prod, staged)
    swaps = await manager.prepare(new_view, on_line=on_line)
    manager.store.add_version(staged, stage=True, prod=promote)
    manager.commit(swaps)
    return _result(view, changes, version=number, applies_to=where)


def _check_approved(app: App, version: AppVersion) -> None:
    needed = missing(version, app.approval)
    if needed:
        raise UserError(
            f"{app.path}: version {version.version} needs approval for "
            f"{', '.join(needed)}; run: appyard app approve {app.path}"
        )


def _same_content(a: AppVersion, b: AppVersion) -> bool:
    strip = {"version": 0, "created_at": 0.0, "note": ""}
    return dataclasses.replace(a, **strip) == dataclasses.replace(b, **strip)


async def _move_prod(
    manager: AppManager,
    view: AppView,
    target: AppVersion,
    dry_run: bool,
    on_line: Callable[[str], None] | None,
    what: str,
) -> dict[str, Any]:
    """Point production at another version, switching traffic only once it is healthy."""
    line = f"production: version {view.app.prod_version} -> {target.version}"
    if target.version == view.app.prod_version:
        return _result(view, [], note=f"production already runs version {target.version}")
    _check_approved(view.app, target)
    if dry_run:
        return _result(view, [line], dry_run=True, action=what)
    new_view = AppView(
        dataclasses.replace(view.app, prod_version=target.version), target, view.stage
    )
    swaps = await manager.prepare(new_view, ("prod",), on_line)
    manager.store.set_versions(view.app.id, prod=target.version)
    manager.commit(swaps)
    return _result(view, [line], action=what)


async def promote(
    manager: AppManager, glob: str, dry_run: bool, on_line: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    async with manager.lock:
        views = select_apps(manager, glob)
        if not views:
            raise NotFound(f"no app matches {glob}")
        return [await _move_prod(manager, v, v.stage, dry_run, on_line, "promote") for v in views]


async def switch(
    manager: AppManager,
    path: str,
    version: str,
    dry_run: bool,
    on_line: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`version` is a number, or `previous` (revert: the version before production's)."""
    async with manager.lock:
        view = find_app(manager, path)
        versions = manager.store.list_versions(view.app.id)
        if version == "previous":
            earlier = [v for v in versions if v.version < view.app.prod_version]
            if not earlier:
                raise UserError(
                    f"{view.app.path}: no version before {view.app.prod_version} to revert to"
                )
            target = earlier[-1]
        else:
            if not version.isdigit():
                raise UserError(f"version must be a number, got {version!r}")
            found = [v for v in versions if v.version == int(version)]
            if not found:
                raise NotFound(f"{view.app.path} has no version {version}")
            target = found[0]
        return await _move_prod(
            manager, view, target, dry_run, on_line, "revert" if version == "previous" else "switch"
        )


async def approve(manager: AppManager, path: str, dry_run: bool) -> dict[str, Any]:
    async with manager.lock:
        view = find_app(manager, path)
        needed = sorted(
            set(missing(view.prod, view.app.approval)) | set(missing(view.stage, view.app.approval))
        )
        if dry_run or not needed:
            return _result(view, [f"approve {n}" for n in needed], dry_run=dry_run)
        approval = grant(view.app.approval, view.prod, view.stage)
        manager.store.set_approval(view.app.id, approval)
        await manager.apply(manager.store.get_app(view.app.path))  # type: ignore[arg-type]
        return _result(view, [f"approve {n}" for n in needed])


async def reload(
    manager: AppManager,
    home: Home,
    glob: str,
    promote: bool,
    dry_run: bool,
    on_line: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Fetch each app's source again; a changed source becomes a new staged version."""
    async with manager.lock:
        views = select_apps(manager, glob)
        if not views:
            raise NotFound(f"no app matches {glob}")
        results = []
        for view in views:
            source = view.stage.source
            if source.kind == "none" or view.stage.dev:
                results.append(_result(view, [], note="source not re-fetched"))
                continue
            number = manager.store.next_version(view.app.id)
            fresh_source = dataclasses.replace(source, snapshot="", digest="", commit="")
            dest = home.sources_dir / view.app.id / f"v{number}"
            fetched = await asyncio.to_thread(snapshot, fresh_source, dest)
            if fetched.digest == source.digest:
                await asyncio.to_thread(shutil.rmtree, dest, True)
                results.append(_result(view, [], note="source unchanged"))
                continue
            line = f"source: {source.describe()} -> {fetched.describe()}"
            staged = dataclasses.replace(view.stage, source=fetched)
            try:
                results.append(
                    await _stage(manager, view, staged, [line], promote, dry_run, on_line)
                )
            finally:
                if dry_run:
                    await asyncio.to_thread(shutil.rmtree, dest, True)
        return results


def version_rows(manager: AppManager, path: str) -> list[dict[str, Any]]:
    view = find_app(manager, path)
    rows = []
    for v in manager.store.list_versions(view.app.id):
        marks = [
            m
            for m, n in (("prod", view.app.prod_version), ("stage", view.app.stage_version))
            if n == v.version
        ]
        rows.append(
            {
                "version": v.version,
                "serving": ",".join(marks),
                "spec": v.spec,
                "source": v.source.describe(),
                "created_at": v.created_at,
                "note": v.note or "created",
            }
        )
    return rows


def param_rows(manager: AppManager, path: str) -> list[dict[str, Any]]:
    view = find_app(manager, path)
    names = sorted(set(view.prod.params) | set(view.stage.params))
    return [
        {
            "name": n,
            "prod": view.prod.params.get(n),
            "staged": view.stage.params.get(n),
            "differs": view.prod.params.get(n) != view.stage.params.get(n),
        }
        for n in names
    ]
