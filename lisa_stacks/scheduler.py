"""Cost control: the evaluator Lambda (``scheduler.handler``) on a one-minute EventBridge rule.

One evaluator over the registry rather than one EventBridge Scheduler schedule per model: the
schedules, idle timers and start requests all live on the model items already, so one pass a
minute sees them all with no second copy to keep in step (no schedule to create, update or leave
behind when a model or its schedule changes), and local mode runs the same handler in a loop.
A minute's granularity is what the two-minute bound needs. docs/cost-control.md has the rest.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lisa_contracts.settings import SchedulerSettings
from lisa_stacks.common import model_settings, workflow_poll_settings
from lisa_stacks.config import DeploymentConfig
from lisa_stacks.data import Data
from lisa_stacks.lambda_code import LisaFunction

#: What the evaluator calls on the models table: scans and reads, conditional updates of its own
#: attributes, and the registry's transactions (authorized as UpdateItem per item).
MODELS_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem")


class CostControl(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        code: lambda_.Code,
        data: Data,
        update_workflow: sfn.StateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.evaluator = LisaFunction(
            self,
            "Evaluator",
            config=config,
            code=code,
            handler="scheduler.handler.lambda_handler",
            description=f"LISA {config.prefix}: cost control (schedules, idle stop, start on request)",
            timeout_seconds=55,
            settings=SchedulerSettings,
            environment={
                **model_settings(config, data),
                **workflow_poll_settings(config),
                "update_state_machine_arn": update_workflow.state_machine_arn,
            },
        )
        # One run at a time: a slow run is never overlapped by the next minute's.
        function = self.evaluator.function.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        function.reserved_concurrent_executions = 1
        role = self.evaluator.role
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(MODELS_TABLE_ACTIONS), resources=[data.models_table.table_arn])
        )
        data.grant_key(role, write=True)
        update_workflow.grant_start_execution(role)
        events.Rule(
            self,
            "EveryMinute",
            description="Runs the cost-control evaluator once a minute.",
            schedule=events.Schedule.rate(cdk.Duration.minutes(1)),
            targets=[
                events_targets.LambdaFunction(
                    self.evaluator.function, retry_attempts=0, max_event_age=cdk.Duration.minutes(1)
                )
            ],
        )


#: The only attributes of a model item the serve task may write (``serve.activity``).
SERVE_WRITABLE_ATTRIBUTES = ("modelId", "lastUsedAt", "startRequested")


def grant_serve_cost_control(role: iam.IRole, data: Data) -> None:
    """The serve task's part of cost control: ``UpdateItem`` on the models table limited, by an IAM
    condition, to the key and the two attributes it reports (last use, start request), with no
    values returned. It can neither change a model nor start a workflow."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"],
            resources=[data.models_table.table_arn],
            conditions={
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(SERVE_WRITABLE_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
            },
        )
    )
    data.grant_key(role, write=True)
