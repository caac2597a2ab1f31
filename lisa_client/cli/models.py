"""``lisa models list|get|create|update|start|stop|delete``."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import click
import yaml
from pydantic import ValidationError

from lisa_client.cli.common import output_option, report_errors, state, wait_options, wait_until
from lisa_client.client import LisaClient
from lisa_client.modelfile import ModelFileError, parse_entry, problems
from lisa_client.output import OutputFormat, emit
from lisa_domain.schema import ModelRecord, ModelStatus, ModelSummary, UpdateModelRequest

COLUMNS = ("modelId", "modelName", "modelType", "status", "enabled", "statusReason")


def _show(model: ModelRecord | ModelSummary | None, output: str) -> None:
    """The model; None (a wait that ended with the model deleted) prints nothing on stdout."""
    if model is None:
        click.echo("deleted", err=True)
        return
    emit(model.model_dump(mode="json"), OutputFormat(output), COLUMNS)


def read_mapping(handle: IO[str]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(handle.read())
    except yaml.YAMLError as error:
        raise ModelFileError(f"{handle.name}: not valid YAML or JSON: {error}") from error
    if not isinstance(data, dict):
        raise ModelFileError(f"{handle.name}: expected one mapping of fields")
    return data


@click.group()
def models() -> None:
    """Register, change, start, stop and delete models."""


@models.command("list")
@output_option
@report_errors
def list_models(output: str) -> None:
    """Every model you may see."""
    emit([m.model_dump(mode="json") for m in state().client().list_models()], OutputFormat(output), COLUMNS)


@models.command()
@click.argument("model_id")
@output_option
@report_errors
def get(model_id: str, output: str) -> None:
    """One model."""
    _show(state().client().get_model(model_id), output)


@models.command()
@click.option("-f", "--file", "handle", type=click.File(), required=True, help="YAML or JSON create body")
@wait_options
@output_option
@report_errors
def create(handle: IO[str], wait: bool, timeout: float, output: str) -> None:
    """Register a model (apiKey as {fromEnv: NAME} or {fromSecretsManager: ARN})."""
    desired = parse_entry(read_mapping(handle))
    if desired.enabled is not None:
        raise ModelFileError("enabled: not part of a create; use lisa models stop after it is InService")
    request = desired.request
    if desired.api_key is not None:
        request = request.model_copy(update={"apiKey": desired.api_key.resolve()})
    client = state().client()
    model: ModelRecord | ModelSummary | None = client.create_model(request)
    if wait:
        model = wait_until(client, request.modelId, ModelStatus.IN_SERVICE, timeout)
    _show(model, output)


@models.command()
@click.argument("model_id")
@click.option("-f", "--file", "handle", type=click.File(), required=True, help="YAML or JSON update body")
@wait_options
@output_option
@report_errors
def update(model_id: str, handle: IO[str], wait: bool, timeout: float, output: str) -> None:
    """Change a model (the fields of PUT /models/{modelId})."""
    try:
        request = UpdateModelRequest.model_validate(read_mapping(handle))
    except ValidationError as error:
        raise ModelFileError(problems(error, "body")) from error
    client = state().client()
    before = client.get_model(model_id).status
    model: ModelRecord | ModelSummary | None = client.update_model(model_id, request)
    if wait:
        target = before
        if request.enabled is not None:
            target = ModelStatus.IN_SERVICE if request.enabled else ModelStatus.STOPPED
        model = wait_until(client, model_id, target, timeout)
    _show(model, output)


def _lifecycle_command(
    name: str, call: Callable[[LisaClient, str], ModelRecord], settled: ModelStatus | None, help_text: str
) -> None:
    """``lisa models NAME MODEL_ID``: ``call`` starts the workflow; --wait follows the model until it
    is ``settled`` (None: deleted)."""

    @models.command(name, help=help_text)
    @click.argument("model_id")
    @wait_options
    @output_option
    @report_errors
    def command(model_id: str, wait: bool, timeout: float, output: str) -> None:
        client = state().client()
        model = call(client, model_id)
        _show(wait_until(client, model_id, settled, timeout) if wait else model, output)


_lifecycle_command("start", LisaClient.start_model, ModelStatus.IN_SERVICE, "Start a stopped model.")
_lifecycle_command(
    "stop", LisaClient.stop_model, ModelStatus.STOPPED, "Stop a model (it keeps its configuration)."
)
_lifecycle_command("delete", LisaClient.delete_model, None, "Delete a model and everything it runs on.")
