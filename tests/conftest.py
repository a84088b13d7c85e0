from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import REPO, AppyardServer, free_port, wait_http


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """Start appyard servers (each with its own home and ports); all stopped at teardown."""
    servers: list[AppyardServer] = []

    def start(
        engine: str = "auto",
        extra_config: str = "",
        name: str = "home",
        env: dict[str, str] | None = None,
        tables: str = "",
    ) -> AppyardServer:
        srv = AppyardServer(tmp_path / name, engine, extra_config, env)
        srv.tables = tables
        servers.append(srv)
        return srv.start()

    yield start
    for srv in servers:
        srv.stop()
        _remove_containers(srv)


def _remove_containers(srv: AppyardServer) -> None:
    from appyard.home import Home

    instance = Home(srv.home.resolve()).instance_id
    for engine in ("podman", "docker"):
        if shutil.which(engine) is None:
            continue
        out = subprocess.run(
            [engine, "ps", "-aq", "--filter", f"label=dev.appyard.instance={instance}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if out:
            subprocess.run([engine, "rm", "-f", *out], capture_output=True)
        # Drop the tags but keep the layers: rebuilding the same test app is then a cache hit.
        tags = subprocess.run(
            [
                engine,
                "images",
                "--filter",
                f"label=dev.appyard.instance={instance}",
                "--format",
                "{{.Repository}}:{{.Tag}}",
            ],
            capture_output=True,
            text=True,
        ).stdout.split()
        for tag in tags:
            untag = ["untag"] if engine == "podman" else ["rmi", "--no-prune"]
            subprocess.run([engine, *untag, tag], capture_output=True)


@pytest.fixture
def server(server_factory) -> AppyardServer:
    return server_factory()


@pytest.fixture(scope="session")
def backend() -> Iterator[str]:
    """The aiohttp test upstream, as a subprocess; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.backend", str(port)], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/ready")
    yield url
    proc.terminate()
    proc.wait(10)
