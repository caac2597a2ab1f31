"""The cost-control evaluator: one pass over the registry that starts and stops models.

Run every minute (EventBridge rule in AWS, a loop in local mode). For each model, in this order,
at most one change:

1. start on request: a ``startRequested`` flag on a Stopped ``startOnRequest`` model starts it (the
   flag is removed once the start began, or when the model no longer needs it);
2. schedule: the latest start or stop of its schedule (``lisa_domain.schedule.last_action``) that
   the evaluator has not handled yet is carried out if the model is not already so; a model in a
   transitional status is left until the next run. Handling a start or stop once is what lets an
   administrator's stop inside a window stand until the next window starts;
3. idle: an InService model with ``idleStopMinutes`` that saw no inference request for that long
   (since ``lastUsedAt`` or since it became InService, whichever is later) is stopped.

Every change goes through the admin API's ``ModelService.update`` as ``PUT {"enabled": ...}``
does (the same conditional transition and update workflow; a workflow that cannot start puts the
model back), with a reason in the status history. A schedule's start or stop that fails is
recorded in ``scheduleState`` (``lastScheduleFailed``, ``lastScheduleFailure``) and tried again at
the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from admin_api.models import ModelService
from lisa_domain.auth import Principal
from lisa_domain.cost_control import (
    LAST_USED_AT,
    START_REQUESTED,
    CostControlStore,
    ScheduleFailure,
    ScheduleState,
)
from lisa_domain.registry import ModelRegistry, parse_record
from lisa_domain.schedule import ScheduleAction, last_action
from lisa_domain.schema import TRANSIENT_STATES, ModelRecord, ModelStatus, UpdateModelRequest
from scheduler.schedules import iso

logger = logging.getLogger(__name__)

#: Who the evaluator acts as in ``ModelService`` (an administrator; never a credential).
COST_CONTROL = Principal("lisa-cost-control", (), True, "management-key")


@dataclass(frozen=True)
class Change:
    """One start or stop the evaluator began (``error``: it could not)."""

    modelId: str
    action: str
    cause: str
    error: str | None = None


def in_service_since(item: dict[str, Any]) -> int:
    """When the model last became InService (Unix seconds; its last update when the history lacks it)."""
    for entry in reversed(item.get("statusHistory") or []):
        if entry.get("status") == ModelStatus.IN_SERVICE.value:
            return int(entry["at"])
    return int(item.get("updatedAt", 0))


@dataclass
class Evaluator:
    registry: ModelRegistry
    models: ModelService
    store: CostControlStore
    #: Seconds in one of ``idleStopMinutes``' minutes (60; local mode may scale it down).
    minute_seconds: float = 60.0

    def run(self, now: datetime) -> list[Change]:
        changes: list[Change] = []
        for item in self.registry.all_items():
            record = parse_record(item)
            if record is None:
                continue
            try:
                change = self._evaluate(record, item, now)
            except Exception:  # one model never stops the others' evaluation
                logger.exception("cost control: evaluating model %s failed", record.modelId)
                continue
            if change is not None:
                changes.append(change)
        return changes

    def _evaluate(self, record: ModelRecord, item: dict[str, Any], now: datetime) -> Change | None:
        if item.get(START_REQUESTED) is not None:
            change = self._start_on_request(record, int(item[START_REQUESTED]))
            if change is not None:
                return change
        if record.autoScalingConfig is not None and record.autoScalingConfig.scheduling is not None:
            change = self._follow_schedule(record, item, now)
            if change is not None:
                return change
        return self._stop_if_idle(record, item, now)

    # ---- the three causes ------------------------------------------------------------------------
    def _start_on_request(self, record: ModelRecord, flagged_at: int) -> Change | None:
        if record.startOnRequest and record.status == ModelStatus.STOPPING:
            return None  # started once it is Stopped
        if not (record.startOnRequest and record.status == ModelStatus.STOPPED):
            self.store.clear_start_request(record.modelId, flagged_at)  # started already, or not eligible
            return None
        change = self._change(record, True, "request", "started on request (startOnRequest)")
        if change.error is None:
            self.store.clear_start_request(record.modelId, flagged_at)
        return change

    def _follow_schedule(self, record: ModelRecord, item: dict[str, Any], now: datetime) -> Change | None:
        assert record.autoScalingConfig is not None and record.autoScalingConfig.scheduling is not None
        due = last_action(record.autoScalingConfig.scheduling, now)
        state = ScheduleState.of(item)
        if due is None:
            return None
        due_at = int(due.at.timestamp())
        if (state.handledAt is not None and due_at <= state.handledAt) or record.status in TRANSIENT_STATES:
            return None
        change: Change | None = None
        if due.action is ScheduleAction.START and record.status == ModelStatus.STOPPED:
            change = self._change(record, True, "schedule", f"scheduled start ({iso(due.at)})")
        elif due.action is ScheduleAction.STOP and record.status == ModelStatus.IN_SERVICE:
            change = self._change(record, False, "schedule", f"scheduled stop ({iso(due.at)})")
        if change is not None and change.error is not None:
            retries = state.failure.retryCount + 1 if state.failed and state.failure is not None else 0
            failure = ScheduleFailure(timestamp=iso(now), error=change.error, retryCount=retries)
            self.store.save_schedule_state(
                record.modelId, ScheduleState(state.updatedAt, state.handledAt, True, failure)
            )
        else:
            self.store.save_schedule_state(
                record.modelId, ScheduleState(state.updatedAt, due_at, False, state.failure)
            )
        return change

    def _stop_if_idle(self, record: ModelRecord, item: dict[str, Any], now: datetime) -> Change | None:
        minutes = record.idleStopMinutes
        if minutes is None or record.status != ModelStatus.IN_SERVICE:
            return None
        since = max(int(item.get(LAST_USED_AT, 0)), in_service_since(item))
        if now.timestamp() - since < minutes * self.minute_seconds:
            return None
        return self._change(
            record,
            False,
            "idle",
            f"stopped after {minutes} minutes without an inference request (idleStopMinutes)",
        )

    # ---- the one way a model is started or stopped ---------------------------------------------
    def _change(self, record: ModelRecord, start: bool, cause: str, reason: str) -> Change:
        action = "start" if start else "stop"
        try:
            self.models.update(COST_CONTROL, record.modelId, UpdateModelRequest(enabled=start), reason=reason)
        except Exception as error:
            logger.warning("cost control: %s of model %s failed: %s", action, record.modelId, error)
            return Change(record.modelId, action, cause, f"{type(error).__name__}: {error}"[:500])
        logger.info("cost control: %s of model %s began (%s)", action, record.modelId, reason)
        return Change(record.modelId, action, cause)
