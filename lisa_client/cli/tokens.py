"""``lisa tokens create|list|revoke``."""

from __future__ import annotations

import click

from admin_api.tokens import CreateTokenRequest
from lisa_client.cli.common import output_option, report_errors, state
from lisa_client.output import OutputFormat, emit

COLUMNS = ("tokenId", "name", "username", "groups", "tokenExpiration", "expired")


@click.group()
def tokens() -> None:
    """API tokens (the value is shown once, when it is created)."""


@tokens.command()
@click.option("--username", help="whose token (default: you)")
@click.option("--group", "groups", multiple=True, help="a group the token carries (repeat for more)")
@click.option("--name", default="", help="a label to recognize the token by")
@click.option("--expires", "expiration", type=int, help="Unix seconds (default: the deployment's maximum)")
@output_option
@report_errors
def create(
    username: str | None, groups: tuple[str, ...], name: str, expiration: int | None, output: str
) -> None:
    """Create a token and print its value (the only time it is shown)."""
    request = CreateTokenRequest(
        username=username, groups=list(groups) or None, name=name, tokenExpiration=expiration
    )
    created = state().client().create_token(request)
    emit(created.model_dump(mode="json"), OutputFormat(output), ("token", *COLUMNS))


@tokens.command("list")
@click.option("--username", help="admins: this user's tokens")
@output_option
@report_errors
def list_tokens(username: str | None, output: str) -> None:
    """Your tokens (admins: every token)."""
    found = state().client().list_tokens(username)
    emit([token.model_dump(mode="json") for token in found], OutputFormat(output), COLUMNS)


@tokens.command()
@click.argument("token_id")
@output_option
@report_errors
def revoke(token_id: str, output: str) -> None:
    """Revoke a token (it stops working at once on the serve API)."""
    emit(state().client().revoke_token(token_id).model_dump(mode="json"), OutputFormat(output), COLUMNS)
