"""The engine interface, implemented once over the podman/docker CLI grammar they share.

Both CLIs accept the same verbs and Go templates for what appyard needs; the
few differences live in the two small subclasses at the bottom. Every call is
an asyncio subprocess so the server never blocks on the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

LABEL_PREFIX = "dev.appyard."
_RUN_MOUNT_RE = re.compile(r"^RUN\s+(?:--mount=\S+\s+(?:\\\n\s*)?)+", re.MULTILINE)
_INSPECT_FORMAT = (
    "{{json .Config.Labels}}\t{{.State.Running}}\t{{.State.ExitCode}}\t"
    "{{json .NetworkSettings.Ports}}"
)


class EngineError(Exception):
    """An engine command failed; `log_tail` holds the last lines it printed."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    labels: dict[str, str]
    running: bool
    exit_code: int
    ports: dict[str, int]  # "8000/tcp" -> host port

    def host_port(self, container_port: int) -> int | None:
        return self.ports.get(f"{container_port}/tcp")


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to create a container."""

    name: str
    image: str
    port: int
    env: dict[str, str]
    labels: dict[str, str]
    options: dict[str, str | None]
    host_port: int = 0  # 0: the engine picks one


def pick_free_port() -> int:
    """A free loopback port for a container to publish on (kept across its restarts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Engine:
    name = "engine"

    def __init__(self, binary: str) -> None:
        self.binary = binary

    async def _exec(self, *args: str, timeout: float = 120) -> tuple[int, str, str]:
        # Output goes to files, not pipes: `run -d`/`start` leave conmon (or docker's shim)
        # holding the child's stdout, so reading a pipe to EOF would wait for the container.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = await asyncio.create_subprocess_exec(
                self.binary, *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err
            )
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                raise EngineError(f"{self.name} {args[0]} timed out after {timeout:g}s") from None
            out.seek(0)
            err.seek(0)
            return (
                proc.returncode or 0,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    async def _check(self, *args: str, timeout: float = 120) -> str:
        rc, out, err = await self._exec(*args, timeout=timeout)
        if rc != 0:
            detail = (err.strip() or out.strip()).splitlines()
            raise EngineError(
                f"{self.name} {args[0]} failed: {detail[-1] if detail else f'exit code {rc}'}",
                "\n".join(detail[-30:]),
            )
        return out

    async def available(self) -> bool:
        try:
            rc, _, _ = await self._exec("info", timeout=30)
        except (OSError, EngineError):
            return False
        return rc == 0

    # -- images -----------------------------------------------------------

    async def image_exists(self, ref: str) -> bool:
        rc, _, _ = await self._exec("image", "inspect", "--format", "{{.Id}}", ref)
        return rc == 0

    async def build(
        self,
        context: Path,
        containerfile: Path,
        tag: str,
        build_args: dict[str, str],
        labels: dict[str, str],
        on_line: Callable[[str], None],
        log_file: Path,
        secrets: dict[str, str] | None = None,
    ) -> None:
        """Build an image. `secrets` are build args holding secret values: they are passed
        as build secrets (`RUN --mount=type=secret,id=NAME`), never as --build-arg, so
        they stay out of the image history."""
        build_args, secrets = await self._adapt_build(containerfile, build_args, secrets, on_line)
        args = ["build", "-t", tag, "-f", str(containerfile)]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        args += self._build_flags(containerfile, build_args)
        with tempfile.TemporaryDirectory(prefix="appyard-secrets-") as tmp:
            for key, value in (secrets or {}).items():
                path = Path(tmp) / key
                path.touch(mode=0o600)
                path.write_text(value)
                args += ["--secret", f"id={key},src={path}"]
            await self._stream(
                [*args, str(context)], on_line, log_file, what="build", env=self._build_env()
            )

    async def _adapt_build(
        self,
        containerfile: Path,
        build_args: dict[str, str],
        secrets: dict[str, str] | None,
        on_line: Callable[[str], None],
    ) -> tuple[dict[str, str], dict[str, str] | None]:
        """Engine-specific changes to a build (its context is appyard's own copy)."""
        return build_args, secrets

    def _build_flags(self, containerfile: Path, build_args: dict[str, str]) -> list[str]:
        return []

    def _build_env(self) -> dict[str, str]:
        return {}

    async def pull(self, ref: str, on_line: Callable[[str], None], log_file: Path) -> None:
        await self._stream(["pull", ref], on_line, log_file, what="pull")

    async def _stream(
        self,
        args: list[str],
        on_line: Callable[[str], None],
        log_file: Path,
        what: str,
        env: dict[str, str] | None = None,
    ) -> None:
        """Run a long command, passing each output line on and keeping the tail for errors."""
        tail: deque[str] = deque(maxlen=40)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        assert proc.stdout is not None
        with open(log_file, "w") as log:
            try:
                async for raw in proc.stdout:
                    line = raw.decode(errors="replace").rstrip("\n")
                    tail.append(line)
                    log.write(line + "\n")
                    log.flush()
                    on_line(line)
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            last = next((ln for ln in reversed(tail) if ln.strip()), f"exit code {proc.returncode}")
            raise EngineError(f"image {what} failed: {last.strip()}", "\n".join(tail))

    async def list_images(self, label: str) -> list[str]:
        # A listing races with concurrent removals ("image not known"): try again.
        for attempt in range(3):
            try:
                out = await self._check(
                    "images", "--filter", f"label={label}", "--format", "{{.Repository}}:{{.Tag}}"
                )
                return [ln for ln in out.split() if ln and "<none>" not in ln]
            except EngineError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2)
        return []

    async def remove_image(self, ref: str) -> None:
        await self._exec("rmi", ref)

    # -- containers -------------------------------------------------------

    async def run(self, spec: RunSpec) -> None:
        """Create and start a container; the env goes through a 0600 file removed right after."""
        fd, env_path = tempfile.mkstemp(prefix="appyard-env-")
        try:
            with os.fdopen(fd, "w") as f:
                for key, value in spec.env.items():
                    f.write(f"{key}={value}\n")
            args = [
                "run",
                "-d",
                "--name",
                spec.name,
                "--init",
                "-p",
                f"127.0.0.1:{spec.host_port or ''}:{spec.port}",
                "--env-file",
                env_path,
            ]
            for key, value in spec.labels.items():
                args += ["--label", f"{key}={value}"]
            for key, value in spec.options.items():
                args.append(f"--{key}" if value is None else f"--{key}={value}")
            await self._check(*args, spec.image, timeout=120)
        finally:
            os.unlink(env_path)

    async def start(self, name: str) -> None:
        await self._check("start", name, timeout=120)

    async def stop(self, name: str, grace: int) -> None:
        await self._exec("stop", "-t", str(grace), name, timeout=grace + 60)

    async def remove(self, name: str) -> None:
        """Remove a container, killing it at once if it runs (it is being discarded)."""
        await self._exec("rm", "-f", *self._rm_flags(), name, timeout=60)

    def _rm_flags(self) -> list[str]:
        return []

    async def inspect(self, name: str) -> ContainerInfo | None:
        rc, out, _ = await self._exec("container", "inspect", "--format", _INSPECT_FORMAT, name)
        if rc != 0:
            return None
        return _parse_inspect(name, out.strip())

    async def list_containers(self, label: str) -> list[ContainerInfo]:
        out = await self._check("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}")
        names = [n for n in out.split() if n]
        if not names:
            return []
        _rc, out, _ = await self._exec(
            "container", "inspect", "--format", "{{.Name}}\t" + _INSPECT_FORMAT, *names
        )
        infos = []
        for line in out.splitlines():
            name, _, rest = line.partition("\t")
            if rest:
                infos.append(_parse_inspect(name.lstrip("/"), rest))
        return infos

    async def logs(self, name: str, lines: int) -> str:
        rc, out, err = await self._exec("logs", "--tail", str(lines), name)
        if rc == 0 and not (out + err).strip():
            # podman 4.3 sometimes answers --tail with nothing for a just-exited container
            # although the log has lines; read it whole then and cut here.
            rc, out, err = await self._exec("logs", name)
            out = "\n".join(out.splitlines()[-lines:]) + ("\n" if out else "")
        return out + err if rc == 0 else ""

    async def follow_logs(self, name: str, lines: int) -> AsyncIterator[bytes]:
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            "logs",
            "-f",
            "--tail",
            str(lines),
            name,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        try:
            async for line in proc.stdout:
                yield line
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()


def args_used_outside_run(containerfile: str, build_args: dict[str, str]) -> bool:
    """Whether any build arg is referenced by an instruction other than RUN, FROM or ARG."""
    text = re.sub(r"\\\n", " ", containerfile)
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if (
            len(words) < 2
            or words[0].upper() in ("RUN", "FROM", "ARG")
            or line.lstrip().startswith("#")
        ):
            continue
        if any(re.search(rf"\$\{{?{re.escape(name)}\b", words[1]) for name in build_args):
            return True
    return False


def _parse_inspect(name: str, line: str) -> ContainerInfo:
    labels_json, running, exit_code, ports_json = line.split("\t")
    ports: dict[str, int] = {}
    for key, bindings in (json.loads(ports_json) or {}).items():
        for binding in bindings or []:
            if binding.get("HostPort"):
                ports[key] = int(binding["HostPort"])
                break
    return ContainerInfo(
        name=name,
        labels=json.loads(labels_json) or {},
        running=running == "true",
        exit_code=int(exit_code or 0),
        ports=ports,
    )


class PodmanEngine(Engine):
    name = "podman"

    def _build_flags(self, containerfile: Path, build_args: dict[str, str]) -> list[str]:
        # buildah (podman 4.x) keys its layer cache on the unexpanded text of ENV, LABEL,
        # WORKDIR... lines, so a build arg used there would hit a stale layer: skip the
        # cache for such builds (RUN and FROM lines are keyed correctly).
        if build_args and args_used_outside_run(containerfile.read_text(), build_args):
            return ["--layers", "--no-cache"]
        return ["--layers"]

    def _rm_flags(self) -> list[str]:
        return ["--time", "0"]  # docker's rm -f kills at once; podman's waits 10 s


class DockerEngine(Engine):
    name = "docker"
    _buildkit: bool | None = None

    async def _adapt_build(
        self,
        containerfile: Path,
        build_args: dict[str, str],
        secrets: dict[str, str] | None,
        on_line: Callable[[str], None],
    ) -> tuple[dict[str, str], dict[str, str] | None]:
        if self._buildkit is None:
            rc, _, _ = await self._exec("buildx", "version")
            self._buildkit = rc == 0
        if self._buildkit:
            return build_args, secrets
        # The legacy builder rejects RUN --mount: drop the cache mounts from appyard's copy
        # of the context (layer caching still skips unchanged dependency steps).
        containerfile.write_text(_RUN_MOUNT_RE.sub("RUN ", containerfile.read_text()))
        on_line("note: docker has no BuildKit here; building without cache mounts")
        if not secrets:
            return build_args, secrets
        # No build secrets without BuildKit: the values go in as build args, which the image
        # history records (README: "Secrets").
        on_line(
            "warning: docker without BuildKit passes secret build args as "
            "--build-arg; they are visible in the image history"
        )
        return {**build_args, **secrets}, None

    def _build_env(self) -> dict[str, str]:
        return {"DOCKER_BUILDKIT": "1" if self._buildkit else "0"}


async def detect_engine(choice: str) -> Engine | None:
    """`auto` prefers podman, then docker; only an engine that answers `info` is used."""
    candidates = ["podman", "docker"] if choice == "auto" else [choice]
    for name in candidates:
        binary = shutil.which(name)
        if not binary:
            continue
        engine = PodmanEngine(binary) if name == "podman" else DockerEngine(binary)
        if await engine.available():
            return engine
    return None
