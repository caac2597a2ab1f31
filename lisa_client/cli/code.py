"""Models as code: ``lisa apply``, ``lisa export`` and ``lisa import-lisa``."""

from __future__ import annotations

import sys
from typing import IO, Any

import click

from lisa_client import apply as planning
from lisa_client.cli.common import fail, output_option, report_errors, state
from lisa_client.lisa_import import convert_items, scan_table
from lisa_client.modelfile import dump, entry_of, parse
from lisa_client.output import OutputFormat, WaitDisplay, emit, stderr, stdout
from lisa_domain.schema import ModelRecord


def _records() -> list[ModelRecord]:
    found = state().client().list_models()
    records = [model for model in found if isinstance(model, ModelRecord)]
    if len(records) != len(found):
        fail("only administrators see the full model records that apply and export need")
    return records


@click.command("apply")
@click.option("-f", "--file", "handle", type=click.File(), required=True, help="the models file")
@click.option("--dry-run", is_flag=True, help="print the plan and change nothing")
@click.option("--prune", is_flag=True, help="delete models that are not in the file")
@click.option("--recreate", is_flag=True, help="allow delete-and-create for changes no route can make")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="seconds per change")
@output_option
@report_errors
def apply_command(
    handle: IO[str], dry_run: bool, prune: bool, recreate: bool, timeout: float, output: str
) -> None:
    """Make the registry match the file: print the plan, then apply it change by change.

    ``-o json|yaml`` prints the plan and the outcome as one document instead of the diff lines."""
    desired = parse(handle.read(), handle.name)
    result = planning.plan(desired, _records(), prune=prune)
    fmt = OutputFormat(output)
    report = planning.plan_data(result)
    console = stdout()
    if fmt == OutputFormat.TABLE:
        for line in planning.render(result):
            console.print(line, markup=False, highlight=False)

    def finish(message: str, *, error: bool = False, outcome: dict[str, Any] | None = None) -> None:
        """The closing message (stderr and exit 1 with ``error``); with -o json|yaml, the report."""
        if fmt != OutputFormat.TABLE:
            emit(report | (outcome or {}) | {"message": message}, fmt)
        if error:
            fail(message)
        if fmt == OutputFormat.TABLE:
            console.print(message, markup=False, highlight=False)

    if result.blockers:
        finish("nothing applied: a model is in the middle of a workflow", error=True)
    if result.empty:
        finish("no changes")
        return
    refused = ", ".join(change.model_id for change in result.refused_recreates(recreate))
    refusal = f"{refused} must be deleted and created again; pass --recreate to do that" if refused else ""
    if dry_run:
        finish(f"dry run: nothing applied{'; ' + refusal if refusal else ''}")
        return
    if refusal:
        finish(f"nothing applied: {refusal}", error=True)
    with WaitDisplay() as display:
        outcome = planning.execute(state().client(), result, timeout=timeout, on_progress=display.update)
    if fmt == OutputFormat.TABLE:
        for done in outcome.applied:
            console.print(f"applied: {done}", markup=False)
        if not outcome.ok:
            console.print(f"failed: {outcome.failed}: {outcome.error}", markup=False)
            for rest in outcome.not_applied:
                console.print(f"not applied: {rest}", markup=False)
    summary = {"applied": outcome.applied, "failed": outcome.failed, "notApplied": outcome.not_applied}
    if outcome.ok:
        finish(f"applied {len(outcome.applied)} changes", outcome=summary)
    else:
        finish(f"stopped at {outcome.failed}: {outcome.error}", error=True, outcome=summary)


@click.command("export")
@report_errors
def export_command() -> None:
    """Print the registry as a models file (lisa export > models.yaml)."""
    sys.stdout.write(dump([entry_of(record) for record in sorted(_records(), key=lambda r: r.modelId)]))


@click.command("import-lisa")
@click.option("--models-table", required=True, help="the LISA deployment's model table name")
@click.option("--region", help="its AWS region (default: boto3's)")
@click.option(
    "-f", "--file", "target", default="models.yaml", show_default=True, type=click.Path(dir_okay=False)
)
@click.option("--dry-run", is_flag=True, help="print the file instead of writing it")
@report_errors
def import_lisa_command(models_table: str, region: str | None, target: str, dry_run: bool) -> None:
    """Write a models file equivalent to a LISA deployment's models, naming what cannot be carried over."""
    result = convert_items(scan_table(models_table, region))
    text = dump(result.entries)
    errors = stderr()
    for note in result.notes:
        errors.print(f"note: {note}", markup=False, highlight=False)
    if dry_run:
        sys.stdout.write(text)
        return
    with open(target, "w") as handle:
        handle.write(text)
    errors.print(f"wrote {len(result.entries)} models to {target}", markup=False, highlight=False)
