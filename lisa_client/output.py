"""How the CLI prints: tables (rich) by default, ``--output json|yaml`` for scripts, and the live
progress of waits on stderr (one updating line per model on a terminal, a line per status change
otherwise). rich leaves out colour when ``NO_COLOR`` is set or the output is not a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from types import TracebackType
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from lisa_domain.schema import ModelRecord, ModelSummary


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def stdout() -> Console:
    return Console(soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def emit(data: Any, fmt: OutputFormat, columns: Sequence[str] = ()) -> None:
    """``data`` (a mapping or a list of mappings) in the chosen format; a table shows ``columns``."""
    if fmt == OutputFormat.JSON:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt == OutputFormat.YAML:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        rows = data if isinstance(data, list) else [data]
        table = Table(*columns, box=None, header_style="bold")
        for row in rows:
            table.add_row(*("" if row.get(name) is None else str(row.get(name)) for name in columns))
        stdout().print(table)


class WaitDisplay:
    """One display for every model being waited on: status, elapsed seconds, and the workflow step
    (the model's ``statusReason`` while a workflow runs)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stderr()
        self._rows: dict[str, tuple[str, float, str]] = {}
        self._live: Live | None = None

    def __enter__(self) -> WaitDisplay:
        if self.console.is_terminal:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, trace)

    def _table(self) -> Table:
        table = Table("model", "status", "elapsed", "step", box=None, header_style="bold")
        for model_id, (status, elapsed, step) in self._rows.items():
            table.add_row(model_id, status, f"{elapsed:.0f}s", step)
        return table

    def update(self, model_id: str, model: ModelRecord | ModelSummary | None, elapsed: float) -> None:
        status = "deleted" if model is None else model.status.value
        step = (model.statusReason or "") if isinstance(model, ModelRecord) else ""
        previous = self._rows.get(model_id)
        self._rows[model_id] = (status, elapsed, step)
        if self._live is not None:
            self._live.update(self._table())
        elif previous is None or previous[0] != status or previous[2] != step:
            line = f"{model_id}: {status} ({elapsed:.0f} s)"
            self.console.print(line + (f": {step}" if step else ""), markup=False, highlight=False)
