"""Fallbacks: a request whose model's backend fails with a retryable error goes to the next model of
the model's ``fallbacks`` (registry field, followed with every other change; see docs/serve-api.md).

The candidates of one request are the model itself, then each of its fallbacks that is in the
request's snapshot (served: it has a deployment), of the same model type and open to the caller
(``Principal.can_use``), in the registry's order; a fallback that is none of these is skipped, so a
caller is never sent to a model it may not use. Fallbacks are not transitive: a fallback's own
fallbacks are not tried.

Retryable (``retryable``): the backend answered 5xx, timed out, refused or closed the connection,
before the first streamed item or before a whole answer. Not retryable: the backend refused the
request (4xx: the next model would refuse it too, or the caller must fix it), 429 (the fallback would
hide a quota the caller should see and back off from), or anything after the first streamed item.
LiteLLM's own fallbacks are off (the Router gets none) and its retries (``LISA_SERVE_BACKEND_RETRIES``,
default 0) happen within each candidate, so nothing is tried twice over.

The answer names the model that answered: header ``x-lisa-model``, plus ``x-lisa-fallback-from``
(the requested model) when a fallback answered, and the body's or stream's ``model`` (the routes
set it from ``Answer.model_id``). Usage is recorded for the model that answered
(``Metered.answered_by``), which also counts as used for idle stop (``UsageReporter.used``). When
every candidate fails, the error is the last one's.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lisa_domain.auth import Principal
from serve._litellm import ModelRouter
from serve.activity import UsageReporter
from serve.errors import ServeError, backend_error
from serve.follower import Snapshot
from serve.metering import Metered

logger = logging.getLogger("lisa.serve")

#: Header naming the model that answered (every successful inference answer).
MODEL_HEADER = "x-lisa-model"
#: Header naming the requested model when one of its fallbacks answered.
FALLBACK_FROM_HEADER = "x-lisa-fallback-from"
#: ``backend_error`` codes a fallback may cure (a backend 4xx is ``backend_error`` too: see ``retryable``).
_RETRYABLE_CODES = frozenset({"backend_error", "backend_unreachable", "backend_timeout"})

T = TypeVar("T")
#: Calls the Router for one candidate: (model id, the request body) -> the result.
Start = Callable[[str, dict[str, Any]], Awaitable[T]]


def retryable(error: BaseException, failure: ServeError) -> bool:
    """Whether the next candidate may answer what ``error`` (mapped to ``failure``) failed: a
    timeout, an unreachable backend, or a backend 5xx; never a backend 4xx or 429."""
    if failure.code not in _RETRYABLE_CODES:
        return False
    status = getattr(error, "status_code", None)
    return failure.code != "backend_error" or not (isinstance(status, int) and status < 500)


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What the Router returned, and which model it came from."""

    model_id: str
    requested: str
    result: T

    def headers(self) -> dict[str, str]:
        headers = {MODEL_HEADER: self.model_id}
        if self.model_id != self.requested:
            headers[FALLBACK_FROM_HEADER] = self.requested
        return headers


@dataclass(frozen=True)
class Opened:
    """A started stream and its first item (``None``: the stream was empty)."""

    stream: Any
    items: AsyncIterator[Any]
    first: Any

    async def close(self) -> None:
        """Close the backend stream (releases its connection); a failure to close is only logged."""
        await _close(self.stream)


async def _close(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            logger.debug("closing the backend stream failed", exc_info=True)


async def open_stream(call: Callable[[], Awaitable[Any]]) -> Opened:
    """Start a stream and read its first item, so that a failure before it raises here (an
    ordinary HTTP error, or the next candidate) rather than inside the event stream. A stream
    whose first item fails is closed here: nothing else holds it (its connection would stay taken)."""
    stream = await call()
    items = aiter(stream)
    try:
        first = await anext(items, None)
    except BaseException:
        await _close(stream)
        raise
    return Opened(stream, items, first)


@dataclass(frozen=True)
class Fallbacks:
    """The models one request may be answered by, in order (``candidates[0]`` is the requested one)."""

    candidates: tuple[str, ...]
    metered: Metered | None = None
    usage: UsageReporter | None = None
    #: The snapshot's routes: the fallbacks' deployments are held while the request runs.
    router: ModelRouter | None = None

    @classmethod
    def of(
        cls,
        snapshot: Snapshot,
        principal: Principal,
        model_id: str,
        *,
        metered: Metered | None = None,
        usage: UsageReporter | None = None,
    ) -> Fallbacks:
        """The candidates for ``model_id`` (served in ``snapshot``, open to ``principal``)."""
        entry = snapshot.models[model_id]
        candidates = [model_id]
        for fallback in entry.fallbacks:
            other = snapshot.models.get(fallback)
            if (
                other is not None
                and fallback not in candidates
                and other.model_type is entry.model_type
                and principal.can_use(other.allowed_groups)
            ):
                candidates.append(fallback)
        return cls(tuple(candidates), metered, usage, snapshot.router)

    @property
    def requested(self) -> str:
        return self.candidates[0]

    async def call(self, body: dict[str, Any], start: Start[T]) -> Answer[T]:
        """``start`` for each candidate in turn until one answers or fails for good (the
        ``ServeError`` of that failure, or of the last candidate's, is raised). The fallbacks'
        deployments are held meanwhile: a fallback changed or deleted while the model was failing
        (a timeout can take minutes) is still the snapshot's, not retired under the request."""
        held = self.router.held(self.candidates[1:]) if self.router is not None else contextlib.nullcontext()
        with held:
            return await self._first_answer(body, start)

    async def _first_answer(self, body: dict[str, Any], start: Start[T]) -> Answer[T]:
        for model_id, following in zip(self.candidates, self.candidates[1:], strict=False):
            try:
                result = await start(model_id, copy.deepcopy(body))  # LiteLLM may change nested values
            except Exception as error:
                failure = backend_error(error, model_id)
                if not retryable(error, failure):
                    raise failure from None
                logger.warning(
                    "model fallback: requested=%s failed=%s code=%s status=%s next=%s",
                    self.requested,
                    model_id,
                    failure.code,
                    getattr(error, "status_code", None),
                    following,
                )
                continue
            return self._answered(model_id, result)
        last = self.candidates[-1]
        try:
            result = await start(last, body)
        except Exception as error:
            raise backend_error(error, last) from None
        return self._answered(last, result)

    async def stream(self, body: dict[str, Any], start: Start[Any]) -> Answer[Opened]:
        """As ``call``, for a stream: a candidate fails over only before its first item."""

        async def opened(model_id: str, kwargs: dict[str, Any]) -> Opened:
            return await open_stream(lambda: start(model_id, kwargs))

        return await self.call(body, opened)

    def _answered(self, model_id: str, result: T) -> Answer[T]:
        if model_id != self.requested:
            logger.info("model fallback answered: requested=%s answered=%s", self.requested, model_id)
            if self.metered is not None:
                self.metered.answered_by(model_id)
            if self.usage is not None:
                self.usage.used(model_id)
        return Answer(model_id, self.requested, result)
