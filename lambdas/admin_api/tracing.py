"""The admin API's tracer, without the X-Ray SDK's cost when tracing is off.

Powertools' ``Tracer`` imports the X-Ray SDK's recorder (about a quarter of the admin handler's cold
start) even when tracing is disabled. When Powertools would not trace (``POWERTOOLS_TRACE_DISABLED``
true, or not running in Lambda) the tracer gets ``Untraced`` instead, a provider that records
nothing; in Lambda with tracing on it is the usual X-Ray tracer. The decorators behave the same in
both cases (``capture_response=False, capture_error=False`` stay on the handler).
"""

from __future__ import annotations

import numbers
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class Untraced(BaseProvider):
    """A tracing provider that records nothing (tracing is off)."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncGenerator[BaseSegment, None]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def build_tracer(service: str | None = None) -> Tracer:
    """The X-Ray tracer when Powertools would trace, else a tracer over ``Untraced`` (``service``
    None: Powertools reads ``POWERTOOLS_SERVICE_NAME``)."""
    # Powertools' own rule (env var, Lambda or not), so both cases agree with its documentation.
    if Tracer._is_tracer_disabled():
        return Tracer(service=service, disabled=True, provider=Untraced())
    return Tracer(service=service)
