"""The model lifecycle table, written once: which action moves a model from which statuses into
which transient status.

The admin API owns these transitions (``admin_api.models.ModelService`` makes each one, a
conditional registry write, before it starts the workflow). The workflow steps only verify that the
model is in their action's transient status (and end it: ``InService``, ``Stopped``, deleted or
``Failed``); they never repeat the admin API's move.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from lisa_domain.schema import DELETABLE_STATES, UPDATABLE_STATES, ModelStatus


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    STOP = "stop"
    START = "start"
    DELETE = "delete"


@dataclass(frozen=True)
class Transition:
    #: The statuses the action starts from (none for create: the record is new).
    sources: frozenset[ModelStatus]
    #: The status the model is in while the action's workflow runs.
    transient: ModelStatus

    def allowed_from(self) -> str:
        """The source statuses for messages (sorted, comma-separated)."""
        return ", ".join(sorted(status.value for status in self.sources))


TRANSITIONS = MappingProxyType(
    {
        Action.CREATE: Transition(frozenset(), ModelStatus.CREATING),
        Action.UPDATE: Transition(UPDATABLE_STATES, ModelStatus.UPDATING),
        Action.STOP: Transition(frozenset({ModelStatus.IN_SERVICE}), ModelStatus.STOPPING),
        Action.START: Transition(frozenset({ModelStatus.STOPPED}), ModelStatus.STARTING),
        Action.DELETE: Transition(DELETABLE_STATES, ModelStatus.DELETING),
    }
)


def update_action(enabled: bool | None) -> Action:
    """The action of an update request: ``enabled`` false stops, true starts, absent updates."""
    if enabled is None:
        return Action.UPDATE
    return Action.START if enabled else Action.STOP
