"""Secret providers: where `{{secret "PROVIDER" "KEY"}}` values come from.

Providers are named in the server config (`[secret.NAME]` with a `type`); a provider
called `env` (the process environment) always exists unless the config redefines it.
Values are fetched when a container starts (params) or an image builds (build args),
and live only in memory: never in the store, logs, listings or error pages.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from appyard.errors import UserError


class SecretError(UserError):
    """A reference could not be resolved; the message names provider and key, never a value."""


class _ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvProviderConfig(_ProviderConfig):
    type: Literal["env"]
    prefix: str = ""


class FileProviderConfig(_ProviderConfig):
    type: Literal["file"]
    path: str


class VaultProviderConfig(_ProviderConfig):
    type: Literal["vault"]
    address: str
    token: str | None = None
    token_file: str | None = None
    mount: str = "secret"
    kv_version: Literal[1, 2] = 2
    field: str = Field("value", description="field read when the key names no #field")
    timeout_secs: float = 10.0


class AwsProviderConfig(_ProviderConfig):
    type: Literal["aws"]
    region: str | None = None
    profile: str | None = None


ProviderConfig = Annotated[
    EnvProviderConfig | FileProviderConfig | VaultProviderConfig | AwsProviderConfig,
    Field(discriminator="type"),
]


class Provider(Protocol):
    name: str

    async def get(self, key: str) -> str: ...


class EnvProvider:
    def __init__(self, name: str, cfg: EnvProviderConfig) -> None:
        self.name, self.prefix = name, cfg.prefix

    async def get(self, key: str) -> str:
        try:
            return os.environ[self.prefix + key]
        except KeyError:
            raise SecretError(
                f"secret {key!r} not found in provider {self.name!r} "
                f"(environment variable {self.prefix + key})"
            ) from None


class FileProvider:
    """A .env / properties file (KEY=VALUE or KEY: VALUE); re-read when it changes."""

    def __init__(self, name: str, cfg: FileProviderConfig) -> None:
        self.name, self.path = name, Path(cfg.path).expanduser()
        self._stamp: tuple[float, int] | None = None
        self._values: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise SecretError(f"provider {self.name!r}: file {self.path} not found") from None
        if self._stamp != (st.st_mtime, st.st_size):
            self._values = parse_properties(self.path.read_text())
            self._stamp = (st.st_mtime, st.st_size)
        return self._values

    async def get(self, key: str) -> str:
        values = self._load()
        if key not in values:
            raise SecretError(
                f"secret {key!r} not found in provider {self.name!r} (file {self.path})"
            )
        return values[key]


def parse_properties(text: str) -> dict[str, str]:
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut <= 0:
            continue
        key, value = line[:cut].strip(), line[cut + 1 :].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


class VaultProvider:
    """HashiCorp Vault KV (v1 or v2) over its HTTP API. Key: `path` or `path#field`."""

    def __init__(self, name: str, cfg: VaultProviderConfig) -> None:
        self.name, self.cfg = name, cfg

    def _token(self) -> str:
        if self.cfg.token:
            return self.cfg.token
        if self.cfg.token_file:
            return Path(self.cfg.token_file).expanduser().read_text().strip()
        token = os.environ.get("VAULT_TOKEN")
        if not token:
            raise SecretError(
                f"provider {self.name!r}: no token (set token, token_file or VAULT_TOKEN)"
            )
        return token

    async def get(self, key: str) -> str:
        path, _, field = key.partition("#")
        field = field or self.cfg.field
        mount = self.cfg.mount.strip("/")
        url = (
            f"{self.cfg.address.rstrip('/')}/v1/{mount}/data/{path}"
            if self.cfg.kv_version == 2
            else f"{self.cfg.address.rstrip('/')}/v1/{mount}/{path}"
        )
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_secs)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers={"X-Vault-Token": self._token()}) as resp,
            ):
                if resp.status == 404:
                    raise SecretError(f"secret {key!r} not found in provider {self.name!r}")
                if resp.status >= 400:
                    raise SecretError(
                        f"provider {self.name!r} answered HTTP {resp.status} for {key!r}"
                    )
                body: dict[str, Any] = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SecretError(f"provider {self.name!r} unreachable: {exc}") from None
        data = body.get("data") or {}
        if self.cfg.kv_version == 2:
            data = data.get("data") or {}
        if field not in data:
            raise SecretError(f"secret {key!r} has no field {field!r} in provider {self.name!r}")
        return str(data[field])


class AwsProvider:
    """AWS Secrets Manager (needs the optional boto3 dependency: appyard[aws])."""

    def __init__(self, name: str, cfg: AwsProviderConfig) -> None:
        self.name, self.cfg = name, cfg

    async def get(self, key: str) -> str:
        try:
            import boto3  # type: ignore[import-not-found]
        except ImportError:
            raise SecretError(
                f"provider {self.name!r} needs boto3: pip install 'appyard[aws]'"
            ) from None

        def fetch() -> str:
            session = boto3.session.Session(
                profile_name=self.cfg.profile, region_name=self.cfg.region
            )
            try:
                value = session.client("secretsmanager").get_secret_value(SecretId=key)
            except Exception as exc:
                raise SecretError(
                    f"secret {key!r} not available from provider "
                    f"{self.name!r}: {type(exc).__name__}"
                ) from None
            return value.get("SecretString") or value["SecretBinary"].decode()

        return await asyncio.to_thread(fetch)


_KINDS = {"env": EnvProvider, "file": FileProvider, "vault": VaultProvider, "aws": AwsProvider}


def build_providers(configs: dict[str, Any]) -> dict[str, Provider]:
    providers: dict[str, Provider] = {"env": EnvProvider("env", EnvProviderConfig(type="env"))}
    for name, cfg in configs.items():
        providers[name] = _KINDS[cfg.type](name, cfg)
    return providers
