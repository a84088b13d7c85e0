"""`appyard app ...`: create, list, delete, reload, logs."""

from __future__ import annotations

import sys
from typing import Any

import click

from appyard.cli.client import AdminClient
from appyard.cli.output import emit, format_option
from appyard.errors import UserError
from appyard.home import Home


def _client() -> AdminClient:
    return AdminClient(Home.from_env())


def _print_progress(records: Any) -> dict[str, Any]:
    """Echo progress lines as they stream in; return the final record."""
    for record in records:
        if "line" in record:
            click.echo(record["line"], err=True)
        elif "error" in record:
            raise UserError(record["error"])
        else:
            return record
    raise UserError("the server closed the stream before finishing")


@click.group()
def app() -> None:
    """Create and manage apps."""


@app.command()
@click.option("--spec", help="App spec (see: appyard spec list).")
@click.option("--approve", is_flag=True, help="Approve what the app asks for.")
@click.option("--dev", is_flag=True, help="Run from the live directory; rebuild on change.")
@click.option("--branch", default="", help="Git branch (default: the remote's default).")
@click.option("--commit", default="", help="Git commit to use.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="App param (env var).")
@click.option(
    "--conf",
    "conf",
    multiple=True,
    metavar="K=V",
    help="App config, e.g. container.idle_shutdown_secs=60.",
)
@click.option("--carg", "cargs", multiple=True, metavar="K=V", help="Container build arg.")
@click.option(
    "--copt",
    "copts",
    multiple=True,
    metavar="K[=V]",
    help="Container option, e.g. cpu-shares=1000.",
)
@click.option("--wait", is_flag=True, help="Build and start now, showing progress.")
@format_option
@click.argument("source")
@click.argument("app_path")
def create(source: str, app_path: str, fmt: str, wait: bool, **opts: Any) -> None:
    """Create an app at APP_PATH ([domain:]/path) from SOURCE (a directory, git URL, or -)."""
    body = {
        "path": app_path,
        "source": source,
        "spec": opts["spec"],
        "approve": opts["approve"],
        "dev": opts["dev"],
        "branch": opts["branch"],
        "commit": opts["commit"],
        "params": list(opts["params"]),
        "conf": list(opts["conf"]),
        "cargs": list(opts["cargs"]),
        "copts": list(opts["copts"]),
    }
    client = _client()
    if wait:
        record = _print_progress(
            client.stream_lines("POST", "/v1/apps", body={**body, "wait": True})
        )
        created = record["result"]["app"]
    else:
        created = client.call("POST", "/v1/apps", body=body)["app"]
    if fmt == "table":
        click.echo(f"created app {created['path']} (spec {created['spec']}, id {created['id']})")
    else:
        emit([created], [], fmt)


_LIST_COLUMNS = [
    ("path", "PATH"),
    ("spec", "SPEC"),
    ("state", "STATE"),
    ("version", "VERSION"),
    ("approved", "APPROVED"),
    ("source", "SOURCE"),
    ("image", "IMAGE"),
    ("last_start_secs", "LAST START (s)"),
]


@app.command("list")
@format_option
@click.argument("glob", default="all")
def list_apps(glob: str, fmt: str) -> None:
    """List apps matching GLOB (* within a segment, ** across, 'all')."""
    apps = _client().call("GET", "/v1/apps", query={"glob": glob})["apps"]
    emit(apps, _LIST_COLUMNS, fmt)


@app.command()
@click.argument("glob")
def delete(glob: str) -> None:
    """Delete apps matching GLOB, with their containers."""
    deleted = _client().call("DELETE", "/v1/apps", query={"glob": glob})["deleted"]
    for path in deleted:
        click.echo(f"deleted app {path}")


dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show what would change; change nothing."
)
promote_option = click.option(
    "--promote", is_flag=True, help="Promote to production at once (after it is healthy)."
)


def print_changes(result: dict[str, Any]) -> None:
    """One line per change, e.g. `/app: param X: 'a' -> 'b' (staging, version 3)`."""
    prefix = "would change " if result.get("dry_run") else ""
    where = result.get("applies_to")
    suffix = f" ({where}, version {result['version']})" if where else ""
    if not result.get("changes"):
        click.echo(f"{result['path']}: {result.get('note', 'no change')}")
    for change in result.get("changes", []):
        click.echo(f"{prefix}{result['path']}: {change}{suffix}")


@app.command()
@promote_option
@dry_run_option
@click.option(
    "--restart", is_flag=True, help="Recreate the containers (secrets are resolved again)."
)
@click.argument("glob")
def reload(glob: str, promote: bool, dry_run: bool, restart: bool) -> None:
    """Fetch the source again (a change is staged), then build and start now, with progress."""
    record = _print_progress(
        _client().stream_lines(
            "POST",
            "/v1/apps/reload",
            body={"glob": glob, "promote": promote, "dry_run": dry_run, "restart": restart},
        )
    )
    for result in record["result"]["changes"]:
        print_changes(result)
    for a in record["result"].get("apps", []):
        click.echo(f"{a['path']}: {a['state']}")


@app.command("update-metadata")
@promote_option
@dry_run_option
@click.argument("kind", type=click.Choice(["carg", "copt", "spec", "conf"]))
@click.argument("setting")
@click.argument("app_path")
def update_metadata(kind: str, setting: str, app_path: str, promote: bool, dry_run: bool) -> None:
    """Stage a change: carg K=V, copt K[=V], spec NAME or conf K=V (value - deletes)."""
    key, sep, value = setting.partition("=")
    if kind == "spec":
        key, value = setting, None
    elif kind in ("carg", "conf") and not sep:
        raise UserError(f"{kind} takes KEY=VALUE (- as the value deletes)")
    body = {
        "path": app_path,
        "kind": kind,
        "key": key,
        "value": value if sep else None,
        "promote": promote,
        "dry_run": dry_run,
    }
    if kind == "copt" and not sep:
        body["value"] = None
    record = _print_progress(_client().stream_lines("POST", "/v1/apps/update", body=body))
    print_changes(record["result"])


@app.command()
@dry_run_option
@click.argument("glob")
def promote(glob: str, dry_run: bool) -> None:
    """Point production at the staged version (zero-downtime for running apps)."""
    record = _print_progress(
        _client().stream_lines("POST", "/v1/apps/promote", body={"glob": glob, "dry_run": dry_run})
    )
    for result in record["result"]["apps"]:
        print_changes(result)


@app.command()
@dry_run_option
@click.argument("app_path")
def approve(app_path: str, dry_run: bool) -> None:
    """Approve what the app's versions ask for (spec, container options, secrets)."""
    print_changes(
        _client().call("POST", "/v1/apps/approve", body={"path": app_path, "dry_run": dry_run})
    )


@app.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing new log lines.")
@click.option("--lines", "-n", default=100, show_default=True, help="Lines of history.")
@click.argument("app_path")
def logs(app_path: str, follow: bool, lines: int) -> None:
    """Show the last build log and the container log of an app."""
    client = AdminClient(Home.from_env(), timeout=None)
    for chunk in client.stream_raw(
        "/v1/apps/logs", {"path": app_path, "lines": lines, "follow": "1" if follow else "0"}
    ):
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
