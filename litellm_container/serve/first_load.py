"""A worker's first registry read, made while the worker imports LiteLLM.

Importing LiteLLM costs every worker about 3 s of CPU whatever the registry's size, and the
registry follower could only start after it. The first full read, though, is network waits: the
version item, a consistent Scan of every model and one Secrets Manager read per external model's
key. ``FirstLoad.start`` makes that read in a thread before the worker imports the app
(``serve.__main__.worker_app``), and the follower's first refresh takes it instead of reading
(``RegistryFollower(first_load=...)``), once. It is the same read the follower makes (the version
before the models, so anything written meanwhile is applied by the next poll); a read that failed
is not used and the follower reads as usual. This module imports no LiteLLM.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import boto3
from botocore.config import Config as BotoConfig

from lisa_domain.change_log import ChangeLog
from lisa_domain.registry import FollowedModels, ModelRegistry
from serve.config import ServeConfig
from serve.provider_keys import SECRET_READ_THREADS, ReadKeys, SecretCache, secret_arn

logger = logging.getLogger("lisa.serve")

#: Longest wait of the follower's first refresh for the read (it would take as long to read again).
TAKE_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class FirstRead:
    log: ChangeLog
    models: FollowedModels
    #: The provider keys of every model that names one (``None``: no Secrets Manager client).
    keys: ReadKeys | None
    #: When the registry was read (monotonic).
    read_at: float


class FirstLoad:
    def __init__(self, registry: ModelRegistry, secrets: SecretCache | None) -> None:
        self._registry = registry
        self._secrets = secrets
        self._read: FirstRead | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, name="registry-first-load", daemon=True)

    @classmethod
    def start(cls, registry: ModelRegistry, secrets: SecretCache | None) -> FirstLoad:
        load = cls(registry, secrets)
        load._thread.start()
        return load

    @classmethod
    def from_config(cls, config: ServeConfig) -> FirstLoad:
        """Started with clients of its own (the app's are built after LiteLLM is imported); AWS
        endpoint and credentials from the environment, as the app's."""
        boto_config = BotoConfig(
            max_pool_connections=SECRET_READ_THREADS,
            connect_timeout=3,
            read_timeout=10,
            retries={"mode": "standard", "max_attempts": 2},
        )
        registry = ModelRegistry(config.models_table, boto3.client("dynamodb", config=boto_config))
        return cls.start(registry, SecretCache(boto3.client("secretsmanager", config=boto_config)))

    def _run(self) -> None:
        try:
            log = self._registry.change_log()
            models = self._registry.followed_models()
            read_at = time.monotonic()
            keys = (
                self._secrets.read_all(
                    arn for model in models.models.values() if (arn := secret_arn(model.litellm_params))
                )
                if self._secrets is not None
                else None
            )
            self._read = FirstRead(log, models, keys, read_at)
        except Exception as error:
            logger.warning(
                "reading the registry while starting failed (%s); the follower reads it", type(error).__name__
            )

    def take(self) -> FirstRead | None:
        """The read, the first time only (``None`` after that, or when it failed)."""
        if self._taken:
            return None
        self._taken = True
        self._thread.join(TAKE_TIMEOUT_SECONDS)
        return self._read
