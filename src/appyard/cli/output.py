"""Printing lists as a table, JSON or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

FORMATS = ("table", "json", "jsonl")

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


def emit(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    elif fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, default=str))
    else:
        table = [[h for _, h in columns]]
        table += [[_cell(row.get(key)) for key, _ in columns] for row in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
        for r in table:
            click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value) or "-"
