"""The `appyard` command line. Every command talks to the server's admin socket."""

from __future__ import annotations

import sys

import click

from appyard import __version__
from appyard.cli import app as app_cmds
from appyard.cli import config as config_cmds
from appyard.cli import param as param_cmds
from appyard.cli import server as server_cmds
from appyard.cli import spec as spec_cmds
from appyard.cli import version as version_cmds
from appyard.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="appyard")
def cli() -> None:
    """appyard: run web apps from source or images, started on demand, stopped when idle."""


cli.add_command(server_cmds.server)
cli.add_command(app_cmds.app)
cli.add_command(spec_cmds.spec)
cli.add_command(config_cmds.config)
cli.add_command(param_cmds.param)
cli.add_command(version_cmds.version)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
