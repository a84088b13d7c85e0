"""What container targets share: their states, the runtime, readiness probes, exit logs."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from appyard.config import ContainerConfig
from appyard.runtime.engine import Engine
from appyard.secrets.resolver import SecretResolver


class State(enum.Enum):
    STOPPED = "stopped"
    BUILDING = "building"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


@dataclass
class Runtime:
    """What every container target shares: the engine, settings, and a health-check client."""

    engine: Engine | None
    config: ContainerConfig
    logs_dir: Path
    http: aiohttp.ClientSession
    secrets: SecretResolver


class StartFailed(Exception):
    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


async def probe(http: aiohttp.ClientSession, url: str) -> tuple[bool, str]:
    """One readiness/health check: healthy on 2xx/3xx; else what was seen."""
    try:
        async with http.get(
            url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=5)
        ) as resp:
            await resp.read()
            return 200 <= resp.status < 400, f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return False, type(exc).__name__


async def exited_log_tail(engine: Engine, container: str, lines: int = 30) -> str:
    """The last lines of an exited container (the engine may still be writing them)."""
    tail = ""
    for _ in range(10):
        tail = await engine.logs(container, lines)
        if tail.strip():
            break
        await asyncio.sleep(0.1)
    return tail
