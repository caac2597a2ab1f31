"""The usage table (lisa_domain.usage) in moto: flushes count once, leases never pass the limit."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from lisa_domain.errors import ValidationFailed
from lisa_domain.usage import (
    FLUSH_BATCH,
    Counts,
    FlushBatch,
    Flushed,
    UsageKey,
    UsageStore,
    days_between,
    summarize,
)
from local_mode.resources import LocalResources
from serve.limits import BudgetGuard
from serve.metering import Meter

DAY = "2026-12-03"
AT = 1_796_256_000.0  # 2026-12-03 (UTC)


@pytest.fixture
def store(resources: LocalResources) -> UsageStore:
    return UsageStore(resources.usage_table, boto3.client("dynamodb"))


class TimesOutAfterCommit:
    """A DynamoDB client whose first TransactWriteItems commits and then times out (the answer is
    lost on the way back), as a flush retried after a timeout meets it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.calls += 1
        answer = self._client.transact_write_items(**kwargs)
        if self.calls == 1:
            raise ReadTimeoutError(endpoint_url="https://dynamodb")
        return answer


def _record(meter: Meter, username: str = "alice", model: str = "m", tokens: int = 5) -> None:
    meter.record(
        username=username,
        groups=("team-a",),
        model=model,
        status=200,
        prompt_tokens=tokens,
        completion_tokens=1,
        latency_seconds=0.01,
        budget_keys=("budget#user#alice",),
    )


def test_a_flush_retried_after_a_timeout_does_not_count_twice(resources: LocalResources) -> None:
    client = TimesOutAfterCommit(boto3.client("dynamodb"))
    store = UsageStore(resources.usage_table, client)
    meter = Meter(store, flush_seconds=10, budgets=BudgetGuard(store, clock=lambda: AT), clock=lambda: AT)
    for _ in range(3):
        _record(meter)
    assert meter.flush() == 0  # the commit happened, the answer timed out: the batch is kept
    assert meter.pending_batches == 1
    _record(meter)  # recorded after the failed flush: a new batch, after the kept one
    assert meter.flush() == 2  # the kept batch is refused as a duplicate, the new one applied
    assert client.calls == 3 and meter.pending_batches == 0
    counted = store.read([DAY], "alice")[UsageKey(DAY, "alice", "m")]
    assert (counted.requests, counted.promptTokens, counted.completionTokens) == (4, 20, 4)
    assert counted.groups == {"team-a"}
    assert store.budgets_used(["budget#user#alice"], "2026-12") == {"budget#user#alice": 24}


def test_a_batch_is_refused_once_its_number_was_applied(store: UsageStore) -> None:
    batch = FlushBatch(7, {UsageKey(DAY, "bob", "m"): Counts(requests=1)}, {})
    assert store.flush("replica-1", batch) is Flushed.APPLIED
    assert store.flush("replica-1", batch) is Flushed.DUPLICATE
    assert store.flush("replica-1", FlushBatch(6, batch.usage, {})) is Flushed.DUPLICATE
    assert store.flush("replica-2", batch) is Flushed.APPLIED  # another replica's own numbers
    assert store.read([DAY])[UsageKey(DAY, "bob", "m")].requests == 2


def test_many_pairs_are_cut_into_transactions_of_at_most_100_actions(store: UsageStore) -> None:
    meter = Meter(store, flush_seconds=10, clock=lambda: AT)
    for index in range(FLUSH_BATCH + 5):
        _record(meter, username=f"user{index}")
    assert meter.flush() == 2
    rows = store.read([DAY])
    assert len(rows) == FLUSH_BATCH + 5 and all(counts.requests == 1 for counts in rows.values())


def test_a_failed_flush_keeps_its_batch_and_a_write_without_the_table_loses_nothing(
    resources: LocalResources,
) -> None:
    missing = UsageStore("no-such-table", boto3.client("dynamodb"))
    meter = Meter(missing, flush_seconds=10, clock=lambda: AT)
    _record(meter)
    assert meter.flush() == 0 and meter.pending_batches == 1
    meter.store = UsageStore(resources.usage_table, boto3.client("dynamodb"))
    assert meter.flush() == 1
    assert meter.store.read([DAY], "alice")[UsageKey(DAY, "alice", "m")].requests == 1


def test_my_usage_excludes_a_user_whose_name_extends_mine(store: UsageStore) -> None:
    usage = {
        UsageKey(DAY, "al", "m#x"): Counts(requests=1),
        UsageKey(DAY, "al#model#m", "x"): Counts(requests=5),
    }
    store.flush("r", FlushBatch(1, usage, {}))
    assert list(store.read([DAY], "al")) == [UsageKey(DAY, "al", "m#x")]


def test_leases_never_pass_the_limit_and_shrink_to_what_is_left(store: UsageStore) -> None:
    assert store.lease("limit#c", "rpm#1", 10, 6) == (6, 6)
    assert store.lease("limit#c", "rpm#1", 10, 6) == (4, 10)  # only 4 left
    assert store.lease("limit#c", "rpm#1", 10, 1) == (0, 10)
    store.give_back("limit#c", "rpm#1", 3)
    assert store.lease("limit#c", "rpm#1", 10, 5) == (3, 10)
    assert store.lease("limit#c", "rpm#2", 10, 1) == (1, 1)  # the next minute starts at zero


def test_summaries_by_user_model_and_group() -> None:
    rows = {
        UsageKey(DAY, "a", "m1"): Counts(1, 0, 10, 5, {"g1", "g2"}),
        UsageKey(DAY, "a", "m2"): Counts(2, 1, 1, 1, {"g1", "g2"}),
        UsageKey("2026-12-04", "b", "m1"): Counts(3, 0, 4, 4, {"g2"}),
    }
    by_user = summarize(rows, "user")
    assert [(r["user"], r["requests"], r["totalTokens"]) for r in by_user] == [("a", 3, 17), ("b", 3, 8)]
    by_model = summarize(rows, "model")
    assert [(r["model"], r["requests"], r["errors"]) for r in by_model] == [("m1", 4, 0), ("m2", 2, 1)]
    by_group = summarize(rows, "group")
    assert [(r["group"], r["requests"]) for r in by_group] == [("g1", 3), ("g2", 6)]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-13-01", "2026-12-01", "from: not a date"),
        ("2026-12-01", "12/02/2026", "to: not a date"),
        ("2026-12-02", "2026-12-01", "to: before from"),
        ("2026-01-01", "2026-12-31", "to: at most 92 days"),
    ],
)
def test_a_bad_range_names_the_parameter(start: str, end: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        days_between(start, end)


def test_a_range_lists_every_day() -> None:
    assert days_between("2026-12-30", "2027-01-02") == [
        "2026-12-30",
        "2026-12-31",
        "2027-01-01",
        "2027-01-02",
    ]
