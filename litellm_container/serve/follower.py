"""Registry following: every replica serves exactly what the registry says, within a second.

A background task reads the registry-version item (``lisa_domain.change_log``) every
``poll_seconds``. The first read loads every model (one consistent Scan); after that, a new version
re-reads only the models its change log names (BatchGetItem), so a change costs reads of the
changed models, not of the table. A replica that fell more than ``RECENT_CHANGES`` versions behind,
a version bumped without the log, and every ``resync_seconds`` (items changed outside LISA) load
everything again. The difference is applied to one shared LiteLLM Router (``SharedRouter``: new
and changed deployments added under fresh names, the replaced ones deleted once unused), and a new
immutable ``Snapshot`` is swapped in with one assignment. A request reads ``follower.snapshot``
once and keeps that snapshot, whose ``ModelRouter`` maps each model id to the deployment that
snapshot was built with, so in-flight requests, streams included, finish on what they started
with while new requests see the change, and no request sees half of one. The hot path never reads
the registry and never builds a Router.

The provider keys a build needs (every external model's at a full load, the changed ones' after)
are read from Secrets Manager concurrently, each distinct secret once (``SecretCache.read_all``).
A worker's first full read can be made while it imports LiteLLM (``serve.first_load``): the first
refresh then builds the first snapshot from it instead of reading.

A bad model never takes the others down. A malformed registry item (an invalid record, or
parameters LiteLLM refuses) is skipped, logged and counted (``Snapshot.skipped``). A model whose
provider key cannot be read (Secrets Manager unavailable) keeps the deployment it had in the
previous snapshot, if any, and is listed in ``Snapshot.incomplete``; its key is retried on the next
poll (then backing off), without re-reading the registry, and the snapshot is rebuilt as soon as
one can be read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lisa_domain.registry import FollowedModel, FollowedModels, ModelRegistry, ServedModel, ServedModels
from lisa_domain.schema import ModelRecord, ModelType
from serve._litellm import ModelRouter, RouterFactory, SharedRouter
from serve.first_load import FirstLoad, FirstRead
from serve.polling import PollingFollower
from serve.provider_keys import ReadKeys, SecretCache, SecretUnavailable, deployment_params, secret_arn

logger = logging.getLogger("lisa.serve")

#: Longest wait between two retries of provider keys that could not be read (doubling from one poll).
KEY_RETRY_MAX_SECONDS = 30.0
OWNED_BY = "openai"  # what LISA's LiteLLM-based API has always answered (seed document)


@dataclass(frozen=True)
class ServedEntry:
    """What the serve API needs to know about one served model."""

    model_id: str
    model_type: ModelType
    created: int
    allowed_groups: list[str]
    card: dict[str, Any]  # the OpenAI model object {id, object, created, owned_by}; never mutated
    #: The models to try, in order, when this one's backend fails (``serve.fallback``).
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    version: int
    models: Mapping[str, ServedEntry]  # ordered by model id
    router: ModelRouter | None
    #: The registry's served models this snapshot was built from (by id).
    source: ServedModels = field(default_factory=ServedModels)
    #: Every valid model item this snapshot was built from, by id (the next change applies to it).
    followed: Mapping[str, FollowedModel] = field(default_factory=dict)
    #: The LiteLLM parameters (keys resolved) each served model got; a later build whose key read
    #: fails reuses them. Not in the repr: they hold provider keys.
    deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    #: Models whose provider key could not be read: served with their previous deployment or not at all.
    incomplete: frozenset[str] = frozenset()
    #: Ids of the registry items that do not validate (left out).
    malformed: frozenset[str] = frozenset()
    #: Registry items left out because they are malformed (invalid record or parameters).
    skipped: int = 0
    #: Models not served that start on request (``serve.activity``): id -> allowed groups.
    startable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    built_at: float = field(default_factory=time.monotonic)


#: Reads the allowed groups of a model that starts on request and is not running (``None``: it does
#: not) from its record (``serve.activity.startable_groups``).
Startable = Callable[[ModelRecord], tuple[str, ...] | None]
#: Default interval of full reloads (seconds): the bound for registry items changed outside LISA.
RESYNC_SECONDS = 300.0


@dataclass
class FollowerStats:
    """What following has cost this replica so far (benchmarks read it)."""

    full_loads: int = 0
    incremental_reads: int = 0
    #: Model items read by incremental reads (each a key in a BatchGetItem call).
    items_read: int = 0
    #: Items a full load read, summed over full loads.
    items_scanned: int = 0
    batch_calls: int = 0


class RegistryFollower(PollingFollower):
    def __init__(
        self,
        registry: ModelRegistry,
        router_factory: RouterFactory,
        *,
        secrets: SecretCache | None,
        poll_seconds: float,
        startable: Startable | None = None,
        resync_seconds: float = RESYNC_SECONDS,
        first_load: FirstLoad | None = None,
    ) -> None:
        super().__init__("registry-follower", "registry", poll_seconds=poll_seconds)
        self._registry = registry
        self._startable = startable
        self._router = SharedRouter(router_factory)
        self._secrets = secrets
        self._resync_seconds = resync_seconds
        self._first_load = first_load
        self._loaded_at = float("-inf")  # monotonic time of the last full load
        self.snapshot: Snapshot | None = None
        self.stats = FollowerStats()
        self._key_retry_delay = 0.0
        self._next_key_retry = 0.0

    def registry_age(self) -> float:
        """Seconds since the registry was last read successfully (infinite before the first read)."""
        return self.age()

    # ---- the work (a worker thread) ----------------------------------------------------------
    def refresh(self) -> bool:
        """Read the version; apply what changed since the snapshot's version (or everything) and
        swap the snapshot, also when a provider key that could not be read now can. True when swapped."""
        first = self._first_load.take() if self._first_load is not None and self.snapshot is None else None
        if first is not None:
            return self._load_first(first)
        log = self._registry.change_log()
        current = self.snapshot
        resync = time.monotonic() - self._loaded_at >= self._resync_seconds
        if current is not None and current.version == log.version and not resync:
            self.last_success = time.monotonic()
            swapped = self._retry_keys(current) and self._swap(
                self.build(current.version, current.followed, current.malformed, previous=current, changed=())
            )
            self._router.retire_unused()
            return swapped
        # Read the models after the version: a change in between is caught by the next poll.
        changed = log.changed_since(current.version) if current is not None and not resync else None
        if changed is None:
            read = self._registry.followed_models()
            self._loaded_at = time.monotonic()
            self.stats.full_loads += 1
            self.stats.items_scanned += len(read.models) + len(read.malformed)
            followed, malformed = dict(read.models), read.malformed
            if current is not None and not resync:  # fell behind: apply only what differs
                changed = tuple(_differing(current.followed, followed))
        else:
            assert current is not None
            followed, malformed = self._changed(current, changed)
        self.last_success = time.monotonic()
        self._swap(self.build(log.version, followed, malformed, previous=current, changed=changed))
        self._router.retire_unused()
        return True

    def _load_first(self, first: FirstRead) -> bool:
        """The first snapshot, of the read made while the worker imported LiteLLM (``serve.first_load``)."""
        self._loaded_at = self.last_success = first.read_at
        self.stats.full_loads += 1
        self.stats.items_scanned += len(first.models.models) + len(first.models.malformed)
        models, malformed = dict(first.models.models), first.models.malformed
        return self._swap(self.build(first.log.version, models, malformed, keys=first.keys))

    def _changed(
        self, current: Snapshot, changed: tuple[str, ...]
    ) -> tuple[dict[str, FollowedModel], frozenset[str]]:
        """The snapshot's models with the ``changed`` ones read again (absent: deleted)."""
        read = self._registry.followed_by_ids(changed)
        ids = set(changed)
        self.stats.incremental_reads += 1
        self.stats.items_read += len(ids)
        self.stats.batch_calls += -(-len(ids) // 100)
        followed = {model_id: model for model_id, model in current.followed.items() if model_id not in ids}
        followed.update(read.models)
        return followed, (current.malformed - ids) | read.malformed

    def _swap(self, snapshot: Snapshot) -> bool:
        self.snapshot = snapshot
        self._key_retry_delay = self._next_key_retry = 0.0
        logger.info(
            "registry version %d: serving %d model(s); %d malformed item(s) skipped; provider key "
            "unreadable for: %s",
            snapshot.version,
            len(snapshot.models),
            snapshot.skipped,
            ", ".join(sorted(snapshot.incomplete)) or "none",
        )
        return True

    def _retry_keys(self, current: Snapshot) -> bool:
        """Whether a provider key of ``current.incomplete`` can be read now; tried on the next poll,
        then backing off to ``KEY_RETRY_MAX_SECONDS`` while they stay unreadable."""
        if not current.incomplete or time.monotonic() < self._next_key_retry:
            return False
        if self._key_now_readable(current):
            return True
        self._key_retry_delay = min(KEY_RETRY_MAX_SECONDS, max(self._poll_seconds, 2 * self._key_retry_delay))
        self._next_key_retry = time.monotonic() + self._key_retry_delay
        return False

    def _key_now_readable(self, current: Snapshot) -> bool:
        """Whether the provider key of a model in ``current.incomplete`` can be read now."""
        for model_id in current.incomplete:
            params = current.followed[model_id].litellm_params
            try:
                deployment_params(params or {}, self._secrets)
            except SecretUnavailable:
                continue
            return True
        return False

    def build(
        self,
        version: int,
        followed: Mapping[str, FollowedModel],
        malformed: frozenset[str] = frozenset(),
        *,
        previous: Snapshot | None = None,
        changed: Iterable[str] | None = None,
        keys: ReadKeys | None = None,
    ) -> Snapshot:
        """The snapshot of ``followed``; provider keys are resolved again only for the ``changed``
        models and those ``previous`` could not resolve (all of them when ``changed`` is None),
        from ``keys`` when they were read already."""
        again = None if changed is None or previous is None else set(changed) | previous.incomplete

        def reused(model_id: str) -> bool:  # its deployment in ``previous`` stands
            return again is not None and model_id not in again and model_id in previous.deployments  # type: ignore[union-attr]

        if keys is None and self._secrets is not None:
            keys = self._secrets.read_all(
                arn
                for model_id, model in followed.items()
                if (arn := secret_arn(model.litellm_params)) and not reused(model_id)
            )
        deployments: dict[str, Mapping[str, Any]] = {}
        incomplete: set[str] = set()
        unusable = 0
        for model_id in sorted(followed):
            params = followed[model_id].litellm_params
            if params is None:
                continue
            if reused(model_id):
                deployments[model_id] = previous.deployments[model_id]  # type: ignore[union-attr]
                continue
            try:
                deployments[model_id] = deployment_params(params, keys)
            except SecretUnavailable as error:
                incomplete.add(model_id)
                kept = previous.deployments.get(model_id) if previous is not None else None
                logger.error(
                    "model %s: its provider key could not be read (%s); %s",
                    model_id,
                    error,
                    "serving its previous deployment" if kept else "not served until it can be read",
                )
                if kept is not None:
                    deployments[model_id] = kept
            except Exception as error:
                logger.error("model %s not served: unusable parameters (%s)", model_id, type(error).__name__)
                unusable += 1
        router, refused = self._router.apply(deployments)
        entries = {
            model_id: self._entry(followed[model_id].record, previous)
            for model_id in deployments
            if model_id not in refused
        }
        startable = self._startable
        return Snapshot(
            version=version,
            models=MappingProxyType(entries),
            router=router,
            source=ServedModels(
                ServedModel(followed[model_id].record, params)
                for model_id in sorted(followed)
                if (params := followed[model_id].litellm_params) is not None
            ),
            followed=MappingProxyType(dict(followed)),
            deployments=MappingProxyType({m: p for m, p in deployments.items() if m not in refused}),
            incomplete=frozenset(incomplete),
            malformed=malformed,
            skipped=len(malformed) + unusable + len(refused),
            startable=MappingProxyType(
                {
                    model_id: groups
                    for model_id, model in followed.items()
                    if startable is not None and (groups := startable(model.record)) is not None
                }
            ),
        )

    @staticmethod
    def _entry(record: ModelRecord, previous: Snapshot | None) -> ServedEntry:
        """The model's entry; the previous snapshot's when its record did not change."""
        kept = previous.models.get(record.modelId) if previous is not None else None
        if kept is not None and previous is not None and previous.followed[record.modelId].record == record:
            return kept
        return ServedEntry(
            model_id=record.modelId,
            model_type=record.modelType,
            created=record.createdAt,
            allowed_groups=list(record.allowedGroups),
            card={"id": record.modelId, "object": "model", "created": record.createdAt, "owned_by": OWNED_BY},
            fallbacks=tuple(record.fallbacks),
        )


def _differing(before: Mapping[str, FollowedModel], after: Mapping[str, FollowedModel]) -> set[str]:
    """The ids of the models added, changed or removed between two reads."""
    return {
        model_id for model_id in before.keys() | after.keys() if before.get(model_id) != after.get(model_id)
    }


__all__ = ["FollowedModels", "RegistryFollower", "RouterFactory", "SecretCache", "Snapshot"]
