"""Provider API keys of external models, read from Secrets Manager (the registry holds only ARNs).

A deployment's parameters name the secret of its key (``api_key_secret_arn``); the serve app reads
it and hands LiteLLM ``api_key`` instead (``deployment_params``). A build that needs several keys
(every external model's at a full load) reads them concurrently, each distinct secret once
(``SecretCache.read_all``). This module imports no LiteLLM, so a worker can read keys while it
imports LiteLLM (``serve.first_load``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.utilities.parameters import SecretsProvider

#: The key of a deployment's parameters naming the Secrets Manager secret of a provider API key.
SECRET_ARN_PARAM = "api_key_secret_arn"
#: Provider keys read at the same time when a build needs several (Secrets Manager's GetSecretValue
#: allows thousands a second; the serve app's boto3 pool holds 64 connections).
SECRET_READ_THREADS = 16


class SecretUnavailable(Exception):
    """A provider key could not be read from Secrets Manager (retried on the next poll)."""


class KeySource(Protocol):
    def get(self, arn: str) -> str:
        """The provider key in secret ``arn``; raises when it cannot be read."""


@dataclass(frozen=True)
class ReadKeys:
    """The provider keys one build read: ARN -> the key, or the error reading it (never in a repr:
    a logged or printed ``FirstRead`` would show them)."""

    values: Mapping[str, str | Exception] = field(repr=False)

    def get(self, arn: str) -> str:
        value = self.values[arn]
        if isinstance(value, Exception):
            raise value
        return value


class SecretCache:
    """Provider API keys from Secrets Manager by ARN, cached for ``ttl`` whole seconds by Powertools'
    ``SecretsProvider`` (values never logged)."""

    def __init__(self, client: Any, ttl: int = 300) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._ttl = ttl

    def get(self, arn: str) -> str:
        return str(self._provider.get(arn, max_age=self._ttl))

    def read_all(self, arns: Iterable[str]) -> ReadKeys:
        """Each distinct key once, ``SECRET_READ_THREADS`` reads in flight: a full load of 1,000
        external models reads 1,000 secrets, which one after the other take 1,000 round trips."""
        unique = list(dict.fromkeys(arns))

        def read(arn: str) -> str | Exception:
            try:
                return self.get(arn)
            except Exception as error:
                return error

        if len(unique) < 2:
            return ReadKeys({arn: read(arn) for arn in unique})
        threads = min(SECRET_READ_THREADS, len(unique))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="provider-keys") as pool:
            return ReadKeys(dict(zip(unique, pool.map(read, unique), strict=True)))


def deployment_params(params: Mapping[str, Any], secrets: KeySource | None) -> dict[str, Any]:
    """The parameters LiteLLM gets for one model: the registry's, with the secret ARN resolved."""
    params = dict(params)
    arn = params.pop(SECRET_ARN_PARAM, None)
    if arn:
        if secrets is None:
            raise RuntimeError("a provider key secret is referenced but no Secrets Manager client is set")
        try:
            params["api_key"] = secrets.get(str(arn))
        except Exception as error:
            raise SecretUnavailable(type(error).__name__) from error
    return params


def secret_arn(params: Mapping[str, Any] | None) -> str | None:
    """The ARN of the provider key's secret ``params`` name, if any."""
    arn = (params or {}).get(SECRET_ARN_PARAM)
    return str(arn) if arn else None
