"""Registry following: every replica serves exactly what the registry says, within a second.

A background task reads the registry-version item every ``poll_seconds``. When the version changed
it reads every served model (a model is served iff it has ``litellmParams``), builds a new LiteLLM
Router and a new ``Snapshot`` in a worker thread, and swaps the snapshot in with one assignment.
A request reads ``follower.snapshot`` once and keeps that snapshot (and its Router) until it
ends, so in-flight requests, streams included, finish on the Router they started with while new
requests see the change. The hot path never reads the registry and never builds a Router.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lisa_domain.registry import ModelRegistry, ServedModel
from lisa_domain.schema import ModelType
from serve._litellm import Router

logger = logging.getLogger("lisa.serve")

#: The key of a deployment's parameters naming the Secrets Manager secret of a provider API key.
SECRET_ARN_PARAM = "api_key_secret_arn"
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
    built_at: float = field(default_factory=time.monotonic)


class SecretCache:
    """Provider API keys from Secrets Manager by ARN, cached for ``ttl`` seconds (values never logged)."""

    def __init__(self, client: Any, ttl: float = 300.0) -> None:
        self._client = client
        self._ttl = ttl
        self._values: dict[str, tuple[str, float]] = {}

    def get(self, arn: str) -> str:
        cached = self._values.get(arn)
        if cached is not None and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        value = str(self._client.get_secret_value(SecretId=arn)["SecretString"])
        self._values[arn] = (value, time.monotonic())
        return value


def deployment_params(served: ServedModel, secrets: SecretCache | None) -> dict[str, Any]:
    """The parameters LiteLLM gets for one model: the registry's, with the secret ARN resolved."""
    params = dict(served.litellm_params)
    arn = params.pop(SECRET_ARN_PARAM, None)
    if arn:
        if secrets is None:
            raise RuntimeError("a provider key secret is referenced but no Secrets Manager client is set")
        params["api_key"] = secrets.get(str(arn))
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
    ) -> None:
        self._registry = registry
        self._router_factory = router_factory
        self._secrets = secrets
        self._poll_seconds = poll_seconds
        self.snapshot: Snapshot | None = None
        #: monotonic time of the last successful registry read (readiness uses it)
        self.last_success: float = float("-inf")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-follower")
        self._task: asyncio.Task[None] | None = None
        self._stopped = threading.Event()

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
                failures = 0
            except Exception as error:
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    logger.warning("registry read failed (%d in a row): %s", failures, type(error).__name__)
            await asyncio.sleep(self._poll_seconds)

    # ---- the work (a worker thread) ----------------------------------------------------------
    def refresh(self) -> bool:
        """Read the version; rebuild and swap the snapshot when it changed. True when swapped."""
        version = self._registry.version()
        current = self.snapshot
        if current is not None and current.version == version:
            self.last_success = time.monotonic()
            return False
        # Read the models after the version: a change in between is caught by the next poll.
        snapshot = self.build(version, self._registry.served_models())
        self.snapshot = snapshot
        self.last_success = time.monotonic()
        if current is not None and current.router is not None:
            # Only the old Router's process-wide registrations go; it keeps serving in-flight calls.
            current.router.retire()
        logger.info("registry version %d: serving %d model(s)", version, len(snapshot.models))
        return True

    def build(self, version: int, served: list[ServedModel]) -> Snapshot:
        model_list: list[dict[str, Any]] = []
        entries: dict[str, ServedEntry] = {}
        for item in sorted(served, key=lambda s: s.record.modelId):
            record = item.record
            try:
                params = deployment_params(item, self._secrets)
            except Exception as error:
                # One bad model must not take the others down; it stays unserved (404) until fixed.
                logger.error("model %s not served: %s", record.modelId, type(error).__name__)
                continue
            model_list.append({"model_name": record.modelId, "litellm_params": params})
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
        router = self._router_factory(model_list) if model_list else None
        if router is not None:
            routed = set(router.registry().names())
            for model_id in [m for m in entries if m not in routed]:
                logger.error("model %s not served: LiteLLM refused its parameters", model_id)
                del entries[model_id]
        return Snapshot(version=version, models=MappingProxyType(entries), router=router)
