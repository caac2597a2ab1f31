"""Self-hosted models on ECS: one CloudFormation stack per model, from the synthesized template.

The workflow registers the model's task definition (``hosting.task_definition``) and creates the
stack ``<MODEL_STACK_PREFIX><modelId>`` from ``MODEL_STACK_TEMPLATE_URL`` with the parameters of
``stack_parameters``. Every later change (container settings, capacity, stop and start) is an
``UpdateStack`` of that stack with new parameters, so CloudFormation stays the only writer of the
model's infrastructure (no drift) and rolls a failed change back. Updates name the same
``MODEL_STACK_TEMPLATE_URL``, never the previous template: the step Lambda's role may only create or
update stacks from that URL (an IAM condition), and a model created before an upgrade moves to the
upgraded template (and its parameters) on its next change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lisa_contracts.names import ENDPOINT_URL_OUTPUT, TASK_DEFINITION_PARAMETER
from lisa_contracts.settings import WorkflowStepsSettings
from lisa_domain.schema import ModelRecord
from workflow_steps.hosting.base import HostingFailed, Progress
from workflow_steps.hosting.task_definition import CONTAINER_PORT, resource_name, task_definition_request

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
#: Health check the load balancer uses when the model has no loadBalancerConfig.
DEFAULT_LB_HEALTH = {
    "path": "/health",
    "interval": 30,
    "timeout": 10,
    "healthyThresholdCount": 3,
    "unhealthyThresholdCount": 3,
}
_FAILED_RESOURCE_STATES = ("CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED")


@dataclass(frozen=True)
class EcsSettings:
    template_url: str
    stack_prefix: str
    vpc_id: str
    subnet_ids: str
    serve_security_group_id: str
    execution_role_arn: str
    task_role_arn: str
    stack_role_arn: str | None = None
    log_group_name: str | None = None

    region: str | None = None

    @classmethod
    def from_settings(cls, settings: WorkflowStepsSettings) -> EcsSettings:
        """The ECS part of the step settings; a clear error naming each variable that is not set."""
        required = {name: getattr(settings, field) for name, field in _REQUIRED_FIELDS.items()}
        missing = [
            str(WorkflowStepsSettings.model_fields[_REQUIRED_FIELDS[name]].alias)
            for name, value in required.items()
            if not value
        ]
        if missing:
            raise RuntimeError(
                f"environment variable {', '.join(missing)} is not set (needed by the ECS hosting backend)"
            )
        return cls(
            **required,
            stack_role_arn=settings.model_stack_role_arn,
            log_group_name=settings.model_log_group_name,
            region=settings.region,
        )


#: ``EcsSettings`` field -> the ``WorkflowStepsSettings`` field it needs (all required on ECS).
_REQUIRED_FIELDS = {
    "template_url": "model_stack_template_url",
    "stack_prefix": "model_stack_prefix",
    "vpc_id": "model_vpc_id",
    "subnet_ids": "model_subnet_ids",
    "serve_security_group_id": "serve_security_group_id",
    "execution_role_arn": "model_task_execution_role_arn",
    "task_role_arn": "model_task_role_arn",
}


def desired_tasks(model: ModelRecord) -> tuple[int, int, int]:
    """(min, desired, max) tasks = instances (one task uses all GPUs of its instance); 0 when stopped."""
    scaling = model.autoScalingConfig
    if scaling is None:
        raise ValueError(f"model '{model.modelId}' is not self-hosted")
    if not model.enabled:
        return 0, 0, scaling.maxCapacity
    return scaling.minCapacity, scaling.desiredCapacity or scaling.minCapacity, scaling.maxCapacity


def stack_parameters(
    model: ModelRecord, settings: EcsSettings, task_definition_arn: str | None
) -> dict[str, str]:
    """The per-model stack's parameters (``TaskDefinitionArn`` None = keep the previous value)."""
    scaling, instance_type = model.autoScalingConfig, model.instanceType
    if scaling is None or instance_type is None:
        raise ValueError(f"model '{model.modelId}' is not self-hosted")
    health = DEFAULT_LB_HEALTH | (
        model.loadBalancerConfig.healthCheckConfig.model_dump() if model.loadBalancerConfig else {}
    )
    minimum, desired, maximum = desired_tasks(model)
    parameters = {
        "ModelId": model.modelId,
        "InstanceType": instance_type,
        "ContainerPort": str(CONTAINER_PORT),
        "HealthCheckPath": str(health["path"]),
        "HealthCheckInterval": str(health["interval"]),
        "HealthCheckTimeout": str(health["timeout"]),
        "HealthyThresholdCount": str(health["healthyThresholdCount"]),
        "UnhealthyThresholdCount": str(health["unhealthyThresholdCount"]),
        "MinCapacity": str(minimum),
        "MaxCapacity": str(maximum),
        "DesiredCapacity": str(desired),
        "Cooldown": str(scaling.cooldown),
        "DefaultInstanceWarmup": str(scaling.defaultInstanceWarmup),
        "BlockDeviceVolumeSize": str(scaling.blockDeviceVolumeSize),
        "ScalingMetric": scaling.metricConfig.albMetricName,
        "ScalingTargetValue": f"{scaling.metricConfig.targetValue:g}",
        "EstimatedInstanceWarmup": str(scaling.metricConfig.estimatedInstanceWarmup),
        "VpcId": settings.vpc_id,
        "SubnetIds": settings.subnet_ids,
        "ServeSecurityGroupId": settings.serve_security_group_id,
    }
    if task_definition_arn:
        parameters[TASK_DEFINITION_PARAMETER] = task_definition_arn
    return parameters


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", error))


class EcsHostingBackend:
    def __init__(self, settings: EcsSettings, *, cloudformation: Any = None, ecs: Any = None) -> None:
        self.settings = settings
        self._cfn = cloudformation or boto3.client("cloudformation")
        self._ecs = ecs or boto3.client("ecs")

    @classmethod
    def from_env(cls) -> EcsHostingBackend:
        return cls(EcsSettings.from_settings(WorkflowStepsSettings.from_env()))

    # ---- names -------------------------------------------------------------------------------
    def stack_name(self, model: ModelRecord) -> str:
        return resource_name(self.settings.stack_prefix, model.modelId)

    def family(self, model: ModelRecord) -> str:
        return self.stack_name(model)

    # ---- create ------------------------------------------------------------------------------
    def start_create(self, model: ModelRecord) -> None:
        arn = self._register_task_definition(model)
        try:
            self._cfn.create_stack(
                StackName=self.stack_name(model),
                TemplateURL=self.settings.template_url,
                Parameters=self._cfn_parameters(stack_parameters(model, self.settings, arn)),
                Capabilities=CAPABILITIES,
                OnFailure="ROLLBACK",
                Tags=[{"Key": "lisa:model-id", "Value": model.modelId}],
                **self._role(),
            )
        except ClientError as error:
            if _error_code(error) == "AlreadyExistsException":
                raise HostingFailed(
                    f"a stack named {self.stack_name(model)} already exists (left over from an earlier model "
                    "with this id?); delete that stack, then create the model again"
                ) from error
            raise HostingFailed(
                f"CloudFormation refused to create stack {self.stack_name(model)}: {_error_message(error)}"
            ) from error

    def poll_create(self, model: ModelRecord) -> Progress:
        stack = self._describe(model)
        if stack is None:
            raise HostingFailed(f"stack {self.stack_name(model)} disappeared while it was being created")
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return Progress(True, status)
        if status == "CREATE_IN_PROGRESS":
            return Progress(False, status)
        raise HostingFailed(
            f"stack {self.stack_name(model)} ended in {status}: {self._failure_reason(model, stack)}"
        )

    # ---- running -----------------------------------------------------------------------------
    def poll_service(self, model: ModelRecord) -> Progress:
        outputs = self._outputs(model)
        cluster, service_name = outputs.get("ClusterName"), outputs.get("ServiceName")
        if not cluster or not service_name:
            raise HostingFailed(f"stack {self.stack_name(model)} has no ClusterName/ServiceName outputs")
        services = self._ecs.describe_services(cluster=cluster, services=[service_name]).get("services", [])
        if not services:
            raise HostingFailed(
                f"ECS service {service_name} of stack {self.stack_name(model)} does not exist"
            )
        service = services[0]
        deployments = service.get("deployments", [])
        for deployment in deployments:
            if deployment.get("rolloutState") == "FAILED":
                raise HostingFailed(
                    f"the ECS deployment of service {service_name} failed (circuit breaker): "
                    f"{deployment.get('rolloutStateReason', 'no reason given')}; check the container's logs "
                    "and health check"
                )
        desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
        pending = int(service.get("pendingCount", 0))
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
        rollout = primary.get("rolloutState") if primary else None
        detail = f"{running}/{desired} tasks running, {pending} pending, rollout {rollout or 'n/a'}"
        if not model.enabled:
            return Progress(running == 0 and pending == 0, detail)
        steady = len(deployments) <= 1 and rollout in (None, "COMPLETED")
        return Progress(desired >= 1 and running >= desired and steady, detail)

    def endpoint_url(self, model: ModelRecord) -> str:
        url = self._outputs(model).get(ENDPOINT_URL_OUTPUT)
        if not url:
            raise HostingFailed(f"stack {self.stack_name(model)} has no EndpointUrl output")
        return url

    # ---- update ------------------------------------------------------------------------------
    def start_update(self, model: ModelRecord, *, container_changed: bool) -> dict[str, str] | None:
        """Update the stack; returns what ``revert_update``/``finish_update`` need, None if no change."""
        previous = self._outputs_and_parameters(model)[1].get(TASK_DEFINITION_PARAMETER, "")
        new_arn = self._register_task_definition(model) if container_changed else None
        parameters = self._cfn_parameters(stack_parameters(model, self.settings, new_arn))
        if new_arn is None:
            parameters.append({"ParameterKey": TASK_DEFINITION_PARAMETER, "UsePreviousValue": True})
        try:
            self._cfn.update_stack(
                StackName=self.stack_name(model),
                TemplateURL=self.settings.template_url,
                Parameters=parameters,
                Capabilities=CAPABILITIES,
                **self._role(),
            )
        except ClientError as error:
            if new_arn:
                self._deregister([new_arn])
            if "No updates are to be performed" in _error_message(error):
                return None
            raise HostingFailed(
                f"CloudFormation refused to update stack {self.stack_name(model)}: {_error_message(error)}"
            ) from error
        return {"previousTaskDefinitionArn": previous, "newTaskDefinitionArn": new_arn or ""}

    def poll_update(self, model: ModelRecord) -> Progress:
        stack = self._describe(model)
        if stack is None:
            raise HostingFailed(f"stack {self.stack_name(model)} disappeared while it was being updated")
        status = stack["StackStatus"]
        if status == "UPDATE_COMPLETE":
            return Progress(True, status)
        if status in ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"):
            return Progress(False, status)
        raise HostingFailed(
            f"the update of stack {self.stack_name(model)} failed ({status}); CloudFormation rolls it back: "
            f"{self._failure_reason(model, stack)}"
        )

    def revert_update(self, before: ModelRecord, undo: dict[str, str]) -> list[str]:
        notes: list[str] = []
        new_arn, previous = undo.get("newTaskDefinitionArn"), undo.get("previousTaskDefinitionArn")
        stack = self._describe(before)
        if (
            stack is not None
            and stack["StackStatus"].endswith("_COMPLETE")
            and not stack["StackStatus"].startswith("UPDATE_ROLLBACK")
        ):
            current = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
            wanted = stack_parameters(before, self.settings, previous or None)
            if any(current.get(key) != value for key, value in wanted.items()):
                try:
                    self._cfn.update_stack(
                        StackName=self.stack_name(before),
                        TemplateURL=self.settings.template_url,
                        Parameters=self._cfn_parameters(wanted),
                        Capabilities=CAPABILITIES,
                        **self._role(),
                    )
                    notes.append(
                        f"stack {self.stack_name(before)} is being returned to the previous settings"
                    )
                except ClientError as error:
                    notes.append(
                        f"could not return stack {self.stack_name(before)} to the previous settings: "
                        f"{_error_message(error)}"
                    )
        if new_arn:
            self._deregister([new_arn])
        return notes

    def finish_update(self, model: ModelRecord, undo: dict[str, str]) -> None:
        new_arn, previous = undo.get("newTaskDefinitionArn"), undo.get("previousTaskDefinitionArn")
        if new_arn and previous and previous != new_arn:
            self._deregister([previous])

    # ---- delete ------------------------------------------------------------------------------
    def start_delete(self, model: ModelRecord) -> bool:
        stack = self._describe(model)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            return False
        if stack["StackStatus"] != "DELETE_IN_PROGRESS":
            self._cfn.delete_stack(StackName=stack["StackId"], **self._role())
        return True

    def poll_delete(self, model: ModelRecord) -> Progress:
        stack = self._describe(model)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            return Progress(True, "DELETE_COMPLETE")
        status = stack["StackStatus"]
        if status == "DELETE_IN_PROGRESS":
            return Progress(False, status)
        if status == "DELETE_FAILED":
            raise HostingFailed(
                f"stack {self.stack_name(model)} could not be deleted: {self._failure_reason(model, stack)}; "
                "remove what blocks it, then delete the model again"
            )
        # Another operation (a rollback) still runs: deletion starts once it settles.
        if status.endswith("_COMPLETE") or status.endswith("_FAILED"):
            self._cfn.delete_stack(StackName=stack["StackId"], **self._role())
        return Progress(False, status)

    def release(self, model: ModelRecord) -> None:
        self._deregister(list(self._task_definitions(model)))

    # ---- internals ---------------------------------------------------------------------------
    def _role(self) -> dict[str, str]:
        return {"RoleARN": self.settings.stack_role_arn} if self.settings.stack_role_arn else {}

    @staticmethod
    def _cfn_parameters(values: dict[str, str]) -> list[dict[str, Any]]:
        return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]

    def _register_task_definition(self, model: ModelRecord) -> str:
        request = task_definition_request(
            model,
            family=self.family(model),
            execution_role_arn=self.settings.execution_role_arn,
            task_role_arn=self.settings.task_role_arn,
            log_group_name=self.settings.log_group_name,
            region=self.settings.region,
        )
        response = self._ecs.register_task_definition(**request)
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def _task_definitions(self, model: ModelRecord) -> Iterator[str]:
        family = self.family(model)
        for page in self._ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE"
        ):
            for arn in page.get("taskDefinitionArns", []):
                # familyPrefix matches prefixes: keep exactly this family (arn ...:task-definition/FAMILY:REV).
                if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family:
                    yield arn

    def _deregister(self, arns: list[str]) -> None:
        for arn in arns:
            try:
                self._ecs.deregister_task_definition(taskDefinition=arn)
            except ClientError as error:
                if _error_code(error) not in ("ClientException", "InvalidParameterException"):
                    raise

    def _describe(self, model: ModelRecord) -> dict[str, Any] | None:
        try:
            stacks = self._cfn.describe_stacks(StackName=self.stack_name(model)).get("Stacks", [])
        except ClientError as error:
            if _error_code(error) == "ValidationError" and "does not exist" in _error_message(error):
                return None
            raise
        return stacks[0] if stacks else None

    def _outputs_and_parameters(self, model: ModelRecord) -> tuple[dict[str, str], dict[str, str]]:
        stack = self._describe(model)
        if stack is None:
            raise HostingFailed(f"stack {self.stack_name(model)} does not exist")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        return outputs, parameters

    def _outputs(self, model: ModelRecord) -> dict[str, str]:
        return self._outputs_and_parameters(model)[0]

    def _failure_reason(self, model: ModelRecord, stack: dict[str, Any]) -> str:
        """The first resource failure of the latest operation (what a person needs to fix)."""
        try:
            events = self._cfn.describe_stack_events(StackName=stack["StackId"]).get("StackEvents", [])
        except ClientError:
            events = []
        failures = [
            f"{e.get('LogicalResourceId')}: {e.get('ResourceStatusReason')}"
            for e in reversed(events)  # oldest first: the first failure is the cause, later ones follow
            if e.get("ResourceStatus") in _FAILED_RESOURCE_STATES and e.get("ResourceStatusReason")
        ]
        return failures[0] if failures else stack.get("StackStatusReason") or "no reason reported"
