"""Every built-in spec builds and serves an unchanged app, created with the real CLI (podman)."""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.support.server import AppyardServer

APPS = Path(__file__).resolve().parents[1] / "apps"
SLOW_BUILDS = "hold_timeout_secs = 1200\nstart_timeout_secs = 300\n"  # in [container]

CASES = [
    # spec, app folder, app path, extra create args, request path, expected text
    ("python-wsgi", "wsgi", "/wsgi", [], "/wsgi/x", "wsgi script_name=/wsgi path=/x"),
    ("python-asgi", "asgi", "/asgi", [], "/asgi/x", "asgi root_path=/asgi path=/asgi/x"),
    ("python-flask", "flask", "/flask", [], "/flask/", "flask index, hello at /flask/hello"),
    (
        "python-fasthtml",
        "fasthtml",
        "fh.localhost:/",
        ["--param", "APP_MODULE=basic_app:app"],
        "/",
        "hello from fasthtml",
    ),
    ("python-streamlit", "streamlit", "/st", [], "/st/_stcore/health", "ok"),
    ("python-streamlit-poetry", "streamlit_poetry", "/stp", [], "/stp/_stcore/health", "ok"),
    ("python-gradio", "gradio", "/gr", [], "/gr/config", "Gradio on appyard"),
    (
        "go",
        "goapp",
        "/go",
        ["--param", "port=8080", "--param", "APP_ARGS=-addr 0.0.0.0:$PORT"],
        "/go/x",
        "hello from go, path=/go/x app_path=/go uid=65534",
    ),
]


@pytest.fixture(scope="module")
def spec_server(tmp_path_factory) -> AppyardServer:
    from tests.conftest import _remove_containers

    srv = AppyardServer(tmp_path_factory.mktemp("specs") / "home", "podman", SLOW_BUILDS)
    srv.start()
    yield srv
    srv.stop()
    _remove_containers(srv)


async def fetch(url: str, host: str | None = None, timeout: float = 1500) -> tuple[int, str]:
    headers = {"Host": host} if host else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.get(url, headers=headers) as r:
            return r.status, await r.text()


@pytest.mark.parametrize(
    ("spec", "folder", "app_path", "extra", "request_path", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_spec_serves_unchanged_app(
    spec_server: AppyardServer,
    tmp_path: Path,
    spec: str,
    folder: str,
    app_path: str,
    extra: list[str],
    request_path: str,
    expected: str,
) -> None:
    src = tmp_path / folder
    shutil.copytree(APPS / folder, src)
    spec_server.cli("app", "create", "--spec", spec, "--approve", *extra, str(src), app_path)
    host = app_path.split(":")[0] if ":" in app_path else None
    status, body = await fetch(spec_server.url + request_path, host)
    assert status == 200, body[-3000:]
    assert expected in body
    listed = spec_server.app(app_path)
    assert listed["state"] == "running" and listed["spec"] == spec
