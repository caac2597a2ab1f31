"""The usage table: metered aggregates, idempotent flushes, rate-limit leases and budget counters.

One table, key ``pk`` (S) + ``sk`` (S) (``lisa_contracts.names``), four kinds of item:

* usage aggregates: ``pk = "day#YYYY-MM-DD"``, ``sk = "user#<username>#model#<modelId>"`` with
  ``username``, ``model``, ``groups`` (SS) and the counters ``requests``, ``errors``,
  ``promptTokens``, ``completionTokens`` (N), moved only by atomic ``ADD``;
* flush markers: ``pk = "replica#<id>"``, ``sk = "flush"``, ``flushedSeq`` (N): the last flush
  sequence number of that serve replica that was applied;
* rate-limit windows: ``pk = "limit#<caller>"``, ``sk = "<rpm|tpm>#<minute>"``, ``granted`` (N):
  how much of the caller's one-minute window replicas have leased;
* budget counters: ``pk = "budget#<user|group|token>#<name>"``, ``sk = "month#YYYY-MM"``, ``used``
  (N): tokens spent that month.

A flush is one ``TransactWriteItems`` of up to ``FLUSH_BATCH`` ``ADD`` updates plus an update of the
replica's flush marker conditioned on ``flushedSeq < seq``. A flush retried after a timeout that had
in fact committed is refused by that condition as a whole (``Flushed.DUPLICATE``), so it never
counts twice. Lease windows and flush markers carry ``expiresAt`` (the table's TTL attribute).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lisa_contracts.names import USAGE_TABLE_EXPIRY_ATTRIBUTE, USAGE_TABLE_PARTITION_KEY, USAGE_TABLE_SORT_KEY
from lisa_domain.errors import ValidationFailed

logger = logging.getLogger(__name__)

PK, SK, EXPIRES = USAGE_TABLE_PARTITION_KEY, USAGE_TABLE_SORT_KEY, USAGE_TABLE_EXPIRY_ATTRIBUTE
#: Aggregates per transaction (DynamoDB allows 100 actions; one is the flush marker).
FLUSH_BATCH = 99
#: Longest range ``/usage`` reads (one Query per day).
MAX_RANGE_DAYS = 92
#: How long flush markers and lease windows are kept (TTL), seconds.
MARKER_TTL_SECONDS = 7 * 86_400
WINDOW_TTL_SECONDS = 3_600
COUNTERS = ("requests", "errors", "promptTokens", "completionTokens")


class Flushed(Enum):
    APPLIED = "applied"
    #: The marker already holds this sequence number: an earlier attempt committed.
    DUPLICATE = "duplicate"


@dataclass(frozen=True, order=True)
class UsageKey:
    day: str  # YYYY-MM-DD (UTC)
    username: str
    model: str


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0
    promptTokens: int = 0
    completionTokens: int = 0
    groups: set[str] = field(default_factory=set)

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.promptTokens += other.promptTokens
        self.completionTokens += other.completionTokens
        self.groups |= other.groups

    @property
    def tokens(self) -> int:
        return self.promptTokens + self.completionTokens

    def body(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS} | {"totalTokens": self.tokens}


@dataclass(frozen=True)
class FlushBatch:
    """One transaction's worth of aggregates and budget spends, with its sequence number."""

    seq: int
    usage: Mapping[UsageKey, Counts]
    budgets: Mapping[tuple[str, str], int]  # (budget key, month) -> tokens


def day_of(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def month_of(at: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(at))


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{name}: not a date (YYYY-MM-DD)") from None


def days_between(start: str, end: str) -> list[str]:
    """Every day from ``start`` to ``end`` inclusive; ``ValidationFailed`` naming the bad parameter."""
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if last < first:
        raise ValidationFailed("to: before from")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"to: at most {MAX_RANGE_DAYS} days after from")
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


def _counters(item: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(item.get(name, {}).get("N", "0")) for name in COUNTERS}


def _usage_sk(username: str, model: str) -> str:
    return f"user#{username}#model#{model}"


class UsageStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table = table_name
        self._client = client or boto3.client("dynamodb")

    # ---- flush ------------------------------------------------------------------------------------
    def flush(self, replica_id: str, batch: FlushBatch, at: float | None = None) -> Flushed:
        """Apply ``batch`` once: ``DUPLICATE`` when this replica's marker already reached its seq."""
        now = int(time.time() if at is None else at)
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {PK: {"S": f"replica#{replica_id}"}, SK: {"S": "flush"}},
                    "UpdateExpression": "SET flushedSeq = :seq, #exp = :exp",
                    "ConditionExpression": "attribute_not_exists(flushedSeq) OR flushedSeq < :seq",
                    "ExpressionAttributeNames": {"#exp": EXPIRES},
                    "ExpressionAttributeValues": {
                        ":seq": {"N": str(batch.seq)},
                        ":exp": {"N": str(now + MARKER_TTL_SECONDS)},
                    },
                }
            }
        ]
        for key, counts in batch.usage.items():
            actions.append({"Update": self._usage_update(key, counts)})
        for (budget, month), tokens in batch.budgets.items():
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {PK: {"S": budget}, SK: {"S": f"month#{month}"}},
                        "UpdateExpression": "ADD used :n",
                        "ExpressionAttributeValues": {":n": {"N": str(tokens)}},
                    }
                }
            )
        if len(actions) > FLUSH_BATCH + 1:
            raise ValueError(f"a flush batch holds at most {FLUSH_BATCH} updates")
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return Flushed.DUPLICATE
            raise
        return Flushed.APPLIED

    def _usage_update(self, key: UsageKey, counts: Counts) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":u": {"S": key.username},
            ":m": {"S": key.model},
            **{f":{name}": {"N": str(getattr(counts, name))} for name in COUNTERS},
        }
        expression = "SET username = :u, model = :m ADD " + ", ".join(f"{name} :{name}" for name in COUNTERS)
        if counts.groups:
            values[":g"] = {"SS": sorted(counts.groups)}
            expression += ", #groups :g"
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {PK: {"S": f"day#{key.day}"}, SK: {"S": _usage_sk(key.username, key.model)}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if counts.groups:
            update["ExpressionAttributeNames"] = {"#groups": "groups"}
        return update

    # ---- reads ------------------------------------------------------------------------------------
    def read(self, days: Iterable[str], username: str | None = None) -> dict[UsageKey, Counts]:
        """The aggregates of ``days`` (one user's only, when ``username`` is given)."""
        rows: dict[UsageKey, Counts] = {}
        for day in days:
            query: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": f"{PK} = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"day#{day}"}},
                "ConsistentRead": True,
            }
            if username is not None:
                query["KeyConditionExpression"] += f" AND begins_with({SK}, :sk)"
                query["ExpressionAttributeValues"][":sk"] = {"S": f"user#{username}#model#"}
            for item in self._query(query):
                key = UsageKey(day, item["username"]["S"], item["model"]["S"])
                if username is not None and key.username != username:
                    continue  # a name that merely starts like this one's key
                rows[key] = Counts(**_counters(item), groups=set(item.get("groups", {}).get("SS", [])))
        return rows

    def _query(self, query: dict[str, Any]) -> Iterable[dict[str, Any]]:
        while True:
            page = self._client.query(**query)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def budgets_used(self, keys: Iterable[str], month: str) -> dict[str, int]:
        """Tokens spent in ``month`` per budget key (absent: 0)."""
        wanted = sorted(set(keys))
        used = dict.fromkeys(wanted, 0)
        for start in range(0, len(wanted), 100):
            request = {
                self.table: {
                    "Keys": [
                        {PK: {"S": key}, SK: {"S": f"month#{month}"}} for key in wanted[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    used[item[PK]["S"]] = int(item.get("used", {}).get("N", "0"))
                request = answer.get("UnprocessedKeys") or {}
        return used

    # ---- rate-limit leases ------------------------------------------------------------------------
    def lease(
        self, counter: str, window: str, limit: int, want: int, at: float | None = None
    ) -> tuple[int, int]:
        """Take up to ``want`` of ``limit`` from ``counter``'s ``window``: (taken, granted so far).

        One conditional ``ADD``; when less than ``want`` is left, a second one for exactly what is
        left (0 taken: the window is spent)."""
        expires = int(time.time() if at is None else at) + WINDOW_TTL_SECONDS
        for _ in range(3):
            try:
                answer = self._client.update_item(
                    TableName=self.table,
                    Key={PK: {"S": counter}, SK: {"S": window}},
                    UpdateExpression="ADD granted :n SET #exp = :exp",
                    ConditionExpression="attribute_not_exists(granted) OR granted <= :room",
                    ExpressionAttributeNames={"#exp": EXPIRES},
                    ExpressionAttributeValues={
                        ":n": {"N": str(want)},
                        ":room": {"N": str(limit - want)},
                        ":exp": {"N": str(expires)},
                    },
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return want, int(answer["Attributes"]["granted"]["N"])
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                old = error.response.get("Item") or self._granted(counter, window)
                granted = int(old.get("granted", {}).get("N", "0"))
                want = limit - granted
                if want <= 0:
                    return 0, granted
        return 0, limit

    def give_back(self, counter: str, window: str, amount: int) -> None:
        """Return an unused part of a lease (never below zero)."""
        try:
            self._client.update_item(
                TableName=self.table,
                Key={PK: {"S": counter}, SK: {"S": window}},
                UpdateExpression="ADD granted :n",
                ConditionExpression="granted >= :amount",
                ExpressionAttributeValues={":n": {"N": str(-amount)}, ":amount": {"N": str(amount)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _granted(self, counter: str, window: str) -> dict[str, Any]:
        answer = self._client.get_item(
            TableName=self.table, Key={PK: {"S": counter}, SK: {"S": window}}, ConsistentRead=True
        )
        return dict(answer.get("Item") or {})


# ---- reports ----------------------------------------------------------------------------------------
GROUP_BY = ("user", "model", "group")


def summarize(rows: Mapping[UsageKey, Counts], group_by: str) -> list[dict[str, Any]]:
    """Totals per user, model or group (a user's usage counts for each of their groups), sorted."""
    totals: dict[str, Counts] = {}
    for key, counts in rows.items():
        if group_by == "user":
            names: Iterable[str] = (key.username,)
        elif group_by == "model":
            names = (key.model,)
        else:
            names = counts.groups or ("",)
        for name in names:
            totals.setdefault(name, Counts()).add(Counts(**{c: getattr(counts, c) for c in COUNTERS}))
    return [{group_by: name, **totals[name].body()} for name in sorted(totals)]


def daily(rows: Mapping[UsageKey, Counts]) -> list[dict[str, Any]]:
    """One entry per day and model (a caller's own usage)."""
    return [{"day": key.day, "model": key.model, **rows[key].body()} for key in sorted(rows)]
