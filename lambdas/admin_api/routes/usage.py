"""The ``/usage`` routes: metered usage from the usage table (``lisa_domain.usage``).

``GET /usage`` (admins): totals per user, model or group over a range of days, paginated.
``GET /usage/me`` (any caller): the caller's own usage per day and model, with totals. Serve
replicas flush every 10 seconds, so an answer includes requests made until about 10 s before it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from admin_api.resolver import app
from admin_api.responses import json_response
from admin_api.routes.common import caller, error_docs, ok_docs
from admin_api.wiring import usage_store
from lisa_domain.errors import Forbidden
from lisa_domain.pagination import decode_token, encode_token
from lisa_domain.schema import MyUsageResponse, UsageCounters, UsageResponse
from lisa_domain.usage import daily, days_between, summarize

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The one field of a ``/usage`` cursor: the last name of the previous page.
CURSOR_FIELD = "after"


def _range(start: str | None, end: str | None) -> tuple[str, str, list[str]]:
    """Default: from the first of this month (UTC) to today."""
    today = datetime.now(UTC).date()
    start = start or today.replace(day=1).isoformat()
    end = end or today.isoformat()
    return start, end, days_between(start, end)


From = Annotated[
    str | None, Query(alias="from", description="First day, YYYY-MM-DD (UTC); default: the 1st of this month")
]
To = Annotated[
    str | None, Query(alias="to", description="Last day, YYYY-MM-DD (UTC), inclusive; default: today")
]


@app.get(
    "/usage",
    summary="Usage per user, model or group",
    description="Admins only. Requests, errors and tokens metered by the serve API between from and to "
    "(at most 92 days), totalled per user, model or group, sorted by name. Includes requests until "
    "about 10 s ago (replicas flush every 10 s). nextToken is absent on the last page.",
    responses={**ok_docs("One page of totals", UsageResponse), **error_docs(400, 401, 403, 422)},
)
def get_usage(
    start: From = None,
    end: To = None,
    group_by: Annotated[Literal["user", "model", "group"], Query(alias="groupBy")] = "user",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    next_token: Annotated[str | None, Query(alias="nextToken")] = None,
) -> Response[dict[str, Any]]:
    if not caller().is_admin:
        raise Forbidden("only administrators may read everyone's usage (GET /usage/me: your own)")
    first, last, days = _range(start, end)
    cursor = decode_token(next_token, frozenset({CURSOR_FIELD}))
    rows = summarize(usage_store().read(days), group_by)
    if cursor is not None:
        rows = [row for row in rows if row[group_by] > str(cursor[CURSOR_FIELD])]
    page = rows[:limit]
    body: dict[str, Any] = {"from": first, "to": last, "groupBy": group_by, "usage": page}
    if len(rows) > limit:
        body["nextToken"] = encode_token({CURSOR_FIELD: page[-1][group_by]})
    return json_response(HTTPStatus.OK, body)


@app.get(
    "/usage/me",
    summary="Your own usage",
    description="Any authenticated caller: their own requests, errors and tokens per day and model "
    "between from and to (at most 92 days), with totals.",
    responses={**ok_docs("The caller's usage", MyUsageResponse), **error_docs(400, 401, 422)},
)
def get_my_usage(start: From = None, end: To = None) -> Response[dict[str, Any]]:
    principal = caller()
    first, last, days = _range(start, end)
    entries = daily(usage_store().read(days, principal.username))
    total = {name: sum(entry[name] for entry in entries) for name in UsageCounters.model_fields}
    body = {"username": principal.username, "from": first, "to": last, "total": total, "usage": entries}
    return json_response(HTTPStatus.OK, body)
