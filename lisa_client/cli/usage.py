"""``lisa usage``: metered usage (administrators: everyone's; ``--me``: your own)."""

from __future__ import annotations

import click

from lisa_client.cli.common import output_option, report_errors, state
from lisa_client.output import OutputFormat, emit

COUNTERS = ("requests", "errors", "promptTokens", "completionTokens", "totalTokens")


@click.command()
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day (UTC; default: the 1st of this month)")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day, inclusive (UTC; default: today)")
@click.option(
    "--group-by",
    type=click.Choice(["user", "model", "group"]),
    default="user",
    show_default=True,
    help="administrators: total per user, model or group",
)
@click.option("--me", is_flag=True, help="your own usage per day and model (any caller)")
@output_option
@report_errors
def usage(start: str | None, end: str | None, group_by: str, me: bool, output: str) -> None:
    """Requests, errors and tokens metered by the serve API."""
    fmt = OutputFormat(output)
    client = state().client()
    if me:
        mine = client.my_usage(start, end)
        if fmt == OutputFormat.TABLE:
            emit(mine.model_dump(mode="json")["usage"], fmt, ("day", "model", *COUNTERS))
        else:
            emit(mine.model_dump(mode="json", by_alias=True), fmt)
        return
    answer = client.usage(start, end, group_by)
    if fmt == OutputFormat.TABLE:
        emit(answer.model_dump(mode="json")["usage"], fmt, (group_by, *COUNTERS))
    else:
        emit(answer.model_dump(mode="json", by_alias=True, exclude_none=True), fmt)
