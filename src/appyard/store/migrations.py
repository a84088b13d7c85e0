"""Schema migrations, applied in order at start. Append; never edit a released step."""

MIGRATIONS: list[str] = [
    # 1: apps and their immutable versions
    """
    CREATE TABLE apps (
        id            TEXT PRIMARY KEY,
        domain        TEXT NOT NULL,
        path          TEXT NOT NULL,
        prod_version  INTEGER NOT NULL,
        stage_version INTEGER NOT NULL,
        approval      TEXT,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        UNIQUE (domain, path)
    );
    CREATE TABLE app_versions (
        app_id         TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        version        INTEGER NOT NULL,
        spec           TEXT NOT NULL,
        source         TEXT NOT NULL,
        params         TEXT NOT NULL,
        build_args     TEXT NOT NULL,
        container_opts TEXT NOT NULL,
        conf           TEXT NOT NULL,
        dev            INTEGER NOT NULL DEFAULT 0,
        created_at     REAL NOT NULL,
        note           TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (app_id, version)
    );
    """,
]
