"""cdk-nag 3.x wiring: run AwsSolutions on the whole app; acknowledge findings with specific reasons."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

#: An acknowledgement needs a real explanation, not "ok" or "n/a".
MIN_REASON_WORDS = 6


def attach_checks(app: cdk.App) -> None:
    """Check every stack of ``app`` with AwsSolutions; an unacknowledged finding fails ``app.synth()``."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` (e.g. ``AwsSolutions-L1``) on ``scope`` and everything under it."""
    if len(reason.split()) < MIN_REASON_WORDS:
        raise ValueError(f"acknowledgement of {rule} needs a specific reason, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcards(scope: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge IAM5 findings one by one: ``{"Action::ecs:Describe*": reason, "Resource::*": reason}``."""
    for finding, reason in findings.items():
        acknowledge(scope, f"AwsSolutions-IAM5[{finding}]", reason)


LAMBDA_RUNTIME_REASON = (
    "Python 3.12 is pinned on purpose: the shared asset's wheels are bundled for CPython 3.12 "
    "(pip --python-version 3.12) and the code is tested on it; moving runtimes is a deliberate upgrade."
)
XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions; "
    "CDK adds them for active tracing."
)


def nag_arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    """An ARN as cdk-nag prints it in a finding id (pseudo parameters in angle brackets)."""
    return (
        f"arn:<AWS::Partition>:{service}:{'<AWS::Region>' if region else ''}:"
        f"{'<AWS::AccountId>' if account else ''}:{resource}"
    )
