"""Cost-control evaluator Lambda: one pass of ``scheduler.evaluator.Evaluator`` per invocation.

Invoked every minute by an EventBridge rule (``lisa_stacks/scheduler.py``) and, in local mode,
every ``LISA_LOCAL_SCHEDULER_SECONDS`` by a loop of ``local_mode.system`` (the same handler). The
event's content is not used: every run evaluates every model at the current time.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from typing import Any

from admin_api.models import ModelService
from lisa_contracts.settings import SchedulerSettings
from lisa_domain.cost_control import CostControlStore
from lisa_domain.registry import ModelRegistry
from lisa_domain.secrets import ModelSecrets
from lisa_domain.workflows import Workflow, WorkflowStarter
from scheduler.evaluator import Evaluator


@cache
def evaluator() -> Evaluator:
    """Built once per process from ``SchedulerSettings`` (tests and local mode: ``evaluator.cache_clear()``)."""
    settings = SchedulerSettings.from_env()
    registry = ModelRegistry(settings.models_table)
    models = ModelService(
        registry=registry,
        secrets=ModelSecrets(settings.model_secret_prefix),
        workflows=WorkflowStarter(
            {Workflow.UPDATE: settings.update_state_machine_arn},
            poll_seconds=settings.workflow_poll_seconds,
            max_polls=settings.workflow_max_polls,
        ),
    )
    return Evaluator(
        registry, models, CostControlStore(settings.models_table), minute_seconds=settings.idle_minute_seconds
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    changes = evaluator().run(datetime.now(UTC))
    return {"changes": [asdict(change) for change in changes]}
