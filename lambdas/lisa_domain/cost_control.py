"""Cost-control state on the model item, written without touching the registry version.

The serve replicas and the cost-control evaluator (``scheduler``) keep three attributes on a
model's item besides its record:

* ``lastUsedAt`` (Unix seconds): the latest inference request any replica saw; a replica writes
  it at most once a minute per model, and only forward (a conditional ``SET`` of the maximum).
* ``startRequested`` (Unix seconds): an inference request asked for the stopped model to start
  (``startOnRequest``); set only when absent, so however many requests and replicas ask, one flag
  exists until the evaluator acts on it and removes it.
* ``scheduleState``: what the evaluator did about the model's schedule (``ScheduleState``).

These are plain conditional ``UpdateItem`` calls, not registry transactions: they change nothing a
serve replica routes by, so they must not make every replica rebuild its Router.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lisa_domain.dynamo import to_attribute

LAST_USED_AT = "lastUsedAt"
START_REQUESTED = "startRequested"
SCHEDULE_STATE = "scheduleState"


@dataclass(frozen=True)
class ScheduleFailure:
    """LISA's ``lastScheduleFailure``: when, what, and how many evaluations in a row failed."""

    timestamp: str
    error: str
    retryCount: int


@dataclass(frozen=True)
class ScheduleState:
    """The evaluator's record of a model's schedule (``scheduleState`` on the item).

    ``handledAt``: the start or stop (Unix seconds) the evaluator last carried out or found already
    done; a later one is due. None: the schedule was just set, so the current one is due.
    """

    updatedAt: str | None = None
    handledAt: int | None = None
    failed: bool = False
    failure: ScheduleFailure | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> ScheduleState:
        raw = item.get(SCHEDULE_STATE) or {}
        failure = raw.get("failure")
        return cls(
            updatedAt=raw.get("updatedAt"),
            handledAt=raw.get("handledAt"),
            failed=bool(raw.get("failed", False)),
            failure=ScheduleFailure(**failure) if isinstance(failure, dict) else None,
        )

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"failed": self.failed}
        if self.updatedAt is not None:
            value["updatedAt"] = self.updatedAt
        if self.handledAt is not None:
            value["handledAt"] = self.handledAt
        if self.failure is not None:
            value["failure"] = self.failure.__dict__
        return value


def _condition_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class CostControlStore:
    """The conditional writes of ``lastUsedAt``, ``startRequested`` and ``scheduleState``."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client or boto3.client("dynamodb")

    def _update(self, model_id: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        """One conditional update; False when the condition failed (nothing written)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"modelId": {"S": model_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues={key: to_attribute(value) for key, value in values.items()},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def record_use(self, model_id: str, at: int) -> bool:
        """Move ``lastUsedAt`` forward to ``at`` (never back); False when it already was as late."""
        return self._update(
            model_id,
            f"SET {LAST_USED_AT} = :at",
            f"attribute_exists(modelId) AND (attribute_not_exists({LAST_USED_AT}) OR {LAST_USED_AT} < :at)",
            {":at": at},
        )

    def request_start(self, model_id: str, at: int) -> bool:
        """Flag the model for a start on request; False when a flag is already set (or no model)."""
        return self._update(
            model_id,
            f"SET {START_REQUESTED} = :at",
            f"attribute_exists(modelId) AND attribute_not_exists({START_REQUESTED})",
            {":at": at},
        )

    def clear_start_request(self, model_id: str, flagged_at: int) -> bool:
        """Remove the flag the evaluator acted on (a newer one stays)."""
        return self._update(
            model_id, f"REMOVE {START_REQUESTED}", f"{START_REQUESTED} = :at", {":at": flagged_at}
        )

    def save_schedule_state(self, model_id: str, state: ScheduleState) -> bool:
        """Write the evaluator's state for the schedule revision it read (``state.updatedAt``); False
        when the schedule was replaced or removed meanwhile (its fresh state stays)."""
        values: dict[str, Any] = {":state": state.json()}
        if state.updatedAt is None:
            condition = f"attribute_exists(modelId) AND attribute_not_exists({SCHEDULE_STATE}.updatedAt)"
        else:
            condition = f"{SCHEDULE_STATE}.updatedAt = :revision"
            values[":revision"] = state.updatedAt
        return self._update(model_id, f"SET {SCHEDULE_STATE} = :state", condition, values)
