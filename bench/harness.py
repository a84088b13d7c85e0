"""Shared pieces for the benchmarks: servers, wrk, nginx, timing, memory."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.support.server import AppyardServer, free_port, wait_port

BENCH = Path(__file__).resolve().parent
ENGINE = "podman"


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def as_dict(self) -> dict[str, float]:
        return {
            "rps": round(self.rps),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
        }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, connections: int, seconds: int = 8, host: str | None = None) -> WrkResult:
    threads = 1 if connections == 1 else 2
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", url]
    if host:
        cmd[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(rps, p50, p99, errors + (int(non2xx.group(1)) if non2xx else 0))


class Nginx:
    """nginx as a reverse proxy to one upstream, configured for keep-alive like appyard."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="appyard-bench-nginx-"))
        (self.dir / "logs").mkdir()
        (self.dir / "nginx.conf").write_text(f"""
worker_processes auto;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream backend {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering off;
    }}
  }}
}}
""")
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return kb / 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def container_names(home: Path, running_only: bool = False) -> list[str]:
    from appyard.home import Home

    args = [
        ENGINE,
        "ps",
        "--filter",
        f"label=dev.appyard.instance={Home(home.resolve()).instance_id}",
        "--format",
        "{{.Names}}",
    ]
    if not running_only:
        args.insert(2, "-a")
    return subprocess.run(args, capture_output=True, text=True).stdout.split()


def host_port(container: str, port: int) -> int:
    out = subprocess.run(
        [ENGINE, "port", container, f"{port}/tcp"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.strip().splitlines()[0].rsplit(":", 1)[1])


async def time_to_first_byte(url: str, timeout: float = 120) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.get(url) as r:
            await r.content.readany()
            if r.status != 200:
                raise RuntimeError(f"{url}: HTTP {r.status}: {await r.text()}")
    return time.perf_counter() - started


async def wait_until(predicate, timeout: float, step: float = 0.02) -> float:  # type: ignore[no-untyped-def]
    """Poll until `predicate()` is true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        await asyncio.sleep(step)
    raise TimeoutError("condition not reached")


def start_server(home: Path, extra_config: str = "") -> AppyardServer:
    return AppyardServer(home, ENGINE, extra_config).start(timeout=120)


def create_go_app(server: AppyardServer, path: str, *extra: str) -> None:
    server.cli(
        "app",
        "create",
        "--spec",
        "go",
        "--approve",
        "--param",
        "port=8080",
        *extra,
        str(BENCH / "apps/gohello"),
        path,
    )


def dump(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
