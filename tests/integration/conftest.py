from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.engines import build_test_image, sh

ENGINES = ["podman", "docker"]


@pytest.fixture(scope="session", params=ENGINES)
def engine(request) -> str:
    """Each engine test runs once per engine; a missing engine is a failure, not a skip."""
    name = request.param
    if shutil.which(name) is None or sh(name, "info", check=False) == "":
        pytest.fail(f"{name} is not available; run scripts/install.sh --test")
    build_test_image(name)
    return name


@pytest.fixture
def httpapp_dir(tmp_path: Path) -> Path:
    src = Path(__file__).resolve().parents[1] / "apps/httpapp"
    dest = tmp_path / "httpapp"
    shutil.copytree(src, dest)
    return dest
