import time

import pytest

from appyard.apps.model import App, AppVersion, Source
from appyard.apps.paths import parse_app_path
from appyard.apps.plan import exposed_port
from appyard.errors import Conflict, UserError
from appyard.specs import SpecRegistry
from appyard.store import SqliteStore


def test_builtin_specs_load() -> None:
    specs = SpecRegistry()
    assert {"proxy", "image", "container"} <= {s.name for s in specs.all()}
    with pytest.raises(UserError, match="unknown spec 'x'; known specs: "):
        specs.get("x")


def test_param_validation() -> None:
    image = SpecRegistry().get("image")
    with pytest.raises(UserError, match="param image is a required param"):
        image.validate_params({"port": "80"})
    with pytest.raises(UserError, match="param port must be an integer"):
        image.validate_params({"image": "nginx", "port": "eighty"})
    assert image.validate_params({"image": "nginx", "port": "80", "X": "y"})["X"] == "y"


def test_user_spec_folder_overrides(tmp_path) -> None:
    folder = tmp_path / "proxy"
    folder.mkdir()
    (folder / "spec.toml").write_text('name = "proxy"\nkind = "proxy"\ndescription = "mine"\n')
    assert SpecRegistry(tmp_path).get("proxy").description == "mine"
    (folder / "spec.toml").write_text('name = "proxy"\nkind = "proxy"\nbogus = 1\n')
    with pytest.raises(UserError, match="unknown key bogus"):
        SpecRegistry(tmp_path)


def test_exposed_port(tmp_path) -> None:
    f = tmp_path / "Containerfile"
    f.write_text("FROM x\nEXPOSE 80\nexpose 8080/tcp 9000\n")
    assert exposed_port(f) == 9000
    f.write_text("FROM x\n")
    assert exposed_port(f) is None


def _app(store: SqliteStore, path: str, app_id: str) -> None:
    now = time.time()
    store.create_app(
        App(app_id, parse_app_path(path), 1, 1, True, now, now),
        AppVersion(app_id, 1, "proxy", Source("none"), {"url": "http://x"}),
    )


def test_store_crud_and_transactions(tmp_path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    assert store.schema_version == 1
    _app(store, "/a", "id1")
    _app(store, "d.com:/", "id2")
    with pytest.raises(Conflict):
        _app(store, "/a", "id3")
    assert store.list_versions("id3") == []  # the failed create left nothing behind
    view = store.get_app(parse_app_path("/a"))
    assert view is not None and view.prod.params == {"url": "http://x"}
    v2 = AppVersion("id1", 2, "proxy", Source("none"), {"url": "http://y"}, created_at=1.0)
    store.add_version(v2, stage=True, prod=False)
    view = store.get_app(parse_app_path("/a"))
    assert view.app.stage_version == 2 and view.prod.params["url"] == "http://x"
    store.delete_apps(["id1"])
    assert store.list_versions("id1") == []  # versions cascade
    assert [str(v.app.path) for v in store.list_apps()] == ["d.com:/"]
    store.close()
    assert SqliteStore(tmp_path / "db.sqlite").schema_version == 1  # migrations idempotent
