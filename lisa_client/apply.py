"""``lisa apply``: the plan (what differs between the file and the registry) and its execution.

A plan has one change per model that differs: ``create`` (not in the registry), ``update`` (only
fields ``PUT /models/{id}``, its ``/context-window`` or ``/schedule`` routes can change, and
``enabled``),
``recreate`` (a field no route can change, or a Failed model: delete, then create; refused unless
asked for) and ``delete`` (in the registry, not in the file: only with prune). Computing the plan
calls nothing that changes anything; a plan with no changes means no mutating call at all.

Execution is sequential: each change's calls, then a wait until its workflow settles; the first
failure stops the run, and the result says what was applied and what was not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lisa_client.client import LisaClient, ProgressCallback
from lisa_client.errors import LisaClientError
from lisa_client.modelfile import DesiredModel
from lisa_domain.schema import (
    DELETABLE_STATES,
    MARKED_FOR_DELETION,
    METADATA_UPDATE_FIELDS,
    ContainerConfigUpdate,
    ModelDefinition,
    ModelRecord,
    ModelStatus,
    UpdateModelRequest,
)

#: Fields the server fills when the create request leaves them out: compared only when the file sets them.
SERVER_FILLED = frozenset({"contextWindow"})
#: Paths ``PUT /models/{id}`` updates as they are (the metadata fields, ``fallbacks`` among them).
METADATA_PATHS = frozenset(METADATA_UPDATE_FIELDS)
#: autoScalingConfig.<name> -> autoScalingInstanceConfig.<name>.
SCALING_NAMES = frozenset(
    {"minCapacity", "maxCapacity", "desiredCapacity", "cooldown", "defaultInstanceWarmup"}
)
#: autoScalingConfig.<this> is set and deleted through the schedule routes.
SCHEDULE_FIELD = "scheduling"
#: containerConfig.healthCheckConfig.<name> -> containerConfig.<update field>.
HEALTH_CHECK_FIELDS = {
    "command": "healthCheckCommand",
    "interval": "healthCheckInterval",
    "timeout": "healthCheckTimeout",
    "startPeriod": "healthCheckStartPeriod",
    "retries": "healthCheckRetries",
}


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"
    DELETE = "delete"


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass
class Change:
    action: Action
    model_id: str
    diffs: list[FieldChange] = field(default_factory=list)
    desired: DesiredModel | None = None
    current: ModelRecord | None = None
    #: Why a recreate is needed (fields no route can change, or the model's status).
    reasons: list[str] = field(default_factory=list)
    update: UpdateModelRequest | None = None
    context_window: int | None = None
    #: Set or delete the schedule (``autoScalingConfig.scheduling``) through the schedule routes.
    schedule_changed: bool = False
    enabled: bool | None = None


@dataclass
class Plan:
    changes: list[Change]
    #: Models in the registry but not in the file, kept because prune was not asked for.
    kept: list[str] = field(default_factory=list)
    #: Problems that make the plan impossible to apply as it stands (a model mid-workflow).
    blockers: list[str] = field(default_factory=list)
    #: Worth knowing, changes nothing (a Failed model that matches the file).
    notices: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def refused_recreates(self, allow_recreate: bool) -> list[Change]:
        return [] if allow_recreate else [c for c in self.changes if c.action == Action.RECREATE]


# ---- diffing ------------------------------------------------------------------------------------
_ABSENT = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted paths (lists and scalars are leaves; an empty mapping has none, so
    adding the first environment variable is one added path, not a changed mapping)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat |= flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: value}


def definition_diff(desired: DesiredModel, current: ModelRecord) -> list[FieldChange]:
    want = desired.definition().model_dump(mode="json")
    have = ModelDefinition.model_validate(
        current.model_dump(include=set(ModelDefinition.model_fields))
    ).model_dump(mode="json")
    for name in SERVER_FILLED - desired.given:
        want.pop(name, None)
        have.pop(name, None)
    flat_want, flat_have = flatten(want), flatten(have)
    diffs = []
    for path in sorted(set(flat_want) | set(flat_have)):
        before, after = flat_have.get(path, _ABSENT), flat_want.get(path, _ABSENT)
        if before != after:
            diffs.append(
                FieldChange(path, None if before is _ABSENT else before, None if after is _ABSENT else after)
            )
    return diffs


@dataclass
class _Routes:
    """How a model's differences are applied: the ``PUT /models/{id}`` body, the context-window
    route, the schedule routes, and the paths no route changes."""

    body: dict[str, Any] = field(default_factory=dict)
    context_window: int | None = None
    schedule_changed: bool = False
    unchangeable: list[str] = field(default_factory=list)


def _routes_for(diffs: Iterable[FieldChange]) -> _Routes:
    routes = _Routes()
    body = routes.body
    container: dict[str, Any] = {}
    for diff in diffs:
        head, _, rest = diff.path.partition(".")
        if diff.path in METADATA_PATHS:
            body[diff.path] = diff.after
        elif diff.path == "contextWindow" and diff.after is not None:
            routes.context_window = int(diff.after)
        elif head == "autoScalingConfig" and rest.split(".")[0] == SCHEDULE_FIELD:
            routes.schedule_changed = True
        elif head == "autoScalingConfig" and rest in SCALING_NAMES and diff.after is not None:
            body.setdefault("autoScalingInstanceConfig", {})[rest] = diff.after
        elif head == "containerConfig" and rest.split(".")[0] in ("environment", "secrets") and "." in rest:
            kind, _, name = rest.partition(".")
            container.setdefault(kind, {})[name] = MARKED_FOR_DELETION if diff.after is None else diff.after
        elif diff.path == "containerConfig.sharedMemorySize" and diff.after is not None:
            container["sharedMemorySize"] = diff.after
        elif rest.startswith("healthCheckConfig.") and head == "containerConfig" and diff.after is not None:
            container[HEALTH_CHECK_FIELDS[rest.split(".")[1]]] = diff.after
        else:
            routes.unchangeable.append(diff.path)
    if container:
        body["containerConfig"] = ContainerConfigUpdate.model_validate(container).model_dump(
            exclude_none=True
        )
    return routes


def _model_change(desired: DesiredModel, current: ModelRecord) -> Change | None:
    diffs = definition_diff(desired, current)
    enabled = desired.enabled if desired.enabled is not None and desired.enabled != current.enabled else None
    if enabled is not None:
        diffs.append(FieldChange("enabled", current.enabled, enabled))
    if not diffs:
        return None
    if current.status == ModelStatus.FAILED:
        reason = (
            f"it is Failed ({current.statusReason or 'no reason given'}); a Failed model cannot be updated"
        )
        return Change(Action.RECREATE, desired.model_id, diffs, desired, current, [reason])
    routes = _routes_for(d for d in diffs if d.path != "enabled")
    if routes.unchangeable:
        reasons = [f"no route updates {', '.join(routes.unchangeable)}"]
        return Change(Action.RECREATE, desired.model_id, diffs, desired, current, reasons)
    update = UpdateModelRequest.model_validate(routes.body) if routes.body else None
    return Change(
        Action.UPDATE,
        desired.model_id,
        diffs,
        desired,
        current,
        update=update,
        context_window=routes.context_window,
        schedule_changed=routes.schedule_changed,
        enabled=enabled,
    )


def _busy(record: ModelRecord) -> bool:
    """In the middle of a workflow: neither updatable nor deletable until it settles."""
    return record.status not in DELETABLE_STATES


def _busy_message(record: ModelRecord) -> str:
    return f"{record.modelId} is {record.status.value}: wait until its workflow settles, then apply again"


def plan(desired: list[DesiredModel], current: list[ModelRecord], *, prune: bool) -> Plan:
    """What to do so that the registry matches ``desired`` (pure: no calls)."""
    existing = {record.modelId: record for record in current}
    result = Plan([])
    for model in desired:
        record = existing.get(model.model_id)
        if record is None:
            diffs = [
                FieldChange(path, None, value)
                for path, value in sorted(
                    flatten(model.definition().model_dump(mode="json", exclude_defaults=True)).items()
                )
            ]
            result.changes.append(Change(Action.CREATE, model.model_id, diffs, model))
            continue
        if _busy(record):
            result.blockers.append(_busy_message(record))
            continue
        change = _model_change(model, record)
        if change is not None:
            result.changes.append(change)
        elif record.status == ModelStatus.FAILED:
            result.notices.append(
                f"{model.model_id} is Failed ({record.statusReason or 'no reason given'}) and matches the "
                "file: left alone (delete it, then apply, to create it again)"
            )
    result.changes = _fallbacks_first(result.changes)
    listed = {model.model_id for model in desired}
    for model_id, record in sorted(existing.items()):
        if model_id in listed:
            continue
        if prune and _busy(record):
            result.blockers.append(_busy_message(record))
        elif prune:
            result.changes.append(Change(Action.DELETE, model_id, current=record))
        else:
            result.kept.append(model_id)
    return result


def _fallbacks_first(changes: list[Change]) -> list[Change]:
    """``changes`` in file order, except that a model the plan creates comes before every change whose
    ``fallbacks`` name it (the admin API refuses a fallback that does not exist yet). Models created
    by the plan that name each other keep file order: the second create is refused."""
    pending = list(changes)
    created = {change.model_id for change in pending if change.action == Action.CREATE}
    ordered: list[Change] = []
    while pending:
        placed = {change.model_id for change in ordered}
        ready = next(
            (change for change in pending if _created_fallbacks(change, created) <= placed),
            pending[0],
        )
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def _created_fallbacks(change: Change, created: set[str]) -> set[str]:
    fallbacks = change.desired.request.fallbacks if change.desired is not None else []
    return {fallback for fallback in fallbacks if fallback in created and fallback != change.model_id}


# ---- rendering ----------------------------------------------------------------------------------
_SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.RECREATE: "!", Action.DELETE: "-"}


def _value(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, sort_keys=True)


def render(result: Plan) -> list[str]:
    """The plan as diff lines (``+`` create, ``~`` update, ``!`` recreate, ``-`` delete)."""
    lines = []
    for change in result.changes:
        title = f"{_SYMBOLS[change.action]} {change.action.value} {change.model_id}"
        if change.reasons:
            title += f" ({'; '.join(change.reasons)})"
        lines.append(title)
        for diff in change.diffs:
            if change.action == Action.CREATE:
                lines.append(f"    {diff.path}: {_value(diff.after)}")
            else:
                lines.append(f"    {diff.path}: {_value(diff.before)} -> {_value(diff.after)}")
    for model_id in result.kept:
        lines.append(f"  keep {model_id} (not in the file; --prune deletes it)")
    for notice in result.notices:
        lines.append(f"  note: {notice}")
    for blocker in result.blockers:
        lines.append(f"x {blocker}")
    return lines


def plan_data(result: Plan) -> dict[str, Any]:
    """The plan as plain data (``lisa apply -o json|yaml``)."""
    return {
        "changes": [
            {
                "action": change.action.value,
                "modelId": change.model_id,
                "reasons": change.reasons,
                "fields": [
                    {"path": diff.path, "before": diff.before, "after": diff.after} for diff in change.diffs
                ],
            }
            for change in result.changes
        ],
        "kept": result.kept,
        "notices": result.notices,
        "blockers": result.blockers,
    }


# ---- execution ----------------------------------------------------------------------------------
@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    not_applied: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None


def _describe(change: Change) -> str:
    return f"{change.action.value} {change.model_id}"


def _create(
    client: LisaClient, desired: DesiredModel, api_key: str | None, wait: Callable[[str, ModelStatus], None]
) -> None:
    request = desired.request
    if api_key is not None:
        request = request.model_copy(update={"apiKey": api_key})
    client.create_model(request)
    wait(desired.model_id, ModelStatus.IN_SERVICE)
    if desired.enabled is False:
        client.stop_model(desired.model_id)
        wait(desired.model_id, ModelStatus.STOPPED)


def _run(
    client: LisaClient,
    change: Change,
    keys: dict[str, str],
    timeout: float,
    on_progress: ProgressCallback,
) -> None:
    def wait(model_id: str, status: ModelStatus) -> None:
        client.wait_for(model_id, status, timeout, on_progress=on_progress)

    model_id = change.model_id
    if change.action == Action.CREATE:
        assert change.desired is not None
        _create(client, change.desired, keys.get(model_id), wait)
    elif change.action == Action.DELETE:
        client.delete_model(model_id)
        client.wait_deleted(model_id, timeout, on_progress=on_progress)
    elif change.action == Action.RECREATE:
        assert change.desired is not None
        client.delete_model(model_id)
        client.wait_deleted(model_id, timeout, on_progress=on_progress)
        _create(client, change.desired, keys.get(model_id), wait)
    else:
        assert change.current is not None
        settled = change.current.status
        if change.context_window is not None:
            client.set_context_window(model_id, change.context_window)
        if change.update is not None:
            client.update_model(model_id, change.update)
            wait(model_id, settled)
        if change.schedule_changed:
            assert change.desired is not None
            scaling = change.desired.request.autoScalingConfig
            schedule = scaling.scheduling if scaling is not None else None
            if schedule is None:
                client.delete_schedule(model_id)
            else:
                client.set_schedule(model_id, schedule)
        if change.enabled is not None:
            if change.enabled:
                client.start_model(model_id)
                wait(model_id, ModelStatus.IN_SERVICE)
            else:
                client.stop_model(model_id)
                wait(model_id, ModelStatus.STOPPED)


def resolve_keys(result: Plan) -> dict[str, str]:
    """Every provider key the plan's creates need, read before anything changes (a missing one
    stops the apply with nothing applied)."""
    keys = {}
    for change in result.changes:
        desired = change.desired
        if change.action in (Action.CREATE, Action.RECREATE) and desired and desired.api_key:
            keys[change.model_id] = desired.api_key.resolve()
    return keys


def execute(
    client: LisaClient,
    result: Plan,
    *,
    timeout: float,
    on_progress: ProgressCallback,
    on_done: Callable[[Change], None] = lambda change: None,
) -> ApplyResult:
    keys = resolve_keys(result)
    outcome = ApplyResult()
    for index, change in enumerate(result.changes):
        try:
            _run(client, change, keys, timeout, on_progress)
        except LisaClientError as error:
            outcome.failed = _describe(change)
            outcome.error = str(error)
            outcome.not_applied = [_describe(rest) for rest in result.changes[index + 1 :]]
            return outcome
        outcome.applied.append(_describe(change))
        on_done(change)
    return outcome
