"""Server configuration: `$APPYARD_HOME/appyard.toml`, validated strictly at start.

Every setting has a default, so an empty (or missing) file is a working config.
`[app_config]` holds the defaults that each app may override with `--conf K=V`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from appyard.errors import UserError
from appyard.home import Home


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HttpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(25222, ge=-1, le=65535, description="-1 disables; 0 picks a free port")


class HttpsConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(25223, ge=-1, le=65535, description="-1 disables; 0 picks a free port")


class ContainerConfig(_Section):
    command: Literal["auto", "podman", "docker"] = "auto"
    max_held_requests: int = Field(1000, ge=1, description="requests held while an app starts")
    hold_timeout_secs: float = Field(180.0, gt=0, description="max wait for a starting app")
    start_timeout_secs: float = Field(120.0, gt=0, description="max wait for a healthy container")
    health_interval_secs: float = Field(10.0, gt=0, description="check period while running")
    health_failures: int = Field(3, ge=1, description="failed checks before a restart")
    stop_grace_secs: int = Field(2, ge=0, description="SIGTERM to SIGKILL grace on stop")
    keep_images: int = Field(3, ge=1, description="old images kept per app for rollback")
    drain_timeout_secs: float = Field(
        30.0, ge=0, description="wait for in-flight requests and streams on a replaced container"
    )
    denied_options: list[str] = Field(
        default_factory=lambda: [
            "privileged",
            "volume",
            "v",
            "mount",
            "device",
            "cap-add",
            "security-opt",
            "pid",
            "ipc",
            "userns",
            "network",
            "net",
        ],
        description="container options apps may not use",
    )
    allowed_options: list[str] | None = Field(
        None, description="if set, the only options apps may use"
    )


class ContainerAppConfig(_Section):
    idle_shutdown_secs: float = Field(180.0, ge=0, description="0 disables idle stop")
    idle_shutdown_dev_apps: bool = False
    health_url: str | None = Field(None, description="health path; default from the spec")


class ProxyAppConfig(_Section):
    preserve_host: bool | None = Field(None, description="default from the spec")
    strip_path: bool | None = Field(None, description="default from the spec")
    timeout_secs: float = Field(300.0, gt=0, description="upstream response timeout")


class AppConfig(_Section):
    container: ContainerAppConfig = ContainerAppConfig()
    proxy: ProxyAppConfig = ProxyAppConfig()


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False


class SecretConfig(_Section):
    """`default` names the provider for one-argument references; every other key is a
    provider table `[secret.NAME]` with a `type` (env, file, vault, aws)."""

    model_config = ConfigDict(extra="allow", validate_assignment=False)

    default: str = "env"

    @model_validator(mode="after")
    def _validate_providers(self) -> SecretConfig:
        from appyard.secrets.providers import ProviderConfig

        adapter: TypeAdapter[Any] = TypeAdapter(ProviderConfig)
        extra = self.__pydantic_extra__ or {}
        for name, raw in list(extra.items()):
            if isinstance(raw, BaseModel):
                continue
            if not isinstance(raw, dict):
                raise ValueError(f"secret.{name} must be a table with a type")
            try:
                extra[name] = adapter.validate_python(raw)
            except ValidationError as exc:
                raise ValueError(describe_validation_error(exc, f"secret.{name}.")) from None
        return self

    @property
    def providers(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class ServerConfig(_Section):
    http: HttpConfig = HttpConfig()
    https: HttpsConfig = HttpsConfig()
    container: ContainerConfig = ContainerConfig()
    app_config: AppConfig = AppConfig()
    log: LogConfig = LogConfig()
    secret: SecretConfig = SecretConfig()


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line naming each bad key, e.g. `http.port: Input should be a valid integer`."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {prefix}{key}")
        elif err["type"] == "value_error":  # our own validators say it whole
            parts.append(err["msg"].removeprefix("Value error, "))
        else:
            parts.append(f"{prefix}{key}: {err['msg']}")
    return "; ".join(parts)


def config_path(home: Home, explicit: str | None = None) -> Path:
    """`--config`, else `$APPYARD_CONFIG`, else `$APPYARD_HOME/appyard.toml`."""
    raw = explicit or os.environ.get("APPYARD_CONFIG")
    return Path(raw).expanduser() if raw else home.config_file


def load_config(home: Home, explicit: str | None = None) -> ServerConfig:
    path = config_path(home, explicit)
    if not path.exists():
        if explicit or os.environ.get("APPYARD_CONFIG"):
            raise UserError(f"config file {path} does not exist")
        return ServerConfig()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        return ServerConfig.model_validate(data, strict=True)
    except ValidationError as exc:
        raise UserError(f"config file {path}: {describe_validation_error(exc)}") from None


def parse_conf_overrides(items: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Turn `--conf container.idle_shutdown_secs=3` items into a nested dict, validated.

    Values arrive as strings; pydantic's lax mode converts them to the declared type.
    """
    pairs = items.items() if isinstance(items, dict) else (_split_kv(i, "--conf") for i in items)
    nested: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        if len(parts) != 2 or not all(parts):
            raise UserError(
                f"conf key {key!r} must look like section.name, e.g. container.idle_shutdown_secs"
            )
        nested.setdefault(parts[0], {})[parts[1]] = value
    try:
        typed = AppConfig.model_validate(nested)
    except ValidationError as exc:
        raise UserError(f"invalid conf: {describe_validation_error(exc)}") from None
    return {sec: {k: getattr(getattr(typed, sec), k) for k in keys} for sec, keys in nested.items()}


def effective_app_config(defaults: AppConfig, overrides: dict[str, Any]) -> AppConfig:
    """Server-wide `[app_config]` with one app's `--conf` overrides on top."""
    merged = defaults.model_dump()
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    return AppConfig.model_validate(merged)


def _split_kv(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"{flag} {item!r} must be KEY=VALUE")
    return key.strip(), value


def config_as_toml(cfg: BaseModel, prefix: str = "") -> str:
    """Render a config model as TOML (only the types our config uses)."""
    scalars, tables = [], []
    for name, value in cfg:
        if name in ("token",) and value:
            scalars.append(f"# {name} = (set, not shown)")
        elif isinstance(value, list):
            scalars.append(f"{name} = [{', '.join(_toml_value(v) for v in value)}]")
        elif isinstance(value, BaseModel):
            tables.append(config_as_toml(value, f"{prefix}{name}."))
        elif value is not None:
            scalars.append(f"{name} = {_toml_value(value)}")
        else:
            scalars.append(f"# {name} = (unset)")
    head = [f"[{prefix.rstrip('.')}]"] if prefix and scalars else []
    body = "\n".join(head + scalars)
    return "\n\n".join(x for x in [body, *tables] if x)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
