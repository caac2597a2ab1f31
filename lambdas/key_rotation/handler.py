"""Secrets Manager rotation Lambda for the management key (the standard four-step protocol).

* ``createSecret``: store a new random key as the ``AWSPENDING`` version (idempotent);
* ``setSecret``: nothing to do, the key is only ever checked against this secret;
* ``testSecret``: the pending version is readable and well formed;
* ``finishSecret``: move ``AWSCURRENT`` to the new version; Secrets Manager labels the old one
  ``AWSPREVIOUS``. ``lisa_domain.auth.ManagementKey`` accepts the previous version for
  ``MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS`` (default one day) after the new one was created, so
  clients holding the old key have that long to switch.

No key value is ever logged.
"""

import re
import secrets
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME (KeyRotationSettings)

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
KEY_BYTES = 32
#: ``secrets.token_urlsafe(32)``: 43 characters of the URL-safe base64 alphabet.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43,}$")

_client: Any = None


def client() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("secretsmanager")
    return _client


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def _stages(secret_id: str, token: str) -> list[str] | None:
    """The version's staging labels, or None when Secrets Manager has no such version (yet)."""
    versions: dict[str, list[str]] = (
        client().describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    )
    return versions.get(token)


def create_secret(secret_id: str, token: str) -> None:
    try:
        client().get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
        logger.info("createSecret: the pending version already exists")
        return
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    client().put_secret_value(
        SecretId=secret_id, ClientRequestToken=token, SecretString=new_key(), VersionStages=[PENDING]
    )
    logger.info("createSecret: stored a new pending version")


def set_secret(secret_id: str, token: str) -> None:
    """Nothing to configure elsewhere: the management key is only compared with this secret."""
    logger.info("setSecret: nothing to do")


def test_secret(secret_id: str, token: str) -> None:
    value = client().get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)[
        "SecretString"
    ]
    if not KEY_PATTERN.match(value):
        raise ValueError("testSecret: the pending version is not a well-formed management key")
    logger.info("testSecret: the pending version is well formed")


def finish_secret(secret_id: str, token: str) -> None:
    versions: dict[str, list[str]] = client().describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    current = next((version for version, stages in versions.items() if CURRENT in stages), None)
    if current == token:
        logger.info("finishSecret: the version is already current")
        return
    kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": CURRENT, "MoveToVersionId": token}
    if current is not None:
        kwargs["RemoveFromVersionId"] = current
    client().update_secret_version_stage(**kwargs)
    client().update_secret_version_stage(SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=token)
    logger.info("finishSecret: the new version is current; the old one is previous")


STEPS = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    secret_id, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    logger.append_keys(step=step, secret_id=secret_id, version_id=token)
    if step not in STEPS:
        raise ValueError(f"unknown rotation step {step!r}")
    stages = _stages(secret_id, token)
    if stages is None:
        # Secrets Manager registers the version before calling createSecret; tolerate its absence
        # there only (the step creates it), never later.
        if step != "createSecret":
            raise ValueError(f"version {token} of the secret does not exist")
    elif CURRENT in stages:
        logger.info("the version is already current; nothing to do")
        return
    elif PENDING not in stages:
        raise ValueError(f"version {token} of the secret is not pending rotation")
    STEPS[step](secret_id, token)
