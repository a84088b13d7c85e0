"""`appyard server start|stop`."""

from __future__ import annotations

import os
import time

import click

from appyard.cli.client import AdminClient
from appyard.config import load_config
from appyard.home import Home


@click.group()
def server() -> None:
    """Run or stop the appyard server."""


@server.command()
@click.option("--config", "config_file", help="Config file (default $APPYARD_HOME/appyard.toml).")
def start(config_file: str | None) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM or `appyard server stop`."""
    from appyard.server.main import run_server

    home = Home.from_env()
    run_server(load_config(home, config_file), home)


@server.command()
@click.option("--wait/--no-wait", default=True, help="Wait until the server has exited.")
def stop(wait: bool) -> None:
    """Ask the running server to shut down cleanly."""
    home = Home.from_env()
    AdminClient(home).call("POST", "/v1/server/stop")
    deadline = time.monotonic() + 60
    while wait and os.path.exists(home.socket_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    click.echo("server stopped" if wait else "server stopping")
