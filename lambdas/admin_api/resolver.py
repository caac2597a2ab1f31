"""The admin API's resolver, logger and metrics: what the entry point and every route module share.

Importing this module is cheap on purpose (cold start): no domain logic, no request models.
"""

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "lisa-admin-api")

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LISA"))
app = APIGatewayRestResolver(enable_validation=True)
