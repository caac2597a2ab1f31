"""The admin API's authorizer with credentials as LISA's clients send them (issue 12).

LISA's SDK and integration tests send the same credential in ``Api-Key`` and in ``Authorization``
without ``Bearer``. API Gateway caches the authorizer's answer keyed by ``Authorization`` (its only
identity source), so ``Authorization`` alone decides whenever it is present.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from authorizer import handler
from lisa_domain.tokens import TokenStore
from local_mode.resources import LocalResources
from tests.conftest import ADMIN_GROUP
from tests.support.lambda_state import fresh_authorizer
from tests.unit.helpers import FakeContext, authorizer_event


@pytest.fixture
def authorize(resources: LocalResources) -> Iterator[Any]:
    fresh_authorizer()

    def run(headers: dict[str, str]) -> dict[str, Any]:
        return handler.lambda_handler(authorizer_event(headers, "GET/models"), FakeContext())

    yield run
    fresh_authorizer()


def test_lisa_sdk_headers_are_authorized(resources: LocalResources, authorize: Any) -> None:
    key = resources.management_key
    result = authorize({"Api-Key": key, "Authorization": key})
    assert result["context"]["authMethod"] == "management-key"

    token, _ = TokenStore(resources.tokens_table).create(username="lisa-user", groups=[ADMIN_GROUP])
    result = authorize({"Authorization": token})
    assert result["principalId"] == "lisa-user"
    assert result["context"]["authMethod"] == "api-token"


def test_authorization_alone_decides_when_present(resources: LocalResources, authorize: Any) -> None:
    """A valid ``Api-Key`` beside a wrong ``Authorization`` is refused: a cached answer for that
    ``Authorization`` value must not open the API to a later request without the ``Api-Key``."""
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize({"Authorization": "lisa_wrong", "Api-Key": resources.management_key})
    assert authorize({"Api-Key": resources.management_key})["context"]["authMethod"] == "management-key"
