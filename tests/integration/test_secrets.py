"""Secrets in params and build args, resolved at start/build, never stored (podman)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.engines import create_image_app, sh
from tests.support.server import REPO, AppyardServer, free_port, wait_port

APPS = Path(__file__).resolve().parents[1] / "apps"
ENV_SECRET = "s3cr3t-env-value-123"
FILE_SECRET = "f1le-secret-value-456"
VAULT_SECRET = "v4ult-value-789"
BUILD_SECRET = "bu1ld-token-value-000"


async def get(server: AppyardServer, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(server.url + path) as r:
        return r.status, await r.text()


def assert_not_leaked(server: AppyardServer, *values: str) -> None:
    """No secret value in the store (db and WAL), the server log, or the listings."""
    stored = b"".join(p.read_bytes() for p in (server.home / "metadata").iterdir())
    listings = (
        server.cli("param", "list", "/s", "--format", "json").stdout
        + server.cli("app", "list", "--format", "json").stdout
        + server.cli("version", "list", "/s", "--format", "json").stdout
    )
    for value in values:
        assert value.encode() not in stored
        assert value not in server.log()
        assert value not in listings


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(f"# app secrets\nAPI_KEY={FILE_SECRET}\n")
    return path


@pytest.fixture
def secret_server(server_factory, secrets_file: Path) -> AppyardServer:
    tables = f'[secret.files]\ntype = "file"\npath = "{secrets_file}"\n'
    return server_factory(
        "podman",
        "start_timeout_secs = 20\n",
        env={"APPYARD_TEST_DB_PASS": ENV_SECRET},
        tables=tables,
    )


async def test_env_and_file_secrets_reach_only_the_container(
    secret_server: AppyardServer, secrets_file: Path
) -> None:
    server = secret_server
    db_url = 'postgres://u:{{secret "env" "APPYARD_TEST_DB_PASS"}}@db/x'
    create_image_app(
        server,
        "/s",
        "--param",
        f"DB_URL={db_url}",
        "--param",
        'API_KEY={{secret "files" "API_KEY"}}',
    )
    status, body = await get(server, "/s/env")
    assert status == 200
    env = json.loads(body)
    assert env["DB_URL"] == f"postgres://u:{ENV_SECRET}@db/x"
    assert env["API_KEY"] == FILE_SECRET
    params = {p["name"]: p["prod"] for p in server.cli_json("param", "list", "/s")}
    assert params["DB_URL"] == db_url  # the reference is shown, never the value
    assert_not_leaked(server, ENV_SECRET, FILE_SECRET)
    # a changed value is used from the next container start; reload --restart forces one
    secrets_file.write_text("API_KEY=rotated-value-999\n")
    assert json.loads((await get(server, "/s/env"))[1])["API_KEY"] == FILE_SECRET
    server.cli("app", "reload", "--restart", "/s")
    assert json.loads((await get(server, "/s/env"))[1])["API_KEY"] == "rotated-value-999"
    assert_not_leaked(server, ENV_SECRET, FILE_SECRET, "rotated-value-999")


async def test_new_secret_reference_needs_approval(secret_server: AppyardServer) -> None:
    server = secret_server
    create_image_app(server, "/s")
    server.cli("param", "update", "TOKEN", '{{secret "env" "APPYARD_TEST_DB_PASS"}}', "/s")
    proc = server.cli("app", "promote", "/s", check=False)
    assert proc.returncode == 1 and "needs approval for secret" in proc.stderr
    server.cli("app", "approve", "/s")
    server.cli("app", "promote", "/s")
    assert json.loads((await get(server, "/s/env"))[1])["TOKEN"] == ENV_SECRET
    proc = server.cli("param", "update", "BAD", '{{secret "env" "X"', "/s", check=False)
    assert proc.returncode == 1 and "bad secret reference at position 1" in proc.stderr


async def test_missing_secret_fails_start_and_keeps_production(
    secret_server: AppyardServer,
) -> None:
    server = secret_server
    create_image_app(
        server,
        "/m",
        "--param",
        'A={{secret "env" "APPYARD_TEST_NOT_SET"}}',
    )
    status, body = await get(server, "/m/")
    assert status == 500
    assert "'APPYARD_TEST_NOT_SET' not found in provider 'env'" in body
    server.cli("param", "update", "A", "plain", "/m", "--promote")
    assert (await get(server, "/m/")) == (200, "hello world")
    proc = server.cli(
        "param", "update", "A", '{{secret "nowhere" "K"}}', "/m", "--promote", check=False
    )
    assert proc.returncode == 1  # not approved yet: refused, nothing changed
    assert "needs approval" in proc.stderr
    server.cli("param", "update", "A", '{{secret "nowhere" "K"}}', "/m")
    server.cli("app", "approve", "/m")
    proc = server.cli("app", "promote", "/m", check=False)
    assert proc.returncode == 1
    assert "secret provider 'nowhere' (for key 'K') is not configured" in proc.stderr
    assert "production still serves the previous version" in proc.stderr
    assert (await get(server, "/m/")) == (200, "hello world")


async def test_secret_build_arg_stays_out_of_history(server_factory, tmp_path: Path) -> None:
    server: AppyardServer = server_factory("podman", env={"APPYARD_TEST_BUILD": BUILD_SECRET})
    src = tmp_path / "buildsecret"
    shutil.copytree(APPS / "httpapp", src)
    (src / "Containerfile").write_text(
        "FROM python:3.11-slim\n"
        "RUN --mount=type=secret,id=BUILD_TOKEN sha256sum /run/secrets/BUILD_TOKEN "
        "| cut -c1-64 > /token.sha\n"
        "WORKDIR /app\nCOPY server.py /app/server.py\nEXPOSE 8000\n"
        'CMD ["python3", "/app/server.py"]\n'
    )
    server.cli(
        "app",
        "create",
        "--spec",
        "container",
        "--approve",
        "--carg",
        'BUILD_TOKEN={{secret "env" "APPYARD_TEST_BUILD"}}',
        str(src),
        "/b",
    )
    status, body = await get(server, "/b/file?p=/token.sha")
    assert status == 200
    assert body.strip() == hashlib.sha256(BUILD_SECRET.encode()).hexdigest()
    image = server.app("/b")["image"]
    history = sh("podman", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    inspect = sh("podman", "image", "inspect", image)
    assert BUILD_SECRET not in history and BUILD_SECRET not in inspect
    build_log = server.cli("app", "logs", "/b").stdout
    assert BUILD_SECRET not in build_log


@pytest.fixture
def vault() -> tuple[str, str]:
    port, token = free_port(), "test-root-token"
    data = {"myapp/db": {"value": VAULT_SECRET, "user": "admin"}}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.vault", str(port), token],
        cwd=REPO,
        env={**os.environ, "VAULT_TEST_DATA": json.dumps(data)},
    )
    url = f"http://127.0.0.1:{port}"
    wait_port(port)
    yield url, token
    proc.terminate()
    proc.wait(10)


async def test_vault_kv2_provider(server_factory, vault: tuple[str, str]) -> None:
    url, token = vault
    tables = (
        f'[secret.vault_prod]\ntype = "vault"\naddress = "{url}"\n'
        f'token = "{token}"\nmount = "secret"\n'
    )
    server: AppyardServer = server_factory("podman", tables=tables)
    create_image_app(
        server,
        "/s",
        "--param",
        'PASS={{secret "vault_prod" "myapp/db"}}',
        "--param",
        'USER={{secret "vault_prod" "myapp/db#user"}}',
    )
    env = json.loads((await get(server, "/s/env"))[1])
    assert env["PASS"] == VAULT_SECRET and env["USER"] == "admin"
    assert token not in server.cli("config", "show").stdout
    assert_not_leaked(server, VAULT_SECRET)
