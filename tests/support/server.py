"""Run a real appyard server as a subprocess with its own home and free ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APPYARD = [sys.executable, "-m", "appyard"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


class AppyardServer:
    def __init__(
        self,
        home: Path,
        engine: str = "auto",
        extra_config: str = "",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.extra_env = extra_env or {}
        self.engine = engine
        self.http_port = free_port()
        self.https_port = free_port()
        self.extra_config = extra_config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.extra_env,
            "APPYARD_HOME": str(self.home),
            "APPYARD_CONFIG": "",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "appyard.toml").write_text(
            f'[http]\nhost = "127.0.0.1"\nport = {self.http_port}\n'
            f'[https]\nhost = "127.0.0.1"\nport = {self.https_port}\n'
            f'[container]\ncommand = "{self.engine}"\n{self.extra_config}\n'
            f"{self.tables}"
        )

    tables = ""  # TOML tables appended after [container] (e.g. [secret.x])

    def start(self, timeout: float = 30) -> AppyardServer:
        self.write_config()
        offset = len(self.log())
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*APPYARD, "server", "start"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            if "appyard ready" in self.log()[offset:]:
                return self
            time.sleep(0.05)
        raise TimeoutError(f"server did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(
        self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*APPYARD, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            input=input,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"appyard {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def app(self, path: str) -> dict[str, Any]:
        for a in self.cli_json("app", "list", path):
            return a
        raise KeyError(path)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
