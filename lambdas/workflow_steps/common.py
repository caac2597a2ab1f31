"""Helpers every workflow shares: bounded polling and readable error messages."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from lisa_domain.errors import LisaError
from lisa_domain.schema import ModelRecord, ModelStatus
from workflow_steps.hosting import HostingFailed, Progress
from workflow_steps.state import ExecutionState


class StepError(Exception):
    """What a failed step raises: the message says what was being done and why it failed."""


class PollLimitExceeded(Exception):
    """A polling loop reached ``maxPolls`` without the awaited state: the workflow fails."""


class WrongStatus(Exception):
    """The model is not in the status this workflow works on (another change got there first)."""


def poll(state: ExecutionState, key: str, what: str, probe: Callable[[], Progress]) -> ExecutionState:
    """Probe once; ``state.done`` tells the state machine whether to wait and poll again.

    The bound: at most ``maxPolls`` probes per loop (``key``), about ``maxPolls * pollSeconds``
    seconds; the probe that reaches it without success raises PollLimitExceeded.
    """
    count = state.polls.get(key, 0) + 1
    progress = probe()
    state.polls[key] = count
    state.done = progress.done
    if not progress.done and count >= state.maxPolls:
        raise PollLimitExceeded(
            f"{what} did not finish within {state.maxPolls} polls {state.pollSeconds} s apart "
            f"(last seen: {progress.detail})"
        )
    return state


def expect_status(record: ModelRecord, *allowed: ModelStatus) -> None:
    if record.status not in allowed:
        states = " or ".join(status.value for status in allowed)
        raise WrongStatus(
            f"model '{record.modelId}' is {record.status.value}, not {states}; nothing was changed"
        )


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
