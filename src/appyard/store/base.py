"""The store interface: what the server needs from its metadata database.

Kept small and free of SQL so that another backend (PostgreSQL) can be added
without touching callers. Every method that changes more than one row is one
transaction.
"""

from __future__ import annotations

from typing import Protocol

from appyard.apps.model import App, AppVersion, AppView
from appyard.apps.paths import AppPath


class Store(Protocol):
    def create_app(self, app: App, version: AppVersion) -> None:
        """Insert an app and its first version; fails with Conflict if the path is taken."""

    def list_apps(self) -> list[AppView]: ...

    def get_app(self, app_path: AppPath) -> AppView | None: ...

    def delete_apps(self, app_ids: list[str]) -> None:
        """Delete apps with all their versions, all or nothing."""

    def add_version(self, version: AppVersion, *, stage: bool, prod: bool) -> None:
        """Insert a new version and point staging and/or production at it."""

    def set_versions(
        self, app_id: str, *, prod: int | None = None, stage: int | None = None
    ) -> None: ...

    def set_approval(self, app_id: str, approval: dict[str, list[str]]) -> None: ...

    def get_version(self, app_id: str, version: int) -> AppVersion | None: ...

    def next_version(self, app_id: str) -> int: ...

    def list_versions(self, app_id: str) -> list[AppVersion]: ...

    def close(self) -> None: ...
