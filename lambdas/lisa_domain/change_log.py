"""The change log a followed table keeps in its version item, so followers re-read only what changed.

The version item holds ``version`` (N), ``changes`` (L of S: the keys the last versions changed,
oldest first, at most ``keep``) and ``changesVersion`` (N: the version ``changes`` was written at).
Every write is one transaction of the item's own conditional write and a Put of the next version
item conditioned on the version it read, so versions are dense and each names exactly one key. A
follower at version ``v`` that reads version ``n`` re-reads the keys ``changes`` lists for
``v+1 .. n``, or everything when the log no longer covers them. A version bumped without the log
(by hand, or by an older writer) leaves ``changesVersion`` behind ``version``: the log is then
ignored and followers reload everything once. The tokens table's version item
(``lisa_domain.tokens``) keeps the same log without ``changesVersion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChangeLog:
    version: int
    #: The keys versions ``version - len(changes) + 1 .. version`` changed, oldest first.
    changes: tuple[str, ...] = ()

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> ChangeLog:
        """The log of a version item as DynamoDB returns it (version 0 and no log without one)."""
        item = item or {}
        version = int(item.get("version", {}).get("N", "0"))
        if int(item.get("changesVersion", {}).get("N", "-1")) != version:
            return cls(version)  # bumped without the log: it no longer says what changed
        return cls(version, tuple(entry["S"] for entry in item.get("changes", {}).get("L", [])))

    def changed_since(self, version: int) -> tuple[str, ...] | None:
        """The keys versions ``version+1 .. self.version`` changed (oldest first, may repeat);
        ``None`` when the log no longer lists them all (or ``version`` is ahead: a new table)."""
        behind = self.version - version
        if behind < 0 or behind > len(self.changes):
            return None
        return self.changes[len(self.changes) - behind :]

    def after(self, key: str, keep: int) -> ChangeLog:
        """The log once ``key`` changed: the next version, the last ``keep`` keys."""
        return ChangeLog(self.version + 1, (*self.changes, key)[-keep:])

    def attributes(self) -> dict[str, Any]:
        """The version item's attributes for this log (DynamoDB's typed form, without the key)."""
        return {
            "version": {"N": str(self.version)},
            "changesVersion": {"N": str(self.version)},
            "changes": {"L": [{"S": key} for key in self.changes]},
        }
