"""Registry following: every replica serves exactly what the registry says, within a second.

A background task reads the registry-version item every ``poll_seconds``. When the version changed
it reads every served model (a model is served iff it has ``litellmParams``), builds a new LiteLLM
Router and a new ``Snapshot`` in a worker thread, and swaps the snapshot in with one assignment.
A request reads ``follower.snapshot`` once and keeps that snapshot (and its Router) until it
ends, so in-flight requests, streams included, finish on the Router they started with while new
requests see the change. The hot path never reads the registry and never builds a Router.

A bad model never takes the others down. A malformed registry item (an invalid record, or
parameters LiteLLM refuses) is skipped, logged and counted (``Snapshot.skipped``). A model whose
provider key cannot be read (Secrets Manager unavailable) keeps the deployment it had in the
previous snapshot, if any, and is listed in ``Snapshot.incomplete``; its key is retried on the next
poll (then backing off), without re-reading the registry, and the snapshot is rebuilt as soon as
one can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from lisa_domain.registry import ModelRegistry, ServedModel, ServedModels
from lisa_domain.schema import ModelType
from serve._litellm import Router

logger = logging.getLogger("lisa.serve")

#: The key of a deployment's parameters naming the Secrets Manager secret of a provider API key.
SECRET_ARN_PARAM = "api_key_secret_arn"
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


@dataclass(frozen=True)
class Snapshot:
    version: int
    models: Mapping[str, ServedEntry]  # ordered by model id
    router: Router | None
    #: The registry's served models this snapshot was built from (a key retry rebuilds from them).
    source: ServedModels = field(default_factory=ServedModels)
    #: The LiteLLM parameters (keys resolved) each served model got; a later build whose key read
    #: fails reuses them.
    deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Models whose provider key could not be read: served with their previous deployment or not at all.
    incomplete: frozenset[str] = frozenset()
    #: Registry items left out because they are malformed (invalid record or parameters).
    skipped: int = 0
    #: Models not served that start on request (``serve.activity``): id -> allowed groups.
    startable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    built_at: float = field(default_factory=time.monotonic)


class SecretUnavailable(Exception):
    """A provider key could not be read from Secrets Manager (retried on the next poll)."""


class SecretCache:
    """Provider API keys from Secrets Manager by ARN, cached for ``ttl`` whole seconds by Powertools'
    ``SecretsProvider`` (values never logged)."""

    def __init__(self, client: Any, ttl: int = 300) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._ttl = ttl

    def get(self, arn: str) -> str:
        return str(self._provider.get(arn, max_age=self._ttl))


def deployment_params(served: ServedModel, secrets: SecretCache | None) -> dict[str, Any]:
    """The parameters LiteLLM gets for one model: the registry's, with the secret ARN resolved."""
    params = dict(served.litellm_params)
    arn = params.pop(SECRET_ARN_PARAM, None)
    if arn:
        if secrets is None:
            raise RuntimeError("a provider key secret is referenced but no Secrets Manager client is set")
        try:
            params["api_key"] = secrets.get(str(arn))
        except Exception as error:
            raise SecretUnavailable(type(error).__name__) from error
    return params


RouterFactory = Callable[[list[dict[str, Any]]], Router]


class RegistryFollower:
    def __init__(
        self,
        registry: ModelRegistry,
        router_factory: RouterFactory,
        *,
        secrets: SecretCache | None,
        poll_seconds: float,
        startable: Callable[[], Mapping[str, tuple[str, ...]]] | None = None,
    ) -> None:
        self._registry = registry
        #: Reads the stopped models that start on request (``serve.activity.StartableModels``).
        self._startable = startable
        self._router_factory = router_factory
        self._secrets = secrets
        self._poll_seconds = poll_seconds
        self.snapshot: Snapshot | None = None
        #: monotonic time of the last successful registry read (readiness uses it)
        self.last_success: float = float("-inf")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-follower")
        self._task: asyncio.Task[None] | None = None
        self._stopped = threading.Event()
        self._key_retry_delay = 0.0
        self._next_key_retry = 0.0

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="registry-follower")

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopped.is_set():
            try:
                await loop.run_in_executor(self._executor, self.refresh)
                if failures:
                    logger.warning("registry read again after %d failure(s)", failures)
                failures = 0
            except Exception as error:
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    logger.warning(
                        "registry read failed (%d in a row, last success %.1f s ago; serving the last "
                        "snapshot): %s",
                        failures,
                        self.registry_age(),
                        type(error).__name__,
                    )
            await asyncio.sleep(self._poll_seconds)

    def registry_age(self) -> float:
        """Seconds since the registry was last read successfully (infinite before the first read)."""
        return time.monotonic() - self.last_success

    # ---- the work (a worker thread) ----------------------------------------------------------
    def refresh(self) -> bool:
        """Read the version; rebuild and swap the snapshot when it changed, or when a provider key
        that could not be read now can. True when swapped."""
        version = self._registry.version()
        current = self.snapshot
        if current is not None and current.version == version:
            self.last_success = time.monotonic()
            if not self._retry_keys(current):
                return False
            served, startable = current.source, current.startable
        else:
            # Read the models after the version: a change in between is caught by the next poll.
            served = self._registry.served_models()
            startable = MappingProxyType(dict(self._startable())) if self._startable is not None else {}
            self.last_success = time.monotonic()
        snapshot = replace(self.build(version, served, previous=current), startable=startable)
        self.snapshot = snapshot
        self._key_retry_delay = self._next_key_retry = 0.0
        if current is not None and current.router is not None:
            # Only the old Router's process-wide registrations go; it keeps serving in-flight calls.
            current.router.retire()
        logger.info(
            "registry version %d: serving %d model(s); %d malformed item(s) skipped; provider key "
            "unreadable for: %s",
            version,
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
        for item in current.source:
            if item.record.modelId in current.incomplete:
                try:
                    deployment_params(item, self._secrets)
                except SecretUnavailable:
                    continue
                return True
        return False

    def build(self, version: int, served: ServedModels, previous: Snapshot | None = None) -> Snapshot:
        model_list: list[dict[str, Any]] = []
        entries: dict[str, ServedEntry] = {}
        deployments: dict[str, Mapping[str, Any]] = {}
        incomplete: set[str] = set()
        refused = 0
        for item in sorted(served, key=lambda s: s.record.modelId):
            record = item.record
            try:
                params = deployment_params(item, self._secrets)
            except SecretUnavailable as error:
                incomplete.add(record.modelId)
                kept = previous.deployments.get(record.modelId) if previous is not None else None
                logger.error(
                    "model %s: its provider key could not be read (%s); %s",
                    record.modelId,
                    error,
                    "serving its previous deployment" if kept else "not served until it can be read",
                )
                if kept is None:
                    continue
                params = dict(kept)
            except Exception as error:
                logger.error(
                    "model %s not served: unusable parameters (%s)", record.modelId, type(error).__name__
                )
                refused += 1
                continue
            model_list.append({"model_name": record.modelId, "litellm_params": params})
            deployments[record.modelId] = params
            entries[record.modelId] = ServedEntry(
                model_id=record.modelId,
                model_type=record.modelType,
                created=record.createdAt,
                allowed_groups=list(record.allowedGroups),
                card={
                    "id": record.modelId,
                    "object": "model",
                    "created": record.createdAt,
                    "owned_by": OWNED_BY,
                },
            )
        router = self._router(model_list) if model_list else None
        routed = set(router.registry().names()) if router is not None else set()
        for model_id in [m for m in entries if m not in routed]:
            logger.error("model %s not served: LiteLLM refused its parameters", model_id)
            del entries[model_id], deployments[model_id]
            refused += 1
        return Snapshot(
            version=version,
            models=MappingProxyType(entries),
            router=router,
            source=served,
            deployments=MappingProxyType(deployments),
            incomplete=frozenset(incomplete),
            skipped=served.skipped + refused,
        )

    def _router(self, model_list: list[dict[str, Any]]) -> Router | None:
        """The Router for ``model_list``; when LiteLLM refuses the whole list because of one
        deployment (some invalid parameters raise instead of being ignored), without the
        deployments it refuses on their own."""
        try:
            return self._router_factory(model_list)
        except Exception as error:
            logger.error(
                "building the router failed (%s); leaving out what LiteLLM refuses", type(error).__name__
            )
        usable = [deployment for deployment in model_list if self._accepted_alone(deployment)]
        return self._router_factory(usable) if usable else None

    def _accepted_alone(self, deployment: dict[str, Any]) -> bool:
        """Whether LiteLLM builds a Router of this one deployment (a refusal is logged by ``build``)."""
        try:
            self._router_factory([deployment]).retire()
        except Exception:
            return False
        return True
