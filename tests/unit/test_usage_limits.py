"""Limiter and budget arithmetic: slices, leases across replicas, budgets, the limits document."""

from __future__ import annotations

import asyncio

import boto3
import pytest

from lisa_contracts.limits import RateLimit, UsageLimits, budget_key
from lisa_contracts.settings import SettingsError
from lisa_domain.usage import UsageStore
from local_mode.resources import LocalResources
from serve.limits import BudgetGuard, LimitExceeded, RateLimiter, slice_size

MINUTE_START = 1_796_256_000.0  # a whole minute (and 2026-12-03 00:00 UTC)


@pytest.fixture
def store(resources: LocalResources) -> UsageStore:
    return UsageStore(resources.usage_table, boto3.client("dynamodb"))


@pytest.mark.parametrize(
    ("limit", "granted", "expected"),
    [(60, 0, 6), (60, 36, 6), (60, 42, 4), (60, 56, 1), (60, 59, 1), (1, 0, 1), (1000, 0, 100), (3, 0, 1)],
)
def test_slices_are_a_tenth_of_the_limit_at_most_a_quarter_of_what_is_left(
    limit: int, granted: int, expected: int
) -> None:
    assert slice_size(limit, granted) == expected


def _admitted(limiters: list[RateLimiter], requests: int, limit: RateLimit) -> int:
    async def run() -> int:
        admitted = 0
        for index in range(requests):  # round robin, as a load balancer spreads one caller's requests
            try:
                await limiters[index % len(limiters)].admit("user#c", limit)
                admitted += 1
            except LimitExceeded:
                pass
        return admitted

    return asyncio.run(run())


def test_three_replicas_admit_exactly_the_rpm_limit_with_few_writes(store: UsageStore) -> None:
    writes = []
    original = store.lease

    def counting_lease(*args: object, **kwargs: object) -> tuple[int, int]:
        writes.append(args)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    store.lease = counting_lease  # type: ignore[method-assign]
    limiters = [RateLimiter(store, clock=lambda: MINUTE_START + 5) for _ in range(3)]
    assert _admitted(limiters, 150, RateLimit(rpm=60)) == 60
    assert len(writes) <= 25  # leases, not a write per request (150 requests)
    later = [RateLimiter(store, clock=lambda: MINUTE_START + 65) for _ in range(3)]
    assert _admitted(later, 10, RateLimit(rpm=60)) == 10  # the next minute


def test_a_refused_request_says_when_to_retry_and_what_is_left(store: UsageStore) -> None:
    limiter = RateLimiter(store, clock=lambda: MINUTE_START + 45)

    async def run() -> tuple[dict[str, str], LimitExceeded]:
        headers = await limiter.admit("user#d", RateLimit(rpm=2))
        await limiter.admit("user#d", RateLimit(rpm=2))
        with pytest.raises(LimitExceeded) as refused:
            await limiter.admit("user#d", RateLimit(rpm=2))
        return headers, refused.value

    headers, error = asyncio.run(run())
    assert headers == {"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1"}
    assert error.status == 429 and error.code == "rate_limit_exceeded"
    assert error.headers["Retry-After"] == "15" and error.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_are_taken_after_the_answer_and_refuse_once_spent(store: UsageStore) -> None:
    limiter = RateLimiter(store, clock=lambda: MINUTE_START)
    limit = RateLimit(tpm=100)

    async def run() -> None:
        await limiter.admit("user#t", limit)
        limiter.spend_tokens("user#t", limit, 60)
        await limiter.admit("user#t", limit)  # 40 left (leased as needed)
        limiter.spend_tokens("user#t", limit, 70)  # overshoots by one request's tokens
        with pytest.raises(LimitExceeded):
            await limiter.admit("user#t", limit)

    asyncio.run(run())


def test_a_budget_is_never_refused_while_unspent_and_always_once_spent(store: UsageStore) -> None:
    now = [MINUTE_START]
    guard = BudgetGuard(store, clock=lambda: now[0])
    key = budget_key("user", "alice")

    async def check() -> None:
        await guard.check({key: 100})

    asyncio.run(check())
    guard.spend([key], 99)
    asyncio.run(check())  # 99 of 100: within the budget
    guard.spend([key], 1)
    with pytest.raises(LimitExceeded) as refused:
        asyncio.run(check())
    assert refused.value.code == "budget_exceeded"
    assert int(refused.value.headers["Retry-After"]) == 29 * 86_400  # until 2027-01-01 00:00 UTC
    now[0] += 29 * 86_400  # January: a new month
    asyncio.run(check())


def test_a_budget_spent_on_another_replica_is_known_after_its_flush(store: UsageStore) -> None:
    from lisa_domain.usage import FlushBatch

    key = budget_key("group", "team-a")
    guard = BudgetGuard(store, clock=lambda: MINUTE_START)
    asyncio.run(guard.check({key: 50}))  # reads the stored spend: 0
    store.flush("other", FlushBatch(1, {}, {(key, "2026-12"): 50}))
    asyncio.run(guard.check({key: 50}))  # not known yet (at most one flush interval)
    guard.flushed({})  # this replica's own flush re-reads the counters it knows
    with pytest.raises(LimitExceeded):
        asyncio.run(guard.check({key: 50}))


def test_the_limits_document() -> None:
    limits = UsageLimits.from_json(
        '{"rateLimit": {"rpm": 10}, "monthlyTokenBudget": 1000,'
        ' "users": {"vip": {"rateLimit": {"rpm": 500}, "monthlyTokenBudget": 5}},'
        ' "groups": {"a": {"rateLimit": {"rpm": 100, "tpm": 9}}, "b": {"rateLimit": {"rpm": 50}},'
        ' "c": {"monthlyTokenBudget": 77}}}'
    )
    assert limits.rate_limit("x", ()) == RateLimit(rpm=10)
    assert limits.rate_limit("x", ("a",)) == RateLimit(rpm=100, tpm=9)
    assert limits.rate_limit("x", ("a", "b")) == RateLimit(rpm=100, tpm=None)  # b leaves tpm open
    assert limits.rate_limit("vip", ("a",)) == RateLimit(rpm=500)
    assert limits.budgets("x", ("c",)) == {"budget#user#x": 1000, "budget#group#c": 77}
    assert limits.budgets("vip", ()) == {"budget#user#vip": 5}
    assert not UsageLimits.from_json("").configured
    assert RateLimit(rpm=20).within(RateLimit(rpm=10, tpm=5)) == "rpm"
    assert RateLimit(rpm=5).within(RateLimit(rpm=10, tpm=5)) == "tpm"  # no tpm: above the ceiling
    assert RateLimit(rpm=5, tpm=5).within(RateLimit(rpm=10)) is None


@pytest.mark.parametrize("text", ['{"rateLimit": {"rpm": 0}}', '{"rateLimits": {}}', "not json"])
def test_a_bad_limits_document_is_refused_by_name(text: str) -> None:
    with pytest.raises(SettingsError, match="LISA_USAGE_LIMITS"):
        UsageLimits.from_json(text)
