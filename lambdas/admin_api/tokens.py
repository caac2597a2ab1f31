"""API token logic: the rules behind the admin API's ``/api-tokens`` routes.

Who may do what (the handler passes the caller as a ``Principal``):

* create (``POST /api-tokens``): an admin, for any user with any groups; a member of the API group
  (``API_GROUP``), for itself only, with a subset of its own groups, and only when signed in with
  the identity provider (a JWT): an API token cannot mint API tokens, so a leaked token cannot
  outlive its own revocation or expiry by creating successors. Everyone else: 403.
* list (``GET /api-tokens``): every caller sees its own tokens; an admin sees every token (or one
  user's, with ``username``).
* get / revoke (``GET`` / ``DELETE /api-tokens/{tokenId}``): the token's owner or an admin; any other
  caller gets 404, as if the token did not exist (no existence leak).

Lifetimes: ``tokenExpiration`` (Unix seconds) defaults to, and may not exceed, now plus
``TOKEN_MAX_LIFETIME_DAYS`` (default 90); a token that never expires cannot be created. The value
is returned once, by create; only its SHA-256 hash is stored, and no value, hash or key is logged.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from lisa_contracts.limits import RateLimit, UsageLimits
from lisa_domain.auth import MANAGEMENT_USER, Principal
from lisa_domain.errors import Forbidden, NotFound, ValidationFailed
from lisa_domain.tokens import TOKEN_ID_PATTERN, TokenPage, TokenRecord, TokenStore

if TYPE_CHECKING:
    from lisa_contracts.settings import AdminApiSettings

logger = Logger(child=True)

#: Clock-skew allowance on the maximum lifetime (a client computing "now + 90 days" itself).
EXPIRATION_SKEW_SECONDS = 300
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

USERNAME_PATTERN = r"^[^\s\x00-\x1f]{1,256}$"
GROUP_PATTERN = r"^[^\s,\x00-\x1f]{1,256}$"

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
GroupName = Annotated[str, StringConstraints(pattern=GROUP_PATTERN)]


# ---- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenSettings:
    api_group: str | None
    max_lifetime_days: int
    #: The deployment's rate limits: a token's own ``rateLimit`` may not exceed its user's.
    usage_limits: UsageLimits = field(default_factory=UsageLimits)

    @property
    def max_lifetime_seconds(self) -> int:
        return self.max_lifetime_days * 86_400

    @classmethod
    def from_settings(cls, config: AdminApiSettings) -> TokenSettings:
        """``API_GROUP`` (unset: only admins create tokens) and ``TOKEN_MAX_LIFETIME_DAYS``."""
        return cls(
            api_group=config.api_group,
            max_lifetime_days=config.token_max_lifetime_days,
            usage_limits=UsageLimits.from_json(config.usage_limits),
        )


# ---- request and response shapes ---------------------------------------------------------------
class CreateTokenRequest(BaseModel):
    """``POST /api-tokens``. Omitted ``username``: the caller; omitted ``groups``: the caller's own
    groups for a token of its own, none otherwise; omitted ``tokenExpiration``: the maximum."""

    model_config = ConfigDict(extra="forbid")

    username: Username | None = Field(default=None, description="Whose token; default: the caller")
    groups: list[GroupName] | None = Field(
        default=None, max_length=100, description="Groups the token carries (decides model access)"
    )
    name: Annotated[str, StringConstraints(max_length=128)] = Field(
        default="", description="A label to recognize the token by"
    )
    tokenExpiration: int | None = Field(
        default=None,
        description="Unix seconds; in the future and at most TOKEN_MAX_LIFETIME_DAYS days from now "
        "(default: that maximum)",
    )
    rateLimit: RateLimit | None = Field(
        default=None,
        description="The token's own requests and tokens per minute, on top of its user's; not above the "
        "limit of the token's user and groups (docs/usage.md)",
    )
    monthlyTokenBudget: int | None = Field(
        default=None,
        ge=0,
        description="The token's own monthly token budget, on top of its user's and groups'",
    )

    @field_validator("groups")
    @classmethod
    def _unique(cls, groups: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(groups)) if groups is not None else None


class TokenResponse(BaseModel):
    """A token as the API shows it: never its hash, and its value only in the create response."""

    tokenId: str
    username: str
    groups: list[str]
    name: str
    createdAt: int = Field(description="Unix seconds")
    createdBy: str
    tokenExpiration: int | None = Field(description="Unix seconds")
    rateLimit: RateLimit | None = None
    monthlyTokenBudget: int | None = None
    expired: bool


class CreatedTokenResponse(TokenResponse):
    token: str = Field(description="The token value. Shown once: store it now, LISA keeps only its hash")


class TokenListResponse(BaseModel):
    tokens: list[TokenResponse]
    nextToken: str | None = Field(default=None, description="Absent on the last page")


def token_body(record: TokenRecord, *, at: float | None = None) -> dict[str, Any]:
    """The JSON of one token (``tokenHash`` is excluded by the record itself)."""
    return record.model_dump(mode="json") | {"expired": record.expired(at)}


# ---- rules -------------------------------------------------------------------------------------
def _is_api_user(principal: Principal, config: TokenSettings) -> bool:
    return config.api_group is not None and config.api_group in principal.groups


def check_may_create(principal: Principal, config: TokenSettings) -> None:
    """403 unless the caller may create tokens at all (checked before the body is even parsed)."""
    if principal.is_admin:
        return
    if not _is_api_user(principal, config):
        group = f" ('{config.api_group}')" if config.api_group else ""
        raise Forbidden(f"only administrators and members of the API group{group} may create API tokens")
    if principal.method == "api-token":
        raise Forbidden("an API token cannot create API tokens: sign in with your identity provider")


@dataclass(frozen=True)
class TokenService:
    store: TokenStore
    config: TokenSettings

    def create(
        self, principal: Principal, request: CreateTokenRequest, *, now: float | None = None
    ) -> tuple[str, TokenRecord]:
        """Store a new token; returns its value (to show once) and its record."""
        check_may_create(principal, self.config)
        at = int(time.time() if now is None else now)
        username = request.username or principal.username
        for_self = username == principal.username
        if not principal.is_admin and not for_self:
            raise Forbidden("username: only administrators may create tokens for other users")
        if principal.method == "management-key" and username == MANAGEMENT_USER:
            raise ValidationFailed("username: name the user the token is for")
        default_groups = list(principal.groups) if for_self else []
        groups = request.groups if request.groups is not None else default_groups
        if not principal.is_admin:
            extra = sorted(set(groups) - set(principal.groups))
            if extra:
                raise Forbidden(f"groups: you may only grant groups you belong to (not: {', '.join(extra)})")
        expiration = self._expiration(request.tokenExpiration, at)
        self._check_rate_limit(request.rateLimit, username, groups)
        value, record = self.store.create(
            username=username,
            groups=groups,
            name=request.name,
            expiration=expiration,
            created_by=principal.username,
            rate_limit=request.rateLimit,
            monthly_token_budget=request.monthlyTokenBudget,
        )
        logger.info(
            "api token created",
            extra={"token_id": record.tokenId, "token_user": username, "expires": expiration},
        )
        return value, record

    def _check_rate_limit(self, requested: RateLimit | None, username: str, groups: list[str]) -> None:
        """A token's ``rateLimit`` may not exceed the one its user and groups have (when they have one)."""
        if requested is None:
            return
        ceiling = self.config.usage_limits.rate_limit(username, tuple(groups))
        above = requested.within(ceiling)
        if above is not None and ceiling is not None:
            most = getattr(ceiling, above)
            raise ValidationFailed(
                f"rateLimit.{above}: at most {most}, the limit of the token's user and groups"
            )

    def _expiration(self, requested: int | None, at: int) -> int:
        latest = at + self.config.max_lifetime_seconds
        if requested is None:
            return latest
        if requested <= at:
            raise ValidationFailed("tokenExpiration: must be in the future (Unix seconds)")
        if requested > latest + EXPIRATION_SKEW_SECONDS:
            raise ValidationFailed(
                f"tokenExpiration: must be at most {self.config.max_lifetime_days} days from now "
                f"(Unix seconds, at most {latest})"
            )
        return min(requested, latest)

    def list_tokens(
        self,
        principal: Principal,
        limit: int = DEFAULT_LIMIT,
        next_token: str | None = None,
        username: str | None = None,
    ) -> TokenPage:
        """The caller's tokens; for an admin every token, or ``username``'s."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit: must be between 1 and {MAX_LIMIT}")
        if principal.is_admin:
            if username:
                return self.store.list_for_user(username, limit, next_token)
            return self.store.list_all(limit, next_token)
        if username and username != principal.username:
            raise Forbidden("username: only administrators may list other users' tokens")
        return self.store.list_for_user(principal.username, limit, next_token)

    def get(self, principal: Principal, token_id: str) -> TokenRecord:
        """One token of the caller (any token for an admin); otherwise 404."""
        if not re.fullmatch(TOKEN_ID_PATTERN, token_id):
            raise NotFound(f"token '{token_id}' not found")
        record = self.store.get_by_id(token_id)
        if record is None or not (principal.is_admin or record.username == principal.username):
            raise NotFound(f"token '{token_id}' not found")
        return record

    def revoke(self, principal: Principal, token_id: str) -> TokenRecord:
        """Delete the token: it stops working on the serve API within a second (every replica follows
        the tokens table) and on the admin API within the authorizer cache TTL (at most 60 s)."""
        record = self.get(principal, token_id)
        if not self.store.delete(record):
            raise NotFound(f"token '{token_id}' not found")
        logger.info("api token revoked", extra={"token_id": token_id, "token_user": record.username})
        return record
