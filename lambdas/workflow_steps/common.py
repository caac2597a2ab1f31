"""Helpers every workflow shares: bounded polling and readable error messages."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lisa_domain.errors import TRANSIENT_AWS_ERROR_CODES, LisaError, Unavailable
from lisa_domain.schema import ModelRecord, ModelStatus
from workflow_steps.hosting import HostingFailed, Progress
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState


class StepError(Exception):
    """What a failed step raises: the message says what was being done and why it failed."""


class TransientStepError(StepError):
    """A step failed for a reason that passes (throttling, a busy registry, a dropped connection):
    the state machines retry it (``Retry`` on this name) before taking the failure path."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, Unavailable | EndpointConnectionError | ConnectionClosedError | ReadTimeoutError):
        return True
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
        TRANSIENT_AWS_ERROR_CODES
    )


class PollLimitExceeded(Exception):
    """A polling loop reached ``maxPolls`` without the awaited state: the workflow fails."""


class WrongStatus(Exception):
    """The model is not in the status this workflow works on (another change got there first)."""


def poll(
    state: ExecutionState, key: str, what: str, probe: Callable[[], Progress], *, limit: int | None = None
) -> ExecutionState:
    """Probe once; ``state.done`` tells the state machine whether to wait and poll again.

    The bound: at most ``maxPolls`` probes per loop (``key``; fewer when ``limit`` is smaller),
    about ``maxPolls * pollSeconds`` seconds; the probe that reaches it without success raises
    PollLimitExceeded.
    """
    bound = min(state.maxPolls, limit) if limit else state.maxPolls
    count = state.polls.get(key, 0) + 1
    progress = probe()
    state.polls[key] = count
    state.done = progress.done
    if not progress.done and count >= bound:
        raise PollLimitExceeded(
            f"{what} did not finish within {bound} polls {state.pollSeconds} s apart "
            f"(last seen: {progress.detail})"
        )
    return state


def expect_status(record: ModelRecord, *allowed: ModelStatus) -> None:
    if record.status not in allowed:
        states = " or ".join(status.value for status in allowed)
        raise WrongStatus(
            f"model '{record.modelId}' is {record.status.value}, not {states}; nothing was changed"
        )


def model_in_transit(services: Services, state: ExecutionState) -> ModelRecord:
    """The model, verified to be in the status the admin API moved it to for this execution (steps
    verify the admin API's transition, they never repeat it); WrongStatus otherwise."""
    record = services.registry.get(state.modelId)
    expect_status(record, state.transient_status())
    return record


def readable(error: BaseException) -> str:
    """An exception as a sentence for ``statusReason`` (never a stack trace)."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "an AWS call")
        return f"{operation} failed: {info.get('Code', 'Error')}: {info.get('Message', error)}"
    if isinstance(error, HostingFailed | PollLimitExceeded | WrongStatus | LisaError | StepError):
        return str(error)
    if isinstance(error, BotoCoreError):
        return f"AWS call failed: {error}"
    return f"{type(error).__name__}: {error}"
