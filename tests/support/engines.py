"""Look at containers through the real engine CLI: what appyard did, not what it says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from appyard.home import Home
from tests.support.server import AppyardServer

REPO = Path(__file__).resolve().parents[2]
TEST_IMAGE = "localhost/appyard-test-httpapp:latest"


def sh(engine: str, *args: str, check: bool = True) -> str:
    proc = subprocess.run([engine, *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{engine} {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def containers(engine: str, home: Path, running_only: bool = False) -> list[dict]:
    """Containers labelled with this appyard home's instance id."""
    instance = Home(home.resolve()).instance_id
    args = ["ps", "--filter", f"label=dev.appyard.instance={instance}", "--format", "{{.Names}}"]
    if not running_only:
        args.insert(1, "-a")
    names = sh(engine, *args).split()
    if not names:
        return []
    out = sh(engine, "container", "inspect", "--format", "{{json .Name}}\t{{json .State}}", *names)
    result = []
    for line in out.splitlines():
        name, state = line.split("\t")
        st = json.loads(state)
        result.append(
            {
                "name": json.loads(name).lstrip("/"),
                "running": st["Running"],
                "started": st["StartedAt"],
            }
        )
    return result


def build_test_image(engine: str) -> str:
    app = REPO / "tests/apps/httpapp"
    sh(engine, "build", "-q", "-t", TEST_IMAGE, "-f", str(app / "Containerfile"), str(app))
    return TEST_IMAGE


def create_image_app(server: AppyardServer, path: str, *extra: str) -> None:
    server.cli(
        "app",
        "create",
        "--spec",
        "image",
        "--approve",
        "--param",
        f"image={TEST_IMAGE}",
        "--param",
        "port=8000",
        *extra,
        "-",
        path,
    )


def flavour_app(dest: Path) -> Path:
    """The test http app with a build arg FLAVOUR (default plain) exposed as an env var."""
    import shutil

    shutil.copytree(REPO / "tests/apps/httpapp", dest)
    (dest / "Containerfile").write_text(
        "FROM python:3.11-slim\nARG FLAVOUR=plain\nENV FLAVOUR=$FLAVOUR\nWORKDIR /app\n"
        'COPY server.py /app/server.py\nEXPOSE 8000\nCMD ["python3", "/app/server.py"]\n'
    )
    return dest
