"""API Gateway REQUEST authorizer for the admin API (thin: the credential logic is ``lisa_domain.auth``).

Allows ``execute-api:Invoke`` on every route of the API's stage (Powertools'
``APIGatewayAuthorizerResponse``), so a cached result serves every route; the caller travels to the admin API in the context (``username``, ``groups`` as a JSON list,
``isAdmin`` "true"/"false", ``authMethod``). Missing or invalid credentials raise
``Exception("Unauthorized")``, which API Gateway answers with 401. Credentials: the management key,
API tokens and OIDC JWTs (``lisa_domain.auth.authenticator_from_env``). No credential is ever logged.

API Gateway caches a result for the stage's authorizer cache TTL (``api.authorizerCacheSeconds``),
keyed by the ``Authorization`` header: a revoked or expired credential keeps working on the admin
API for at most that long.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    parse_api_gateway_arn,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from lisa_domain.auth import (
    Authenticator,
    Principal,
    authenticator_from_env,
    bearer_value,
    principal_to_context,
)
from lisa_domain.errors import Unauthorized

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME (AuthorizerSettings)

_authenticator: Authenticator | None = None


def authenticator() -> Authenticator:
    """The container's authenticator (built once: it caches the management key and the OIDC keys)."""
    global _authenticator
    if _authenticator is None:
        _authenticator = authenticator_from_env()
    return _authenticator


def stage_policy(method_arn: str, principal: Principal) -> dict[str, Any]:
    """The answer allowing ``principal`` every route of ``method_arn``'s stage, with its context."""
    try:
        route = parse_api_gateway_arn(method_arn)
    except IndexError:
        route = None
    if route is None or not method_arn.startswith("arn:") or not route.stage:
        raise ValueError("methodArn is not an execute-api method ARN")
    response = APIGatewayAuthorizerResponse(
        principal.username,
        route.region,
        route.aws_account_id,
        route.api_id,
        route.stage,
        context=principal_to_context(principal),
        partition=route.partition,
    )
    response.allow_all_routes()
    return response.asdict()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        principal = authenticator().authenticate(bearer_value(event.get("headers")))
    except Unauthorized as error:
        logger.info("request denied", extra={"reason": str(error)})
        raise Exception("Unauthorized") from None  # API Gateway's convention for 401
    logger.info("request authorized", extra={"username": principal.username, "auth_method": principal.method})
    return stage_policy(event["methodArn"], principal)
