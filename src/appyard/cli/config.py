"""`appyard config show`."""

from __future__ import annotations

import click

from appyard.config import config_as_toml, config_path, load_config
from appyard.home import Home


@click.group()
def config() -> None:
    """Server configuration."""


@config.command()
@click.option("--config", "config_file", help="Config file (default $APPYARD_HOME/appyard.toml).")
def show(config_file: str | None) -> None:
    """Print the effective config (file values over defaults) as TOML."""
    home = Home.from_env()
    cfg = load_config(home, config_file)
    click.echo(
        f"# effective config; file: {config_path(home, config_file)}; APPYARD_HOME: {home.root}"
    )
    click.echo(config_as_toml(cfg))
