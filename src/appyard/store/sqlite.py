"""SQLite store: WAL journal, foreign keys on, one transaction per change."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appyard.apps.model import App, AppVersion, AppView, Source
from appyard.apps.paths import AppPath
from appyard.errors import Conflict
from appyard.store.migrations import MIGRATIONS


class SqliteStore:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (0)")
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute("UPDATE schema_version SET version = ?", (number,))

    @property
    def schema_version(self) -> int:
        return self._db.execute("SELECT version FROM schema_version").fetchone()[0]

    # -- apps -------------------------------------------------------------

    def create_app(self, app: App, version: AppVersion) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO apps VALUES (?,?,?,?,?,?,?,?)",
                    (
                        app.id,
                        app.path.domain,
                        app.path.path,
                        app.prod_version,
                        app.stage_version,
                        _json_or_null(app.approval),
                        app.created_at,
                        app.updated_at,
                    ),
                )
                self._insert_version(db, version)
        except sqlite3.IntegrityError:
            raise Conflict(f"app {app.path} already exists") from None

    def list_apps(self) -> list[AppView]:
        rows = self._db.execute("SELECT * FROM apps ORDER BY domain, path").fetchall()
        versions = {
            (r["app_id"], r["version"]): _version_from_row(r)
            for r in self._db.execute(
                "SELECT v.* FROM app_versions v JOIN apps a ON a.id = v.app_id "
                "WHERE v.version IN (a.prod_version, a.stage_version)"
            )
        }
        return [
            AppView(
                app, versions[(app.id, app.prod_version)], versions[(app.id, app.stage_version)]
            )
            for app in map(_app_from_row, rows)
        ]

    def get_app(self, app_path: AppPath) -> AppView | None:
        row = self._db.execute(
            "SELECT * FROM apps WHERE domain = ? AND path = ?", (app_path.domain, app_path.path)
        ).fetchone()
        if row is None:
            return None
        app = _app_from_row(row)
        return AppView(
            app,
            self._get_version(app.id, app.prod_version),
            self._get_version(app.id, app.stage_version),
        )

    def delete_apps(self, app_ids: list[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM apps WHERE id = ?", [(i,) for i in app_ids])

    # -- versions ---------------------------------------------------------

    def add_version(self, version: AppVersion, *, stage: bool, prod: bool) -> None:
        with self._tx() as db:
            self._insert_version(db, version)
            if stage:
                db.execute(
                    "UPDATE apps SET stage_version = ?, updated_at = ? WHERE id = ?",
                    (version.version, version.created_at, version.app_id),
                )
            if prod:
                db.execute(
                    "UPDATE apps SET prod_version = ?, updated_at = ? WHERE id = ?",
                    (version.version, version.created_at, version.app_id),
                )

    def set_versions(
        self, app_id: str, *, prod: int | None = None, stage: int | None = None
    ) -> None:
        with self._tx() as db:
            if prod is not None:
                db.execute(
                    "UPDATE apps SET prod_version = ?, updated_at = ? WHERE id = ?",
                    (prod, time.time(), app_id),
                )
            if stage is not None:
                db.execute(
                    "UPDATE apps SET stage_version = ?, updated_at = ? WHERE id = ?",
                    (stage, time.time(), app_id),
                )

    def set_approval(self, app_id: str, approval: dict[str, list[str]]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE apps SET approval = ?, updated_at = ? WHERE id = ?",
                (json.dumps(approval), time.time(), app_id),
            )

    def get_version(self, app_id: str, version: int) -> AppVersion | None:
        row = self._db.execute(
            "SELECT * FROM app_versions WHERE app_id = ? AND version = ?", (app_id, version)
        ).fetchone()
        return _version_from_row(row) if row else None

    def list_versions(self, app_id: str) -> list[AppVersion]:
        rows = self._db.execute(
            "SELECT * FROM app_versions WHERE app_id = ? ORDER BY version", (app_id,)
        )
        return [_version_from_row(r) for r in rows]

    def next_version(self, app_id: str) -> int:
        row = self._db.execute(
            "SELECT MAX(version) FROM app_versions WHERE app_id = ?", (app_id,)
        ).fetchone()
        return (row[0] or 0) + 1

    def close(self) -> None:
        self._db.close()

    def _get_version(self, app_id: str, version: int) -> AppVersion:
        row = self._db.execute(
            "SELECT * FROM app_versions WHERE app_id = ? AND version = ?", (app_id, version)
        ).fetchone()
        return _version_from_row(row)

    @staticmethod
    def _insert_version(db: sqlite3.Connection, v: AppVersion) -> None:
        db.execute(
            "INSERT INTO app_versions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                v.app_id,
                v.version,
                v.spec,
                json.dumps(v.source.to_dict()),
                json.dumps(v.params),
                json.dumps(v.build_args),
                json.dumps(v.container_opts),
                json.dumps(v.conf),
                int(v.dev),
                v.created_at,
                v.note,
            ),
        )


def _app_from_row(row: sqlite3.Row) -> App:
    return App(
        id=row["id"],
        path=AppPath(row["domain"], row["path"]),
        prod_version=row["prod_version"],
        stage_version=row["stage_version"],
        approval=json.loads(row["approval"]) if row["approval"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _version_from_row(row: sqlite3.Row) -> AppVersion:
    return AppVersion(
        app_id=row["app_id"],
        version=row["version"],
        spec=row["spec"],
        source=Source.from_dict(json.loads(row["source"])),
        params=json.loads(row["params"]),
        build_args=json.loads(row["build_args"]),
        container_opts=json.loads(row["container_opts"]),
        conf=json.loads(row["conf"]),
        dev=bool(row["dev"]),
        created_at=row["created_at"],
        note=row["note"],
    )


def _json_or_null(value: object) -> str | None:
    return None if value is None else json.dumps(value)
