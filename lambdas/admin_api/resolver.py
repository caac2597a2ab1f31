"""The admin API's resolver, logger and metrics: what the entry point and every route module share.

Importing this module is cheap on purpose (cold start): no domain logic, no request models, and
the resolver's OpenAPI validation is built on first use (``LazyValidationResolver``).
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from lisa_contracts.names import METRICS_NAMESPACE


class LazyValidationResolver(APIGatewayRestResolver):
    """``APIGatewayRestResolver(enable_validation=True)`` whose validation middlewares are built
    when the first route runs instead of in the constructor.

    The constructor imports and builds them only when ``enable_validation`` is passed; when a route
    with validation runs and they are missing, Powertools builds them itself (``Route`` middleware
    stack). Every route of this resolver validates (``_enable_validation`` is the resolver-wide
    default the routes and the OpenAPI document read), so requests are validated exactly as before.
    """

    def __init__(self) -> None:
        super().__init__(enable_validation=False)
        self._enable_validation = True


logger = Logger()  # service: POWERTOOLS_SERVICE_NAME (AdminApiSettings), read by Powertools
metrics = Metrics(namespace=METRICS_NAMESPACE)
app = LazyValidationResolver()
