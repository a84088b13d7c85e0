"""Where appyard keeps its files. Everything lives under `$APPYARD_HOME` (default ~/.appyard)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        raw = os.environ.get("APPYARD_HOME") or str(Path.home() / ".appyard")
        return cls(Path(raw).expanduser().resolve())

    @property
    def config_file(self) -> Path:
        return self.root / "appyard.toml"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def certs_dir(self) -> Path:
        return self.config_dir / "certificates"

    @property
    def user_specs_dir(self) -> Path:
        return self.config_dir / "specs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "appyard.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "appyard.pid"

    @property
    def db_path(self) -> Path:
        return self.root / "metadata" / "appyard.db"

    @property
    def sources_dir(self) -> Path:
        """Immutable per-version source snapshots."""
        return self.root / "sources"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def instance_id(self) -> str:
        """Stable id of this appyard installation, used to label (and find) its containers.

        Derived from the home path so two servers with different homes never touch
        each other's containers.
        """
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:10]

    def ensure(self) -> None:
        for d in (
            self.config_dir,
            self.run_dir,
            self.db_path.parent,
            self.sources_dir,
            self.logs_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
