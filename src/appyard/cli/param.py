"""`appyard param update|list`: params are staged like every other change."""

from __future__ import annotations

import click

from appyard.cli.app import _client, _print_progress, dry_run_option, print_changes, promote_option
from appyard.cli.output import emit, format_option


@click.group()
def param() -> None:
    """App params (passed to the container as env vars)."""


@param.command()
@promote_option
@dry_run_option
@click.argument("name")
@click.argument("value")
@click.argument("app_path")
def update(name: str, value: str, app_path: str, promote: bool, dry_run: bool) -> None:
    """Stage NAME=VALUE for the app (VALUE - deletes the param)."""
    record = _print_progress(
        _client().stream_lines(
            "POST",
            "/v1/apps/update",
            body={
                "path": app_path,
                "kind": "param",
                "key": name,
                "value": value,
                "promote": promote,
                "dry_run": dry_run,
            },
        )
    )
    print_changes(record["result"])


@param.command("list")
@format_option
@click.argument("app_path")
def list_params(app_path: str, fmt: str) -> None:
    """Production and staged values side by side."""
    rows = _client().call("GET", "/v1/apps/params", query={"path": app_path})["params"]
    emit(
        rows,
        [("name", "NAME"), ("prod", "PRODUCTION"), ("staged", "STAGED"), ("differs", "DIFFERS")],
        fmt,
    )
