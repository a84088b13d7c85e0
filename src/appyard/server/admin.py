"""The admin API: JSON over HTTP on a Unix socket (mode 0600). The CLI's only way in.

Errors are `{"error": "<one line>"}` with a 4xx status; long operations
(build, start, promote) stream newline-delimited JSON: `{"line": ...}` progress
records, then one `{"result": ...}` or `{"error": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from appyard.apps import ops, versions
from appyard.apps.lifecycle import ContainerTarget
from appyard.apps.manager import AppManager
from appyard.apps.target import AppUnavailable
from appyard.config import ServerConfig, config_as_toml, describe_validation_error
from appyard.errors import UserError
from appyard.home import Home

log = logging.getLogger("appyard.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OnLine = Callable[[str], None]
M = TypeVar("M", bound=BaseModel)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserError as exc:
        return _json({"error": str(exc)}, exc.status)
    except web.HTTPException:
        raise
    except Exception as exc:  # a bug: log it, give the user one line
        log.exception("admin %s %s failed", request.method, request.path)
        return _json({"error": f"internal error: {exc!r}; see the server log"}, 500)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise UserError("request body must be JSON") from None
    if not isinstance(data, dict):
        raise UserError("request body must be a JSON object")
    return data


def _model(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"bad request: {describe_validation_error(exc)}") from None


async def _stream(
    request: web.Request, work: Callable[[OnLine], Awaitable[dict[str, Any]]]
) -> web.StreamResponse:
    """Run `work`, streaming its progress lines as NDJSON, then its result or error."""
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    queue: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.ensure_future(work(queue.put_nowait))
    while not task.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            await resp.write(json.dumps({"line": getter.result()}).encode() + b"\n")
        else:
            getter.cancel()
    try:
        final: dict[str, Any] = {"result": task.result()}
    except UserError as exc:
        final = {"error": str(exc)}
    except Exception as exc:
        log.exception("admin %s failed", request.path)
        final = {"error": f"internal error: {exc!r}; see the server log"}
    await resp.write(json.dumps(final, default=str).encode() + b"\n")
    await resp.write_eof()
    return resp


class AdminAPI:
    def __init__(
        self, manager: AppManager, home: Home, config: ServerConfig, stop: asyncio.Event
    ) -> None:
        self.manager = manager
        self.home = home
        self.config = config
        self.stop = stop

    def app(self) -> web.Application:
        app = web.Application(middlewares=[errors_as_json])
        app.add_routes(
            [
                web.get("/v1/apps", self.list_apps),
                web.post("/v1/apps", self.create_app),
                web.delete("/v1/apps", self.delete_apps),
                web.post("/v1/apps/reload", self.reload_apps),
                web.post("/v1/apps/update", self.update_app),
                web.post("/v1/apps/promote", self.promote_apps),
                web.post("/v1/apps/switch", self.switch_version),
                web.post("/v1/apps/approve", self.approve_app),
                web.get("/v1/apps/versions", self.list_versions),
                web.get("/v1/apps/params", self.list_params),
                web.get("/v1/apps/logs", self.app_logs),
                web.get("/v1/specs", self.list_specs),
                web.get("/v1/config", self.show_config),
                web.post("/v1/server/stop", self.stop_server),
                web.get("/v1/health", self.health),
            ]
        )
        return app

    async def health(self, request: web.Request) -> web.Response:
        engine = self.manager.runtime.engine
        return _json({"ok": True, "engine": engine.name if engine else None})

    # -- apps -------------------------------------------------------------

    async def list_apps(self, request: web.Request) -> web.Response:
        views = ops.select_apps(self.manager, request.query.get("glob", "all"))
        return _json({"apps": [ops.app_summary(self.manager, v) for v in views]})

    async def create_app(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        wait = bool(data.pop("wait", False))
        view = await ops.create_app(self.manager, self.home, _model(ops.CreateRequest, data))
        if not wait:
            return _json({"app": ops.app_summary(self.manager, view)}, 201)

        async def start(on_line: OnLine) -> dict[str, Any]:
            await self._start([view.app.id], "prod", on_line)
            return {"app": ops.app_summary(self.manager, view)}

        return await _stream(request, start)

    async def delete_apps(self, request: web.Request) -> web.Response:
        views = await ops.delete_apps(self.manager, self.home, request.query.get("glob", ""))
        return _json({"deleted": [str(v.app.path) for v in views]})

    async def reload_apps(self, request: web.Request) -> web.StreamResponse:
        """Re-fetch sources (a change is staged, or promoted), then build and start now."""
        data = await _body(request)
        glob = str(data.get("glob", ""))
        promote, dry_run = bool(data.get("promote")), bool(data.get("dry_run"))
        restart = bool(data.get("restart"))

        async def work(on_line: OnLine) -> dict[str, Any]:
            changes = await versions.reload(
                self.manager, self.home, glob, promote, dry_run, on_line
            )
            if dry_run:
                return {"changes": changes}
            views = ops.select_apps(self.manager, glob)
            staged = [v.app.id for v in views if v.app.stage_version != v.app.prod_version]
            await self._start(
                [v.app.id for v in views if v.app.id not in staged], "prod", on_line, restart
            )
            await self._start(staged, "stage", on_line, restart)
            return {"changes": changes, "apps": [ops.app_summary(self.manager, v) for v in views]}

        return await _stream(request, work)

    async def _start(
        self, app_ids: list[str], slot: str, on_line: OnLine, restart: bool = False
    ) -> None:
        """Build and start these apps' targets now (`restart`: with fresh containers)."""
        errors = []
        for app_id in app_ids:
            target = self.manager.target(app_id, slot)
            if not isinstance(target, ContainerTarget):
                continue
            try:
                await (target.restart(on_line) if restart else target.ensure_running(on_line))
            except AppUnavailable as exc:
                if exc.log_tail:
                    on_line(exc.log_tail)
                errors.append(f"{target.app_path}: {exc.reason}")
        if errors:
            raise UserError("; ".join(errors))

    # -- versions ---------------------------------------------------------

    async def update_app(self, request: web.Request) -> web.StreamResponse:
        req = _model(versions.UpdateRequest, await _body(request))
        return await _stream(request, lambda on_line: versions.update(self.manager, req, on_line))

    async def promote_apps(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)

        async def work(on_line: OnLine) -> dict[str, Any]:
            return {
                "apps": await versions.promote(
                    self.manager, str(data.get("glob", "")), bool(data.get("dry_run")), on_line
                )
            }

        return await _stream(request, work)

    async def switch_version(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return await _stream(
            request,
            lambda on_line: versions.switch(
                self.manager,
                str(data.get("path", "")),
                str(data.get("version", "")),
                bool(data.get("dry_run")),
                on_line,
            ),
        )

    async def approve_app(self, request: web.Request) -> web.Response:
        data = await _body(request)
        return _json(
            await versions.approve(
                self.manager, str(data.get("path", "")), bool(data.get("dry_run"))
            )
        )

    async def list_versions(self, request: web.Request) -> web.Response:
        return _json(
            {"versions": versions.version_rows(self.manager, request.query.get("path", ""))}
        )

    async def list_params(self, request: web.Request) -> web.Response:
        return _json({"params": versions.param_rows(self.manager, request.query.get("path", ""))})

    # -- logs, specs, config, server -------------------------------------

    async def app_logs(self, request: web.Request) -> web.StreamResponse:
        view = ops.find_app(self.manager, request.query.get("path", ""))
        try:
            lines = int(request.query.get("lines", "100"))
        except ValueError:
            raise UserError("--lines must be a number") from None
        target = self.manager.target(view.app.id)
        if not isinstance(target, ContainerTarget):
            raise UserError(f"app {view.app.path} runs no container, so it has no logs")
        engine = self.manager.runtime.engine
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        build_log = target.build_log()
        if build_log:
            tail = "\n".join(build_log.splitlines()[-lines:])
            await resp.write(f"==> last build log\n{tail}\n".encode())
        exit_log = target.exit_log()
        if exit_log:
            await resp.write(f"==> last exited container\n{exit_log.rstrip()}\n".encode())
        if engine is not None:
            await resp.write(b"==> container log\n")
            if request.query.get("follow") == "1":
                async for chunk in engine.follow_logs(target.container, lines):
                    await resp.write(chunk)
            else:
                await resp.write((await engine.logs(target.container, lines)).encode())
        await resp.write_eof()
        return resp

    async def list_specs(self, request: web.Request) -> web.Response:
        specs = [
            {
                "name": s.name,
                "kind": s.kind,
                "description": s.description,
                "path_routing": s.path_routing,
                "params": {k: p.model_dump() for k, p in s.params.items()},
                "build_args": {k: p.model_dump() for k, p in s.build_args.items()},
                "example": s.example,
                "notes": s.notes,
            }
            for s in self.manager.specs.all()
        ]
        return _json({"specs": specs})

    async def show_config(self, request: web.Request) -> web.Response:
        return _json({"toml": config_as_toml(self.config)})

    async def stop_server(self, request: web.Request) -> web.Response:
        self.stop.set()
        return _json({"stopping": True})
