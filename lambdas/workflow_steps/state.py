"""The execution state every step receives (``event["input"]``) and returns (the next state).

It starts as the execution input the admin API wrote (``lisa_domain.workflows.WorkflowStarter``):
``modelId``, ``operation``, ``pollSeconds``, ``maxPolls`` and per workflow ``selfHosted`` (create),
``action``/``previousStatus``/``changes`` (update), ``previousStatus`` (delete). Steps add their
results; unknown fields are kept, so the state machine and the steps can grow independently.
Never a secret.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lisa_domain.lifecycle import TRANSITIONS, Action, update_action
from lisa_domain.schema import ModelStatus


class ExecutionState(BaseModel):
    model_config = ConfigDict(extra="allow")

    modelId: str
    operation: Literal["create", "update", "delete"]
    pollSeconds: int = Field(default=30, ge=0)
    maxPolls: int = Field(default=120, ge=1)
    # create
    selfHosted: bool | None = None
    # update
    action: Literal["update", "stop", "start"] | None = None
    previousStatus: ModelStatus | None = None
    changes: dict[str, Any] = Field(default_factory=dict)
    # written by the steps
    done: bool = False
    polls: dict[str, int] = Field(default_factory=dict)
    infrastructure: bool | None = None
    undo: dict[str, str] | None = None
    cleanupNotes: list[str] = Field(default_factory=list)
    #: Set by the Catch of every Task state: ``{"Error": ..., "Cause": ...}``.
    error: dict[str, Any] | None = None
    #: Set by the Catch of the cleanup states when cleanup itself failed.
    cleanupError: dict[str, Any] | None = None
    #: Written by MarkFailed: the reason the model is Failed (also the Fail state's cause).
    statusReason: str | None = None

    def lifecycle_action(self) -> Action:
        """create, delete, or the update's ``action`` (from ``changes.enabled`` when an input has no
        ``action``)."""
        if self.operation != "update":
            return Action(self.operation)
        return Action(self.action) if self.action else update_action(self.changes.get("enabled"))

    def transient_status(self) -> ModelStatus:
        """The status the admin API moved the model to for this execution (``TRANSITIONS``)."""
        return TRANSITIONS[self.lifecycle_action()].transient

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
