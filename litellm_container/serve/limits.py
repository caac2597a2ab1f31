"""Global rate limits and monthly budgets, enforced by every replica without a write per request.

Rate limits (``RateLimiter``): each caller has one fixed one-minute window per limit (``rpm``,
``tpm``), a counter item in the usage table (``lisa_domain.usage``). A replica admits requests from
a local *lease*, a slice of the window it took from the counter with a conditional ``ADD`` that
never lets the counter pass the limit. Slices start at a tenth of the limit and shrink to a quarter
of what is left, so near the limit the replicas hold at most a request or two each that the
others cannot use; the window's counter is exact, so the replicas together admit at most ``rpm``
requests a minute, and the caller reaches ``rpm`` as long as every replica keeps receiving its
requests. What a lease did not use is given back when its window ends early (shutdown) and lapses
with the window otherwise. Once the counter is spent, the replica refuses locally until the next
minute (no write per refused request). Tokens are known after the answer: a request is admitted
while the replica's token lease is positive and its tokens are then taken from it (a lease may go
negative by one request's tokens; the debt is taken from the next lease).

Budgets (``BudgetGuard``): tokens spent per month per user, group and token are added to counters
by the metering flush (``serve.metering``) and read back after each flush; a caller is refused
``budget_exceeded`` once the spend it knows of (stored plus this replica's unflushed) reaches the
budget. Other replicas' unflushed spend (at most one flush interval) may pass the budget; usage
within the budget is never refused.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from starlette.responses import Response

from lisa_contracts.limits import RateLimit, UsageLimits, budget_key
from lisa_domain.auth import Principal
from lisa_domain.usage import UsageStore, month_of
from serve.errors import ServeError

logger = logging.getLogger("lisa.serve")

WINDOW_SECONDS = 60


class LimitExceeded(ServeError):
    """429 in OpenAI's error shape with ``Retry-After`` and the rate-limit headers."""

    def __init__(self, message: str, code: str, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(429, message, type="requests", code=code)
        self.headers = {**headers, "Retry-After": str(retry_after)}

    def response(self) -> Response:
        response = super().response()
        response.headers.update(self.headers)
        return response


def slice_size(limit: int, granted: int) -> int:
    """What to lease next: a tenth of the limit, at most a quarter of what is left, at least one."""
    left = limit - granted
    return max(1, min(math.ceil(limit / 10), left // 4, left))


@dataclass
class _Lease:
    """This replica's part of one caller's window for one limit."""

    window: int
    taken: int = 0  # leased from the counter
    used: int = 0
    granted: int = 0  # the counter's value at the last lease (every replica's leases)
    spent: bool = False  # the counter reached the limit
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def left(self) -> int:
        return self.taken - self.used


class RateLimiter:
    def __init__(self, store: UsageStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._leases: dict[tuple[str, str], _Lease] = {}

    def _lease(self, caller: str, kind: str, window: int) -> _Lease:
        lease = self._leases.get((caller, kind))
        if lease is None or lease.window != window:
            lease = _Lease(window)
            self._leases[(caller, kind)] = lease
        return lease

    async def admit(self, caller: str, limit: RateLimit) -> dict[str, str]:
        """Count one request of ``caller`` (raise ``LimitExceeded`` over a limit); the headers to send."""
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        headers: dict[str, str] = {}
        for kind, amount in (("rpm", limit.rpm), ("tpm", limit.tpm)):
            if amount is None:
                continue
            lease = self._lease(caller, kind, window)
            if lease.left < 1 and not lease.spent:
                await self._refill(caller, kind, lease, amount, need=1 - lease.left)
            noun = "requests" if kind == "rpm" else "tokens"
            headers[f"x-ratelimit-limit-{noun}"] = str(amount)
            if lease.left < 1:
                headers[f"x-ratelimit-remaining-{noun}"] = "0"
                headers[f"x-ratelimit-reset-{noun}"] = f"{retry_after}s"
                raise LimitExceeded(
                    f"Rate limit reached: {amount} {noun} per minute; retry in {retry_after} s.",
                    "rate_limit_exceeded",
                    retry_after,
                    headers,
                )
            if kind == "rpm":
                lease.used += 1
            headers[f"x-ratelimit-remaining-{noun}"] = str(max(0, amount - lease.granted + lease.left))
        return headers

    def spend_tokens(self, caller: str, limit: RateLimit, tokens: int) -> None:
        """Take an answered request's tokens from the caller's token lease (it may go negative)."""
        if limit.tpm is None or tokens <= 0:
            return
        window = int(self._clock() // WINDOW_SECONDS)
        self._lease(caller, "tpm", window).used += tokens

    async def _refill(self, caller: str, kind: str, lease: _Lease, amount: int, need: int) -> None:
        async with lease.lock:  # concurrent requests of one caller lease once
            if lease.left >= 1 or lease.spent:
                return
            want = min(amount, max(need, slice_size(amount, lease.granted)))
            try:
                taken, granted = await asyncio.to_thread(
                    self._store.lease, f"limit#{caller}", f"{kind}#{lease.window}", amount, want
                )
            except Exception as error:  # fail open: an outage of the table must not stop serving
                logger.warning("rate limit lease failed: %s", type(error).__name__)
                lease.taken += need
                return
            lease.taken += taken
            lease.granted = granted
            lease.spent = taken < need

    async def give_back(self) -> None:
        """Return the unused requests of this minute's leases (shutdown)."""
        window = int(self._clock() // WINDOW_SECONDS)
        for (caller, kind), lease in list(self._leases.items()):
            if kind == "rpm" and lease.window == window and lease.left > 0:
                try:
                    await asyncio.to_thread(
                        self._store.give_back, f"limit#{caller}", f"{kind}#{window}", lease.left
                    )
                except Exception as error:
                    logger.warning("giving back a lease failed: %s", type(error).__name__)


class BudgetGuard:
    """Stored monthly spend per budget key, refreshed after each flush, plus unflushed spend."""

    def __init__(self, store: UsageStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._month = ""
        self._stored: dict[str, int] = {}
        self._unflushed: dict[str, int] = {}

    def _turn(self) -> str:
        month = month_of(self._clock())
        if month != self._month:
            self._month, self._stored, self._unflushed = month, {}, {}
        return month

    async def check(self, budgets: dict[str, int]) -> None:
        """Raise ``LimitExceeded`` ``budget_exceeded`` when any budget is spent this month."""
        if not budgets:
            return
        self._turn()
        unknown = [key for key in budgets if key not in self._stored]
        if unknown:
            try:
                self._stored.update(await asyncio.to_thread(self._store.budgets_used, unknown, self._month))
            except Exception as error:  # fail open, as the rate limits do
                logger.warning("budget read failed: %s", type(error).__name__)
                return
        for key, budget in budgets.items():
            if self._stored.get(key, 0) + self._unflushed.get(key, 0) >= budget:
                kind, _, name = key.removeprefix("budget#").partition("#")
                raise LimitExceeded(
                    f"The monthly token budget of {kind} '{name}' ({budget} tokens) is spent; "
                    "it renews on the first of next month (UTC).",
                    "budget_exceeded",
                    self._seconds_to_month_end(),
                    {},
                )

    def spend(self, keys: Iterable[str], tokens: int) -> None:
        self._turn()
        for key in keys:
            self._unflushed[key] = self._unflushed.get(key, 0) + tokens

    def flushed(self, spent: dict[str, int]) -> None:
        """After a flush wrote ``spent``: re-read the keys it knows (blocking; the flush thread)."""
        month = self._turn()
        for key, tokens in spent.items():
            self._unflushed[key] = max(0, self._unflushed.get(key, 0) - tokens)
        if self._stored:
            try:
                self._stored.update(self._store.budgets_used(list(self._stored), month))
            except Exception as error:
                logger.warning("budget read failed: %s", type(error).__name__)

    def _seconds_to_month_end(self) -> int:
        now = time.gmtime(self._clock())
        year, month = (now.tm_year + 1, 1) if now.tm_mon == 12 else (now.tm_year, now.tm_mon + 1)
        return max(1, math.ceil(calendar.timegm((year, month, 1, 0, 0, 0)) - self._clock()))


@dataclass(frozen=True)
class Admission:
    """What a request was admitted under: its rate limits (by caller key), its budgets, the headers."""

    limits: tuple[tuple[str, RateLimit], ...]  # (caller key, limit)
    budgets: tuple[str, ...]
    headers: dict[str, str]


class UsageGate:
    """The configured limits (``lisa_contracts.limits``) applied to one principal per request."""

    def __init__(self, limits: UsageLimits, limiter: RateLimiter, budgets: BudgetGuard) -> None:
        self._limits = limits
        self._limiter = limiter
        self.budgets = budgets

    async def admit(self, principal: Principal) -> Admission:
        """Raise ``LimitExceeded`` (budget first: it is the longer wait) or admit the request. An API
        token's own limits apply on top of its user's (the headers are the token's then)."""
        budgets = self._limits.budgets(principal.username, principal.groups)
        token = principal.token_limits
        if token is not None and token.monthly_token_budget is not None:
            budgets[budget_key("token", token.token_id)] = token.monthly_token_budget
        await self.budgets.check(budgets)
        limits: list[tuple[str, RateLimit]] = []
        user_limit = self._limits.rate_limit(principal.username, principal.groups)
        if user_limit is not None:
            limits.append((f"user#{principal.username}", user_limit))
        if token is not None and token.rate_limit is not None:
            limits.append((f"token#{token.token_id}", token.rate_limit))
        headers: dict[str, str] = {}
        for caller, limit in limits:
            headers |= await self._limiter.admit(caller, limit)
        return Admission(tuple(limits), tuple(budgets), headers)

    def spent(self, admission: Admission, tokens: int) -> None:
        for caller, limit in admission.limits:
            self._limiter.spend_tokens(caller, limit, tokens)

    async def stop(self) -> None:
        await self._limiter.give_back()
