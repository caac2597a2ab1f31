"""The ``lisa`` command: ``lisa --help`` lists the commands; see docs/cli.md."""

from __future__ import annotations

import click

from lisa_client.cli.code import apply_command, export_command, import_lisa_command
from lisa_client.cli.common import State
from lisa_client.cli.login import login, logout
from lisa_client.cli.models import models
from lisa_client.cli.preflight import preflight
from lisa_client.cli.schedule import schedule
from lisa_client.cli.tokens import tokens
from lisa_client.cli.usage import usage


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--admin-url", envvar="LISA_ADMIN_URL", help="the admin API (env LISA_ADMIN_URL)")
@click.option("--token", envvar="LISA_TOKEN", help="an API token or JWT (env LISA_TOKEN)")
@click.option("--serve-url", envvar="LISA_SERVE_URL", help="the serve API (env LISA_SERVE_URL)")
@click.option("--local", is_flag=True, help="connect to local mode (reads .lisa/local.json)")
@click.pass_context
def main(
    context: click.Context, admin_url: str | None, token: str | None, serve_url: str | None, local: bool
) -> None:
    """Manage a LISA deployment's models, schedules and API tokens; read its usage."""
    context.obj = State(admin_url, token, serve_url, local)


for _command in (
    models,
    tokens,
    schedule,
    usage,
    apply_command,
    export_command,
    import_lisa_command,
    login,
    logout,
    preflight,
):
    main.add_command(_command)
