"""Turn an app version into a container plan: which image, which container, which env.

Names derive from content hashes, so an unchanged app reuses its image and
container, and any change (source, spec, build args, params, options) gets
fresh ones and never a stale one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from appyard.apps.model import AppVersion
from appyard.apps.paths import AppPath
from appyard.apps.sources import tree_digest
from appyard.errors import UserError
from appyard.runtime.engine import LABEL_PREFIX, RunSpec
from appyard.specs import Spec

SPEC_CONTAINERFILE = ".appyard.Containerfile"
_EXPOSE_RE = re.compile(r"^\s*EXPOSE\s+(.+)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class BuildPlan:
    source_dir: Path | None
    spec_dir: Path | None  # spec folder whose Containerfile and files are used
    containerfile: str  # name inside the prepared context
    build_args: dict[str, str]


@dataclass(frozen=True)
class ContainerPlan:
    image: str
    build: BuildPlan | None
    run: RunSpec
    health_path: str
    labels: dict[str, str] = field(default_factory=dict)


def app_containerfile(source_dir: Path) -> Path | None:
    """The app's own Containerfile; Containerfile wins over Dockerfile."""
    for name in ("Containerfile", "Dockerfile"):
        if (source_dir / name).is_file():
            return source_dir / name
    return None


def exposed_port(containerfile: Path) -> int | None:
    """The last numeric EXPOSE in a Containerfile."""
    port = None
    for match in _EXPOSE_RE.finditer(containerfile.read_text(errors="replace")):
        for token in match.group(1).split():
            number = token.split("/")[0]
            if number.isdigit():
                port = int(number)
    return port


def resolve_port(spec: Spec, params: dict[str, str], source_dir: Path | None) -> int:
    if params.get("port"):
        return int(params["port"])
    files = [app_containerfile(source_dir)] if source_dir and spec.containerfile() is None else []
    files.append(spec.containerfile())
    for f in files:
        if f is not None and (port := exposed_port(f)) is not None:
            return port
    if spec.port is not None:
        return spec.port
    raise UserError(
        "cannot tell which port the app listens on: pass --param port=N "
        "or add EXPOSE to the Containerfile"
    )


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def make_plan(
    version: AppVersion,
    spec: Spec,
    public_path: AppPath,
    slot: str,
    instance_id: str,
    health_override: str | None,
) -> ContainerPlan:
    source_dir = Path(version.source.snapshot) if version.source.snapshot else None
    params = version.params
    if (
        spec.kind == "build"
        and spec.containerfile() is None
        and (source_dir is None or app_containerfile(source_dir) is None)
    ):
        raise UserError("the app source has no Containerfile or Dockerfile")
    port = resolve_port(spec, params, source_dir)
    labels = {
        f"{LABEL_PREFIX}instance": instance_id,
        f"{LABEL_PREFIX}app_id": version.app_id,
        f"{LABEL_PREFIX}spec": spec.name,
    }
    if spec.kind == "image":
        image, build = params["image"], None
    else:
        if spec.containerfile() is not None:
            build = BuildPlan(source_dir, spec.folder, SPEC_CONTAINERFILE, version.build_args)
        else:
            own = app_containerfile(source_dir)  # type: ignore[arg-type]
            assert own is not None
            build = BuildPlan(source_dir, None, own.name, version.build_args)
        image_hash = _digest(
            spec.name, tree_digest(spec.folder), version.source.digest, version.build_args
        )[:16]
        image = f"localhost/appyard-{version.app_id}:{image_hash}"
    cl_path = "" if public_path.path == "/" else public_path.path
    env = {**params, "CL_APP_PATH": cl_path, "PORT": str(port)}
    container_hash = _digest(image, env, version.container_opts, port)[:12]
    run = RunSpec(
        name=f"appyard-{instance_id}-{version.app_id}-{slot}-{container_hash}",
        image=image,
        port=port,
        env=env,
        options=dict(version.container_opts),
        labels={
            **labels,
            f"{LABEL_PREFIX}version": str(version.version),
            f"{LABEL_PREFIX}slot": slot,
        },
    )
    return ContainerPlan(
        image=image,
        build=build,
        run=run,
        health_path=health_override or spec.health_path,
        labels=labels,
    )


def prepare_context(build: BuildPlan, dest: Path) -> Path:
    """Lay out the build context: spec files first, then the app's files (the app's win)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if build.spec_dir is not None:
        for item in build.spec_dir.iterdir():
            if item.name in ("spec.toml", "__pycache__"):
                continue
            target = dest / (
                SPEC_CONTAINERFILE if item.name in ("Containerfile", "Dockerfile") else item.name
            )
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
    if build.source_dir is not None:
        shutil.copytree(build.source_dir, dest, dirs_exist_ok=True, symlinks=True)
    return dest / build.containerfile
