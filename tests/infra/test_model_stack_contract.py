"""The workflow step and the synthesized per-model template agree, and stack calls fit the IAM pins.

The step Lambda may create and update model stacks only from ``MODEL_STACK_TEMPLATE_URL`` (an IAM
condition on ``cloudformation:TemplateUrl``): an update that asked for the previous template would
be denied in AWS, and an old model stack would lack parameters added since (``ServeSecurityGroupId``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from lisa_domain.schema import CreateModelRequest, ModelRecord, ModelStatus
from tests.support.lisa_payloads import VLLM_MODEL
from workflow_steps.hosting.ecs import EcsHostingBackend, EcsSettings, stack_parameters

SETTINGS = EcsSettings(
    template_url="https://s3.us-east-1.amazonaws.com/assets/model.json",
    stack_prefix="lisa-dev-model-",
    vpc_id="vpc-0123456789abcdef0",
    subnet_ids="subnet-0123456789abcdef0,subnet-0123456789abcdef1",
    serve_security_group_id="sg-0123456789abcdef0",
    execution_role_arn="arn:aws:iam::123456789012:role/exec",
    task_role_arn="arn:aws:iam::123456789012:role/task",
    stack_role_arn="arn:aws:iam::123456789012:role/stack",
)


def _model() -> ModelRecord:
    return ModelRecord.model_validate(
        CreateModelRequest.model_validate(VLLM_MODEL).definition().model_dump()
        | {"status": ModelStatus.IN_SERVICE, "createdAt": 0, "updatedAt": 0}
    )


class _Recorder:
    """Stands in for the CloudFormation and ECS clients; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            if name == "describe_stacks":
                return {"Stacks": [{"StackId": "id", "StackStatus": "CREATE_COMPLETE", "Parameters": []}]}
            if name == "register_task_definition":
                return {
                    "taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/x:2"}
                }
            return {}

        return call


def test_parameters_the_step_passes_are_exactly_what_the_template_takes(model: Template) -> None:
    template = model.to_json()["Parameters"]
    passed = set(stack_parameters(_model(), SETTINGS, "arn:aws:ecs:us-east-1:1:task-definition/x:1"))
    assert passed <= set(template), passed - set(template)
    required = {name for name, spec in template.items() if "Default" not in spec}
    assert required <= passed, required - passed
    assert stack_parameters(_model(), SETTINGS, None)["ServeSecurityGroupId"] == "sg-0123456789abcdef0"


def test_every_create_and_update_names_the_pinned_template_and_role() -> None:
    cloudformation, ecs = _Recorder(), _Recorder()
    backend = EcsHostingBackend(SETTINGS, cloudformation=cloudformation, ecs=ecs)
    model = _model()
    backend.start_create(model)
    backend.start_update(model, container_changed=True)
    backend.start_update(model, container_changed=False)
    changes = [kwargs for name, kwargs in cloudformation.calls if name in ("create_stack", "update_stack")]
    assert len(changes) == 3
    for kwargs in changes:
        assert kwargs["TemplateURL"] == SETTINGS.template_url
        assert "UsePreviousTemplate" not in kwargs and "TemplateBody" not in kwargs
        assert kwargs["RoleARN"] == SETTINGS.stack_role_arn
