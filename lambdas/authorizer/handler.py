"""API Gateway REQUEST authorizer for the admin API (thin: the credential logic is ``lisa_domain.auth``).

Allows ``execute-api:Invoke`` on every route of the API's stage, so a cached result serves every
route; the caller travels to the admin API in the context (``username``, ``groups`` as a JSON list,
``isAdmin`` "true"/"false", ``authMethod``). Missing or invalid credentials raise
``Exception("Unauthorized")``, which API Gateway answers with 401. Credentials: the management key,
API tokens and OIDC JWTs (``lisa_domain.auth.authenticator_from_env``). No credential is ever logged.

API Gateway caches a result for the stage's authorizer cache TTL (``api.authorizerCacheSeconds``),
keyed by the ``Authorization`` header: a revoked or expired credential keeps working on the admin
API for at most that long.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lisa_domain.auth import Authenticator, authenticator_from_env, bearer_value, principal_to_context
from lisa_domain.errors import Unauthorized
from lisa_domain.settings import settings

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lisa-authorizer"))

_authenticator: Authenticator | None = None


def authenticator() -> Authenticator:
    """The container's authenticator (built once: it caches the management key and the OIDC keys)."""
    global _authenticator
    if _authenticator is None:
        _authenticator = authenticator_from_env()
    return _authenticator


def reset() -> None:
    """Forget the authenticator and the cached settings (tests)."""
    global _authenticator
    _authenticator = None
    settings.cache_clear()


def api_resource(method_arn: str) -> str:
    """``arn:aws:execute-api:region:account:apiId/stage/*/*`` from one method's ARN."""
    prefix, _, path = method_arn.partition("/")
    stage = path.split("/", 1)[0]
    if not prefix.startswith("arn:") or not stage:
        raise ValueError("methodArn is not an execute-api method ARN")
    return f"{prefix}/{stage}/*/*"


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        principal = authenticator().authenticate(bearer_value(event.get("headers")))
    except Unauthorized as error:
        logger.info("request denied", extra={"reason": str(error)})
        raise Exception("Unauthorized") from None  # API Gateway's convention for 401
    logger.info("request authorized", extra={"username": principal.username, "auth_method": principal.method})
    return {
        "principalId": principal.username,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": api_resource(event["methodArn"]),
                }
            ],
        },
        "context": principal_to_context(principal),
    }
