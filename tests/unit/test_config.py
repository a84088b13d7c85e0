import pytest

from appyard.config import (
    AppConfig,
    ServerConfig,
    config_as_toml,
    effective_app_config,
    load_config,
    parse_conf_overrides,
)
from appyard.errors import UserError
from appyard.home import Home


def _load(tmp_path, text: str) -> ServerConfig:
    (tmp_path / "appyard.toml").write_text(text)
    return load_config(Home(tmp_path))


def test_defaults_without_file(tmp_path) -> None:
    cfg = load_config(Home(tmp_path))
    assert cfg.http.port == 25222 and cfg.https.port == 25223 and cfg.http.host == "127.0.0.1"
    assert cfg.app_config.container.idle_shutdown_secs == 180


def test_values_and_app_config_sections(tmp_path) -> None:
    cfg = _load(tmp_path, "[http]\nport = 9000\n[app_config]\ncontainer.idle_shutdown_secs = 30\n")
    assert cfg.http.port == 9000 and cfg.app_config.container.idle_shutdown_secs == 30


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[http]\nport = "80"\n', "http.port: Input should be a valid integer"),
        ("[http]\nprot = 80\n", "unknown key http.prot"),
        ("[nope]\n", "unknown key nope"),
        ('[container]\ncommand = "lxc"\n', "container.command"),
        ("[http\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        _load(tmp_path, text)


def test_explicit_missing_file(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_config(Home(tmp_path), str(tmp_path / "missing.toml"))


def test_conf_overrides_are_typed_and_merged() -> None:
    overrides = parse_conf_overrides(["container.idle_shutdown_secs=3", "proxy.strip_path=true"])
    assert overrides == {"container": {"idle_shutdown_secs": 3.0}, "proxy": {"strip_path": True}}
    merged = effective_app_config(AppConfig(), overrides)
    assert merged.container.idle_shutdown_secs == 3.0 and merged.proxy.strip_path is True
    assert merged.container.health_url is None


@pytest.mark.parametrize(
    "item",
    ["nodots=1", "container.nope=1", "a.b.c=1", "novalue", "container.idle_shutdown_secs=-1"],
)
def test_bad_conf_overrides(item: str) -> None:
    with pytest.raises(UserError):
        parse_conf_overrides([item])


def test_toml_rendering_round_trips(tmp_path) -> None:
    text = config_as_toml(ServerConfig())
    assert _load(tmp_path, text) == ServerConfig()
