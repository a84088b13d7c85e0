"""Find the app instance that serves a request: by Host, then longest path prefix.

Lookup costs one dict probe for the host and at most `depth` dict probes for
the path (depth = deepest app path), however many apps exist. The router is
immutable; the manager builds a new one on every change and swaps it in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from appyard.apps.paths import AppPath

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    target: T
    prefix: str  # the app path that matched ("/" for root apps)


class _PathTable(Generic[T]):
    __slots__ = ("depth", "paths")

    def __init__(self) -> None:
        self.paths: dict[str, T] = {}
        self.depth = 0

    def add(self, path: str, target: T) -> None:
        self.paths[path] = target
        if path != "/":
            self.depth = max(self.depth, path.count("/"))

    def lookup(self, path: str) -> Match[T] | None:
        paths = self.paths
        # Cut the request path to the deepest registered depth, then walk up.
        if path.count("/") > self.depth:
            cut = 0
            for _ in range(self.depth + 1):
                cut = path.find("/", cut + 1)
                if cut < 0:
                    break
            if cut > 0:
                path = path[:cut]
        while True:
            target = paths.get(path)
            if target is not None:
                return Match(target, path)
            if path == "/" or not path:
                return None
            path = path[: path.rfind("/")] or "/"


class Router(Generic[T]):
    def __init__(self, routes: Iterable[tuple[AppPath, T]] = ()) -> None:
        self._domains: dict[str, _PathTable[T]] = {}
        self._default: _PathTable[T] = _PathTable()
        for app_path, target in routes:
            if app_path.domain:
                table = self._domains.setdefault(app_path.domain, _PathTable())
            else:
                table = self._default
            table.add(app_path.path, target)

    def lookup(self, host: str, path: str) -> Match[T] | None:
        """`host` as sent (port and case ignored); apps without a domain take unclaimed hosts."""
        if self._domains:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            table = self._domains.get(name.lower())
            if table is not None:
                return table.lookup(path)
        return self._default.lookup(path)
