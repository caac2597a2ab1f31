"""API-token following: every replica answers API tokens from memory, within a second of a change.

A background task reads the tokens table's version item (``lisa_domain.tokens``) every
``poll_seconds``. The first read loads every token (a consistent Scan of ``FOLLOWED_ATTRIBUTES``);
after that, a new version re-reads only the tokens its ``changes`` list names (consistent key
reads): present means created, absent means revoked. A replica more than ``RECENT_CHANGES`` changes
behind, and every ``resync_seconds`` (items deleted outside LISA, for example by DynamoDB's TTL or
by hand), loads everything again. Each change builds a new mapping in a worker thread and swaps it in
with one assignment, so a request reads a consistent mapping with one dictionary lookup and no
remote call; expiry is checked by the caller on every request against the stored expiry.

Until the first load completes ``loaded`` is false and the replica is not ready. A failed read keeps
the mapping it has (revocations wait for the table, like everything else) and is retried on the
next poll; ``age()`` says how long ago the table was last read (the loop: ``serve.polling``, shared
with the registry follower).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

from lisa_domain.auth import Principal, token_principal
from lisa_domain.tokens import FollowedToken, TokenStore
from serve.polling import PollingFollower

logger = logging.getLogger("lisa.serve")

#: Default interval of full reloads (seconds): the bound for token deletions made outside LISA.
RESYNC_SECONDS = 300.0


class TokenFollower(PollingFollower):
    def __init__(
        self,
        store: TokenStore,
        admin_group: str,
        *,
        poll_seconds: float,
        resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        super().__init__("token-follower", "tokens table", poll_seconds=poll_seconds)
        self._store = store
        self._admin_group = admin_group
        self._resync_seconds = resync_seconds
        #: The version the mapping reflects (``None`` until the first load).
        self.version: int | None = None
        self._principals: Mapping[str, Principal] = MappingProxyType({})
        self._groups: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._loaded_at = float("-inf")  # monotonic time of the last full load

    # ---- the hot path ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.version is not None

    def lookup(self, token_hash: str) -> Principal | None:
        """The principal of the token with this hash (``expires_at`` set), ``None`` if there is none."""
        return self._principals.get(token_hash)

    def __len__(self) -> int:
        return len(self._principals)

    # ---- the work (a worker thread) ----------------------------------------------------------------
    def refresh(self) -> bool:
        """Read the version item; apply what changed since the last read. True when the mapping changed."""
        # Read the version before the tokens: a change in between is caught by the next poll.
        current = self._store.version()
        resync = time.monotonic() - self._loaded_at >= self._resync_seconds
        if self.version == current.version and not resync:
            self.last_success = time.monotonic()
            return False
        changed = current.changed_since(self.version) if self.version is not None and not resync else None
        if changed is None:
            self._groups = {}  # only the group lists of the tokens loaded now
            principals = {token.token_hash: self._principal(token) for token in self._store.all_tokens()}
            self._loaded_at = time.monotonic()
            logger.info("tokens version %d: %d token(s) loaded", current.version, len(principals))
        else:
            principals = dict(self._principals)
            for token_hash, token in self._store.by_hashes(changed).items():
                if token is None:
                    principals.pop(token_hash, None)
                else:
                    principals[token_hash] = self._principal(token)
        self._principals = MappingProxyType(principals)
        self.version = current.version
        self.last_success = time.monotonic()
        return True

    def _principal(self, token: FollowedToken) -> Principal:
        # Tokens mostly share a few group lists: keep one tuple of each (memory at 100,000 tokens).
        groups = self._groups.setdefault(token.groups, token.groups)
        return token_principal(token.username, groups, token.expires_at, self._admin_group, token.limits)
