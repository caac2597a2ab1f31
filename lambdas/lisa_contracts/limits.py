"""Rate limits and monthly token budgets as the deployment configures them (``usageLimits`` in the
deployment config, passed to the serve app and the admin API as ``LISA_USAGE_LIMITS``).

The serve app enforces them (``serve.limits``). Nothing is limited unless configured. JSON shape
(every field optional)::

    {"rateLimit": {"rpm": 60, "tpm": 100000},          # every caller (per user, or per API token)
     "monthlyTokenBudget": 5000000,                     # every user, per calendar month (UTC)
     "users": {"alice": {"rateLimit": {...}, "monthlyTokenBudget": ...}},
     "groups": {"team-a": {"rateLimit": {"rpm": 600},   # members of team-a (the highest applies)
                           "monthlyTokenBudget": 2e7}}} # the whole group, shared by its members
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lisa_contracts.settings import SettingsError


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    tpm: int | None = Field(default=None, ge=1, description="prompt + completion tokens per minute")

    def within(self, ceiling: RateLimit | None) -> str | None:
        """The first field above ``ceiling`` (``None``: all within, or no ceiling)."""
        if ceiling is None:
            return None
        for name in ("rpm", "tpm"):
            mine, most = getattr(self, name), getattr(ceiling, name)
            if most is not None and (mine is None or mine > most):
                return name
        return None


class LimitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rateLimit: RateLimit | None = None
    monthlyTokenBudget: int | None = Field(default=None, ge=0)


class UsageLimits(LimitEntry):
    users: dict[str, LimitEntry] = Field(default_factory=dict)
    groups: dict[str, LimitEntry] = Field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> Self:
        if not text:
            return cls()
        try:
            return cls.model_validate(json.loads(text))
        except (ValueError, ValidationError) as error:
            raise SettingsError(f"LISA_USAGE_LIMITS: not a valid limits document ({error})") from None

    @property
    def configured(self) -> bool:
        return bool(self.rateLimit or self.monthlyTokenBudget is not None or self.users or self.groups)

    def rate_limit(self, username: str, groups: tuple[str, ...]) -> RateLimit | None:
        """The user's own entry, else the most generous of their groups' entries, else the default.
        A field absent from the chosen entry is unlimited."""
        user = self.users.get(username)
        if user is not None and user.rateLimit is not None:
            return user.rateLimit
        overrides = [entry.rateLimit for g in groups if (entry := self.groups.get(g)) and entry.rateLimit]
        if overrides:
            return RateLimit(rpm=_most(o.rpm for o in overrides), tpm=_most(o.tpm for o in overrides))
        return self.rateLimit

    def budgets(self, username: str, groups: tuple[str, ...]) -> dict[str, int]:
        """Budget key -> monthly tokens, for every budget that a request of this caller spends."""
        found: dict[str, int] = {}
        user = self.users.get(username)
        user_budget = user.monthlyTokenBudget if user and user.monthlyTokenBudget is not None else None
        if user_budget is None:
            user_budget = self.monthlyTokenBudget
        if user_budget is not None:
            found[budget_key("user", username)] = user_budget
        for group in groups:
            entry = self.groups.get(group)
            if entry is not None and entry.monthlyTokenBudget is not None:
                found[budget_key("group", group)] = entry.monthlyTokenBudget
        return found


def _most(values: Iterable[int | None]) -> int | None:
    """The highest limit; ``None`` (unlimited) when any entry leaves it unlimited."""
    numbers = list(values)
    return None if any(value is None for value in numbers) else max(v for v in numbers if v is not None)


def budget_key(kind: str, name: str) -> str:
    return f"budget#{kind}#{name}"


@dataclass(frozen=True, slots=True)
class TokenLimits:
    """An API token's own limits (``rateLimit``, ``monthlyTokenBudget`` on ``POST /api-tokens``):
    they apply on top of its user's."""

    token_id: str
    rate_limit: RateLimit | None = None
    monthly_token_budget: int | None = None
