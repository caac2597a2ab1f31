"""``lisa schedule get|status|set|delete``: LISA's model schedules (docs/cost-control.md)."""

from __future__ import annotations

from typing import IO

import click
from pydantic import TypeAdapter, ValidationError

from lisa_client.cli.common import output_option, report_errors, state
from lisa_client.cli.models import read_mapping
from lisa_client.modelfile import ModelFileError, problems
from lisa_client.output import OutputFormat, emit
from lisa_domain.schedule import SchedulingConfig

_SCHEDULE: TypeAdapter[SchedulingConfig] = TypeAdapter(SchedulingConfig)


@click.group()
def schedule() -> None:
    """When self-hosted models run: start and stop them on a schedule."""


@schedule.command()
@click.argument("model_id")
@output_option
@report_errors
def get(model_id: str, output: str) -> None:
    """The schedule (empty when none is set) and the next scheduled action."""
    answer = state().client().get_schedule(model_id).model_dump(mode="json")
    if OutputFormat(output) == OutputFormat.TABLE:
        scheduling = answer["scheduling"]
        answer = {
            "modelId": model_id,
            "scheduleType": scheduling.get("scheduleType", "none"),
            "timezone": scheduling.get("timezone"),
            "nextScheduledAction": answer.get("nextScheduledAction"),
        }
    emit(answer, OutputFormat(output), ("modelId", "scheduleType", "timezone", "nextScheduledAction"))


@schedule.command()
@click.argument("model_id")
@output_option
@report_errors
def status(model_id: str, output: str) -> None:
    """ACTIVE, FAILED (the last scheduled start or stop failed) or DISABLED."""
    answer = state().client().get_schedule_status(model_id).model_dump(mode="json")
    emit(answer, OutputFormat(output), ("modelId", "scheduleStatus", "scheduleType", "nextScheduledAction"))


@schedule.command("set")
@click.argument("model_id")
@click.option(
    "-f", "--file", "handle", type=click.File(), required=True, help="YAML or JSON SchedulingConfig"
)
@output_option
@report_errors
def set_schedule(model_id: str, handle: IO[str], output: str) -> None:
    """Create or replace the schedule (DAILY with dailySchedule, or RECURRING with recurringSchedule)."""
    try:
        config = _SCHEDULE.validate_python(read_mapping(handle))
    except ValidationError as error:
        raise ModelFileError(problems(error)) from error
    answer = state().client().set_schedule(model_id, config)
    emit(answer.model_dump(mode="json"), OutputFormat(output), ("modelId", "scheduleEnabled", "message"))


@schedule.command()
@click.argument("model_id")
@output_option
@report_errors
def delete(model_id: str, output: str) -> None:
    """Remove the schedule; the model stays as it is."""
    answer = state().client().delete_schedule(model_id)
    emit(answer.model_dump(mode="json"), OutputFormat(output), ("modelId", "scheduleEnabled", "message"))
