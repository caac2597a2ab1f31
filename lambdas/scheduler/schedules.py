"""The logic of LISA's schedule routes (``/models/{modelId}/schedule``), with LISA's response shapes.

A schedule is stored where LISA keeps it, in the model's ``autoScalingConfig.scheduling``, written
together with a fresh ``scheduleState`` (nothing handled yet, so the evaluator brings the model into
line with the schedule at its next run) in one conditional registry write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from lisa_domain.auth import Principal
from lisa_domain.cost_control import SCHEDULE_STATE, ScheduleState
from lisa_domain.errors import Conflict, Forbidden, NotFound
from lisa_domain.registry import ModelRegistry
from lisa_domain.schedule import DailySchedulingConfig, RecurringSchedulingConfig, next_action
from lisa_domain.schema import UPDATABLE_STATES, ModelRecord, ModelStatus

Schedule = DailySchedulingConfig | RecurringSchedulingConfig


class UpdateScheduleResponse(BaseModel):
    message: str
    modelId: str
    scheduleEnabled: bool


DeleteScheduleResponse = UpdateScheduleResponse


class GetScheduleResponse(BaseModel):
    modelId: str
    scheduling: dict[str, Any] = Field(description="The schedule and its state ({} when none is set)")
    nextScheduledAction: dict[str, str] | None = Field(
        default=None, description="{action: START|STOP, scheduledTime: ISO 8601 UTC}"
    )


class GetScheduleStatusResponse(BaseModel):
    modelId: str
    scheduleEnabled: bool
    scheduleConfigured: bool
    lastScheduleFailed: bool
    scheduleStatus: str = Field(description="ACTIVE, FAILED (the last start or stop failed) or DISABLED")
    scheduleType: str | None = None
    timezone: str
    nextScheduledAction: dict[str, str] | None = None
    lastScheduleUpdate: str | None = None
    lastScheduleFailure: dict[str, Any] | None = None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ScheduleService:
    registry: ModelRegistry

    def _visible(self, principal: Principal, model_id: str) -> tuple[ModelRecord, dict[str, Any]]:
        item = self.registry.get_item(model_id)
        record = ModelRecord.model_validate(item)
        if not principal.can_use(record.allowedGroups):
            raise NotFound(f"model '{model_id}' not found")
        return record, item

    def set(
        self, principal: Principal, model_id: str, schedule: Schedule, now: datetime
    ) -> UpdateScheduleResponse:
        """Create or replace the schedule: admins; a self-hosted model that is InService or Stopped."""
        if not principal.is_admin:
            raise Forbidden("only administrators may schedule models")
        record = self.registry.get(model_id)
        if record.autoScalingConfig is None:
            raise Conflict(f"model '{model_id}' is not self-hosted; only self-hosted models have schedules")
        if record.status not in UPDATABLE_STATES:
            raise Conflict(
                f"model '{model_id}' is {record.status.value}; a schedule can be set only when it is "
                "InService or Stopped"
            )
        self._write(record, schedule, ScheduleState(updatedAt=iso(now)))
        return UpdateScheduleResponse(
            message="Schedule updated successfully", modelId=model_id, scheduleEnabled=True
        )

    def delete(self, principal: Principal, model_id: str, now: datetime) -> DeleteScheduleResponse:
        """Remove the schedule (admins; any status but Deleting); the model stays as it is."""
        if not principal.is_admin:
            raise Forbidden("only administrators may delete schedules")
        record = self.registry.get(model_id)
        if record.status == ModelStatus.DELETING:
            raise Conflict(f"model '{model_id}' is Deleting; its schedule goes with it")
        if record.autoScalingConfig is not None and record.autoScalingConfig.scheduling is not None:
            self._write(record, None, ScheduleState(updatedAt=iso(now)))
        return DeleteScheduleResponse(
            message="Schedule deleted successfully", modelId=model_id, scheduleEnabled=False
        )

    def _write(self, record: ModelRecord, schedule: Schedule | None, state: ScheduleState) -> None:
        assert record.autoScalingConfig is not None
        scaling = record.autoScalingConfig.model_copy(update={"scheduling": schedule})
        self.registry.transition(
            record.modelId,
            allowed_from=[record.status],
            to=record.status,
            reason=record.statusReason,
            changes={"autoScalingConfig": scaling.model_dump(mode="json"), SCHEDULE_STATE: state.json()},
        )

    def get(self, principal: Principal, model_id: str, now: datetime) -> GetScheduleResponse:
        record, item = self._visible(principal, model_id)
        status = self._status(record, item, now)
        schedule = _schedule_of(record)
        scheduling: dict[str, Any] = {}
        if schedule is not None:
            scheduling = schedule.model_dump(mode="json") | status.model_dump(
                include={
                    "scheduleEnabled",
                    "scheduleConfigured",
                    "lastScheduleFailed",
                    "lastScheduleUpdate",
                    "lastScheduleFailure",
                    "nextScheduledAction",
                }
            )
        return GetScheduleResponse(
            modelId=model_id, scheduling=scheduling, nextScheduledAction=status.nextScheduledAction
        )

    def status(self, principal: Principal, model_id: str, now: datetime) -> GetScheduleStatusResponse:
        record, item = self._visible(principal, model_id)
        return self._status(record, item, now)

    @staticmethod
    def _status(record: ModelRecord, item: dict[str, Any], now: datetime) -> GetScheduleStatusResponse:
        schedule = _schedule_of(record)
        state = ScheduleState.of(item)
        configured = schedule is not None
        upcoming = next_action(schedule, now) if schedule is not None else None
        return GetScheduleStatusResponse(
            modelId=record.modelId,
            scheduleEnabled=configured,
            scheduleConfigured=configured,
            lastScheduleFailed=configured and state.failed,
            scheduleStatus="DISABLED" if not configured else ("FAILED" if state.failed else "ACTIVE"),
            scheduleType=schedule.scheduleType if schedule is not None else None,
            timezone=schedule.timezone if schedule is not None else "UTC",
            nextScheduledAction=upcoming.json() if upcoming is not None else None,
            lastScheduleUpdate=state.updatedAt,
            lastScheduleFailure=state.failure.__dict__ if configured and state.failure is not None else None,
        )


def _schedule_of(record: ModelRecord) -> Schedule | None:
    return record.autoScalingConfig.scheduling if record.autoScalingConfig is not None else None
