"""What the proxy asks of an app instance: an upstream to send a request to.

A target is one running face of an app (production or staging). The proxy
calls `acquire()` before forwarding and `release()` when the exchange is over
(for streams and WebSockets: when they close), which is how lifecycle code
knows about activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from appyard.apps.paths import AppPath


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where to send requests; parsed once so the per-request paths only read fields."""

    base_url: str  # scheme://host:port, plus a base path for the proxy spec
    host: str  # Host header to send when the app does not preserve the client's
    addr: tuple[str, int] | None = None  # plain-HTTP (host, port) the fast path can dial
    base_path: bytes = b""  # path prefix of the URL ("" or "/base"), for the fast path

    @classmethod
    def for_url(cls, url: str) -> Upstream:
        from yarl import URL

        parsed = URL(url)
        plain = parsed.scheme == "http" and parsed.explicit_port is not None
        return cls(
            str(parsed).rstrip("/"),
            parsed.raw_authority,
            (parsed.raw_host or "", parsed.explicit_port) if plain else None,  # type: ignore[arg-type]
            parsed.raw_path.rstrip("/").encode(),
        )

    @classmethod
    def local(cls, port: int) -> Upstream:
        """A container's port published on loopback."""
        return cls(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", ("127.0.0.1", port))


class AppUnavailable(Exception):
    """The app cannot take the request now; the proxy answers with this status and reason."""

    def __init__(
        self, status: int, reason: str, log_tail: str = "", retry_after: int | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.log_tail = log_tail
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Per-instance proxy behaviour, resolved once from spec + app config."""

    strip_path: bool
    preserve_host: bool
    timeout_secs: float


class Target(Protocol):
    app_path: AppPath
    settings: ProxySettings
    approved: bool

    async def acquire(self) -> Upstream: ...

    def acquire_nowait(self) -> Upstream | None:
        """The upstream if it can be used right now (counted as acquired), else None."""

    def release(self) -> None: ...

    async def upstream_failed(self, exc: BaseException) -> bool:
        """Called when connecting upstream failed; True if a retry may now succeed."""

    def info(self) -> dict[str, Any]: ...

    async def shutdown(self, remove: bool) -> None:
        """Stop serving; `remove` also deletes containers (app deleted)."""

    async def retire(self, drain_secs: float, remove: bool) -> None:
        """Replaced by another version: drain open exchanges, then stop serving."""


class StaticTarget:
    """The proxy spec: a fixed upstream URL, nothing to start."""

    def __init__(
        self, app_path: AppPath, url: str, settings: ProxySettings, approved: bool
    ) -> None:
        self.app_path = app_path
        self.settings = settings
        self.approved = approved
        self._upstream = Upstream.for_url(url)

    async def acquire(self) -> Upstream:
        return self._upstream

    def acquire_nowait(self) -> Upstream | None:
        return self._upstream

    def release(self) -> None:
        return None

    async def upstream_failed(self, exc: BaseException) -> bool:
        return False

    def info(self) -> dict[str, Any]:
        return {"state": "proxy", "upstream": self._upstream.base_url}

    async def shutdown(self, remove: bool) -> None:
        return None

    async def retire(self, drain_secs: float, remove: bool) -> None:
        return None
