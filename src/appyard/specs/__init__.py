"""App specs: data folders that tell appyard how to run a kind of app.

Each spec is a folder holding `spec.toml` (params, routing, health) and, for
specs that build, a Containerfile plus any files the app may lack. Built-in
specs live next to this module; `$APPYARD_HOME/config/specs/<name>/` adds or
overrides specs without a release.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appyard.config import describe_validation_error
from appyard.errors import UserError

BUILTIN_DIR = Path(__file__).parent


class ParamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "int", "bool"] = "string"
    required: bool = False
    default: str | None = None
    description: str = ""


class Spec(BaseModel):
    """A validated spec file plus the folder it came from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    kind: Literal["proxy", "image", "build"]
    path_routing: Literal["yes", "no", "depends"] = "depends"
    strip_path: bool = False
    preserve_host: bool = True
    health_path: str = "/"
    port: int | None = Field(None, description="container port when no port param/EXPOSE")
    needs_source: bool = True
    example: str = ""
    notes: str = ""
    params: dict[str, ParamSpec] = {}
    build_args: dict[str, ParamSpec] = {}
    folder: Path = Field(Path(), exclude=True)

    def containerfile(self) -> Path | None:
        for name in ("Containerfile", "Dockerfile"):
            if (self.folder / name).is_file():
                return self.folder / name
        return None

    def validate_params(self, params: dict[str, str]) -> dict[str, str]:
        """Check required params and types; fill defaults. Extra params pass through as env."""
        out = dict(params)
        for name, p in self.params.items():
            value = out.get(name)
            if value is None or value == "":
                if p.required:
                    raise UserError(f"param {name} is a required param")
                if p.default is not None:
                    out[name] = p.default
                continue
            _check_type(f"param {name}", value, p.type)
        return out

    def validate_build_args(self, args: dict[str, str]) -> dict[str, str]:
        for name, value in args.items():
            if name in self.build_args:
                _check_type(f"build arg {name}", value, self.build_args[name].type)
        return args


def _check_type(what: str, value: str, type_: str) -> None:
    if type_ == "int":
        try:
            int(value)
        except ValueError:
            raise UserError(f"{what} must be an integer, got {value!r}") from None
    elif type_ == "bool" and value.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise UserError(f"{what} must be true or false, got {value!r}")


def load_spec(folder: Path) -> Spec:
    path = folder / "spec.toml"
    try:
        data = tomllib.loads(path.read_text())
        return Spec.model_validate({**data, "folder": folder})
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"spec file {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise UserError(f"spec file {path}: {describe_validation_error(exc)}") from None


class SpecRegistry:
    """Built-in specs overlaid with the user's spec folders."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self._specs: dict[str, Spec] = {}
        for base in (BUILTIN_DIR, user_dir):
            if base is None or not base.is_dir():
                continue
            for folder in sorted(base.iterdir()):
                if (folder / "spec.toml").is_file():
                    spec = load_spec(folder)
                    self._specs[spec.name] = spec

    def get(self, name: str) -> Spec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise UserError(f"unknown spec {name!r}; known specs: {known}") from None

    def all(self) -> list[Spec]:
        return [self._specs[n] for n in sorted(self._specs)]
