"""The one interface through which the admin API starts model workflows (Step Functions)."""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from typing import Any

import boto3


class Workflow(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class WorkflowStarter:
    """Starts an execution with an input that never carries a secret (only ids and settings)."""

    def __init__(
        self,
        state_machine_arns: dict[Workflow, str | None],
        *,
        poll_seconds: int,
        max_polls: int,
        client: Any = None,
    ) -> None:
        self._arns = state_machine_arns
        self._poll_seconds = poll_seconds
        self._max_polls = max_polls
        self._client = client or boto3.client("stepfunctions")

    def start(self, workflow: Workflow, model_id: str, **details: Any) -> str:
        arn = self._arns.get(workflow)
        if not arn:
            raise RuntimeError(f"no state machine is configured for the {workflow.value} workflow")
        payload = {
            "modelId": model_id,
            "operation": workflow.value,
            "pollSeconds": self._poll_seconds,
            "maxPolls": self._max_polls,
            **details,
        }
        response = self._client.start_execution(
            stateMachineArn=arn,
            name=f"{model_id[:40]}-{workflow.value}-{uuid.uuid4().hex[:12]}",
            input=json.dumps(payload),
        )
        return str(response["executionArn"])
