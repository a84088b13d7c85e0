"""Dev apps run from the live directory: a file change rebuilds and restarts the app.

Changes are debounced by watchfiles; the new build is started before traffic moves,
so a running dev app stays up while its next version builds. A failing build is still
switched to, so the developer sees the build error on the next request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import watchfiles

from appyard.apps.model import AppVersion
from appyard.apps.sources import tree_digest

log = logging.getLogger("appyard.devmode")

_IGNORED_DIRS = {".git", "__pycache__", ".venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def live_version(version: AppVersion) -> AppVersion:
    """The version with its source digest taken from the live directory now."""
    digest = tree_digest(Path(version.source.location))
    source = dataclasses.replace(version.source, digest=digest)
    return dataclasses.replace(version, source=source)


def _relevant(change: watchfiles.Change, path: str) -> bool:
    return not any(part in _IGNORED_DIRS for part in Path(path).parts)


class DevWatcher:
    """Watches one dev app's directory and calls `on_change` after each burst of edits."""

    def __init__(self, directory: Path, on_change: Callable[[], Awaitable[None]]) -> None:
        self.directory = directory
        self.on_change = on_change
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for _changes in watchfiles.awatch(
                self.directory, watch_filter=_relevant, debounce=400, step=50, stop_event=self._stop
            ):
                log.info("dev app source %s changed; rebuilding", self.directory)
                try:
                    await self.on_change()
                except Exception:
                    log.exception("dev reload of %s failed", self.directory)
        except FileNotFoundError:
            log.warning("dev app directory %s is gone; not watching", self.directory)

    async def close(self) -> None:
        self._stop.set()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
