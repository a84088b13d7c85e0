"""The app model: an app, its versions, and what each version runs.

A version is immutable: every change (params, build args, options, spec,
source) makes a new one. An app points production at one version and
staging at another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appyard.apps.paths import AppPath


@dataclass(frozen=True)
class Source:
    """Where the code came from, and the snapshot appyard runs it from."""

    kind: str  # "none" | "dir" | "git"
    location: str = ""  # directory path or git URL ("" for none)
    branch: str = ""
    commit: str = ""  # the commit fetched
    pin: str = ""  # the commit the user asked for (--commit); reloads stay on it
    subdir: str = ""
    snapshot: str = ""  # directory holding the immutable copy
    digest: str = ""  # hash of the snapshot's content

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(**data)

    def describe(self) -> str:
        if self.kind == "none":
            return "-"
        ref = f"@{self.commit[:12]}" if self.commit else ""
        sub = f"#{self.subdir}" if self.subdir else ""
        return f"{self.location}{sub}{ref}"


@dataclass(frozen=True)
class AppVersion:
    app_id: str
    version: int
    spec: str
    source: Source
    params: dict[str, str] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    container_opts: dict[str, str | None] = field(default_factory=dict)
    conf: dict[str, dict[str, Any]] = field(default_factory=dict)
    dev: bool = False
    created_at: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class App:
    id: str
    path: AppPath
    prod_version: int
    stage_version: int
    approval: dict[str, list[str]] | None  # what was approved; None: never approved
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class AppView:
    """An app with the versions it serves, as the server and CLI show it."""

    app: App
    prod: AppVersion
    stage: AppVersion
