"""`appyard spec list`."""

from __future__ import annotations

import click

from appyard.cli.client import AdminClient
from appyard.cli.output import emit, format_option
from appyard.home import Home


@click.group()
def spec() -> None:
    """Built-in and user app specs."""


@spec.command("list")
@format_option
def list_specs(fmt: str) -> None:
    """List specs with their params and defaults."""
    specs = AdminClient(Home.from_env()).call("GET", "/v1/specs")["specs"]
    for s in specs:
        s["params_text"] = (
            ", ".join(
                f"{name}{'*' if p['required'] else ''}"
                f"{'=' + p['default'] if p.get('default') else ''}"
                for name, p in s["params"].items()
            )
            or "-"
        )
        s["args_text"] = (
            ", ".join(f"{n}={p.get('default') or ''}" for n, p in s["build_args"].items()) or "-"
        )
    emit(
        specs,
        [
            ("name", "NAME"),
            ("kind", "KIND"),
            ("params_text", "PARAMS (*=required)"),
            ("args_text", "BUILD ARGS"),
            ("path_routing", "PATH ROUTING"),
            ("description", "DESCRIPTION"),
        ],
        fmt,
    )
