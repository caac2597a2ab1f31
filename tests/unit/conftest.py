"""Fixtures of the admin API, authorizer and key-rotation tests (on top of tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest

from lisa_contracts.settings import AdminApiSettings
from local_mode.resources import LocalResources
from tests.support.lambda_state import configure, fresh_admin_api, fresh_authorizer
from tests.support.oidc_issuer import IdentityProvider, KeyPair, rsa_key
from tests.unit.identity_harness import Harness, make_harness

PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
ROLE_ARN = "arn:aws:iam::123456789012:role/lisa-test-workflows"
MISSING_STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:lisa-test-missing"
#: The workflows the admin API starts (``AdminApiSettings.<name>_state_machine_arn``).
WORKFLOWS = ("create", "update", "delete")


@pytest.fixture(autouse=True, scope="session")
def _shared_botocore_loader() -> Iterator[None]:
    """One botocore data loader for every session (speed only).

    moto gives each test a fresh boto3 default session, and each session would parse the same
    service-model JSON files again (about 40 ms per service per test). The files never change, so
    every session may share one loader and its cache.
    """
    shared = botocore.loaders.create_loader()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", lambda *_args, **_kwargs: shared)
        yield


@dataclass
class Workflows:
    arns: dict[str, str]
    client: Any

    def executions(self, name: str) -> list[dict[str, Any]]:
        """Every execution of one workflow, each with its parsed input."""
        listed = self.client.list_executions(stateMachineArn=self.arns[name])["executions"]
        return [
            {
                **execution,
                "input": json.loads(
                    self.client.describe_execution(executionArn=execution["executionArn"])["input"]
                ),
            }
            for execution in listed
        ]

    def raw_inputs(self) -> list[str]:
        return [
            self.client.describe_execution(executionArn=execution["executionArn"])["input"]
            for arn in self.arns.values()
            for execution in self.client.list_executions(stateMachineArn=arn)["executions"]
        ]

    def count(self) -> int:
        return len(self.raw_inputs())


@pytest.fixture
def workflows(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Workflows:
    """Trivial Pass state machines for create/update/delete, wired into the admin API's environment."""
    client = boto3.client("stepfunctions")
    arns = {
        name: client.create_state_machine(
            name=f"lisa-test-{name}-model", definition=PASS_DEFINITION, roleArn=ROLE_ARN
        )["stateMachineArn"]
        for name in WORKFLOWS
    }
    configure(
        monkeypatch,
        AdminApiSettings.build(
            models_table=resources.models_table,
            create_state_machine_arn=arns["create"],
            update_state_machine_arn=arns["update"],
            delete_state_machine_arn=arns["delete"],
            workflow_poll_seconds=1,
            workflow_max_polls=5,
        ),
    )

    fresh_admin_api()
    return Workflows(arns, client)


@pytest.fixture
def break_workflow(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point one workflow at a state machine that does not exist, so starting it fails."""

    def breaker(name: str) -> None:
        configure(
            monkeypatch,
            AdminApiSettings.build(
                models_table=resources.models_table,
                **{f"{name}_state_machine_arn": MISSING_STATE_MACHINE},
            ),
        )
        fresh_admin_api()

    return breaker


# ---- identity: a real OIDC issuer on 127.0.0.1 and the admin API behind the real authorizer ------
@pytest.fixture(scope="session")
def oidc_key() -> KeyPair:
    return rsa_key("issuer-key-1")


@pytest.fixture(scope="session")
def other_oidc_key() -> KeyPair:
    return rsa_key("other-issuer-key-1")


@pytest.fixture
def oidc_issuer(oidc_key: KeyPair) -> Iterator[IdentityProvider]:
    provider = IdentityProvider([oidc_key.jwk()])
    yield provider
    provider.close()


@pytest.fixture
def other_issuer(other_oidc_key: KeyPair) -> Iterator[IdentityProvider]:
    provider = IdentityProvider([other_oidc_key.jwk()])
    yield provider
    provider.close()


@pytest.fixture
def harness(
    resources: LocalResources,
    workflows: Workflows,
    oidc_issuer: IdentityProvider,
    oidc_key: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    yield make_harness(resources, oidc_issuer, oidc_key, monkeypatch)

    fresh_authorizer()
    fresh_admin_api()
