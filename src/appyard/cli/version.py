"""`appyard version list|switch|revert`."""

from __future__ import annotations

import click

from appyard.cli.app import _client, _print_progress, dry_run_option, print_changes
from appyard.cli.output import emit, format_option


@click.group()
def version() -> None:
    """App versions: list, switch production, revert."""


@version.command("list")
@format_option
@click.argument("app_path")
def list_versions(app_path: str, fmt: str) -> None:
    """Every version of the app, with what each changed."""
    rows = _client().call("GET", "/v1/apps/versions", query={"path": app_path})["versions"]
    emit(
        rows,
        [
            ("version", "VERSION"),
            ("serving", "SERVING"),
            ("spec", "SPEC"),
            ("note", "CHANGE"),
            ("source", "SOURCE"),
        ],
        fmt,
    )


def _switch(app_path: str, target: str, dry_run: bool) -> None:
    record = _print_progress(
        _client().stream_lines(
            "POST",
            "/v1/apps/switch",
            body={"path": app_path, "version": target, "dry_run": dry_run},
        )
    )
    print_changes(record["result"])


@version.command()
@dry_run_option
@click.argument("version_number")
@click.argument("app_path")
def switch(version_number: str, app_path: str, dry_run: bool) -> None:
    """Point production at VERSION (no rebuild while its image exists)."""
    _switch(app_path, version_number, dry_run)


@version.command()
@dry_run_option
@click.argument("app_path")
def revert(app_path: str, dry_run: bool) -> None:
    """Point production at the version before the current one."""
    _switch(app_path, "previous", dry_run)
