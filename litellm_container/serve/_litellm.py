"""The one place that imports LiteLLM: offline cost map, no telemetry, no message logging.

It also skips LiteLLM's per-request bookkeeping that nothing in LISA reads (see
``skip_unused_bookkeeping``): the request still goes through the Router and LiteLLM's provider
code; only the work done *for callbacks* is left out while no callback is registered.

**One Router, changed by difference** (``SharedRouter``). Building a Router costs about 3 ms per
deployment (3 s at 1,000 models), so a registry change must not rebuild it. A replica keeps one
Router and applies each change to it (``Router.apply(ChangeSet(upsert=..., delete=...))``, about
10-40 ms a deployment at 1,000). Mutating a Router that in-flight requests use is safe only in a way
that never changes what an existing name means, because a request reads its snapshot once and may
call the Router after the follower thread has changed it (requests run on the event loop, the
follower in its own thread; LiteLLM takes its own lock around each single upsert or delete, never
around a whole change). So:

* a deployment's name in the Router is ``<model id>#<serial>``, never reused: a new or changed model
  is *added* under a fresh name before the snapshot naming it is swapped in, and a request of the
  old snapshot keeps calling the old name, which still routes to the old parameters;
* each snapshot holds a ``ModelRouter``: an immutable map from model id to that name over the shared
  Router, so a request sees all of one registry version or all of the next, never a mix;
* a name no snapshot routes to any more is deleted only after ``RETIRE_AFTER_SECONDS`` and while no
  call through it is in flight (``ModelRouter`` counts them; a call's retries happen inside it, and
  a stream keeps the HTTP client it started with), at most ``RETIRE_PER_CYCLE`` per follower cycle
  because each delete re-indexes LiteLLM's deployment list (O(models)).

A Router is built from scratch only for the first snapshot (one constructor call is faster than
1,000 upserts) or when LiteLLM raises on a change; the Router it replaces is ``retire``d (only its
process-wide registrations go) and keeps serving the requests of older snapshots.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lisa_contracts.settings import litellm_offline

litellm_offline()  # without it, importing litellm fetches its cost map from the internet

import litellm  # noqa: E402
from litellm import Router  # noqa: E402
from litellm.router_api import ChangeSet  # noqa: E402
from litellm.types.router import Deployment, LiteLLM_Params  # noqa: E402

logger = logging.getLogger("lisa.serve")

litellm.suppress_debug_info = True
litellm.turn_off_message_logging = True
if hasattr(litellm, "telemetry"):
    litellm.telemetry = False
# Anthropic Messages go to every backend as chat completions (LiteLLM would send OpenAI-compatible
# ones to /v1/responses, which TGI, TEI and older vLLM do not serve).
litellm.use_chat_completions_url_for_anthropic_messages = True

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")

#: Every list in which LiteLLM keeps logging/observability callbacks (all empty in LISA).
_CALLBACK_LISTS = (
    "callbacks",
    "success_callback",
    "failure_callback",
    "input_callback",
    "service_callback",
    "audit_log_callbacks",
    "_async_success_callback",
    "_async_failure_callback",
    "_async_input_callback",
)


def quiet_litellm(level: int = logging.WARNING) -> None:
    """LiteLLM's own loggers may print request data at DEBUG/INFO: keep them at ``level``."""
    for name in _LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(level)


def callbacks_registered() -> bool:
    """True when anything has registered a LiteLLM logging callback (LISA itself never does)."""
    return any(getattr(litellm, name, None) for name in _CALLBACK_LISTS)


def skip_unused_bookkeeping() -> bool:
    """Skip LiteLLM's success-logging payload and cost calculation while no callback would read them.

    After every successful call LiteLLM builds a "standard logging payload" for its callbacks,
    deep-copies request and response to redact them (because message logging is off), and prices
    the response from its cost map. With no callback registered nobody reads any of it, and it is
    about a fifth of LiteLLM's CPU time per request (measured: bench/serve_overhead.py,
    docs/benchmarks.md). Both methods fall back to LiteLLM's own as soon as a callback is
    registered, so this changes nothing observable. Returns False (and changes nothing) on a
    LiteLLM without these methods.
    """
    try:
        from litellm.litellm_core_utils.litellm_logging import Logging
    except ImportError:  # pragma: no cover - another LiteLLM layout
        return False
    success: Callable[..., Any] | None = getattr(Logging, "async_success_handler", None)
    cost: Callable[..., Any] | None = getattr(Logging, "response_cost_calculator", None)
    if success is None or cost is None or getattr(success, "_lisa_skips", False):
        return success is not None and cost is not None

    @functools.wraps(success)
    async def async_success_handler(self: Any, *args: Any, **kwargs: Any) -> None:
        if callbacks_registered():
            await success(self, *args, **kwargs)

    @functools.wraps(cost)
    def response_cost_calculator(self: Any, *args: Any, **kwargs: Any) -> float | None:
        if callbacks_registered():
            result: float | None = cost(self, *args, **kwargs)
            return result
        return None

    async_success_handler._lisa_skips = True  # type: ignore[attr-defined]
    Logging.async_success_handler = async_success_handler  # type: ignore[method-assign]
    Logging.response_cost_calculator = response_cost_calculator  # type: ignore[method-assign]
    return True


#: Values JSON always reads back equal to themselves (exact types: a subclass may dump differently).
_JSON_EXACT = (type(None), bool, str)
#: Integers this small always have a JSON form (a huge one exceeds ``int``'s text conversion limit).
_JSON_INT_LIMIT = 10**18


def fast_round_trip_check() -> bool:
    """Answer LiteLLM's "does JSON read this parameter back unchanged?" for plain scalars at once.

    For each deployment ``Router(model_list=...)`` asks that of every ``LiteLLM_Params`` field (about
    290, nearly all ``None``) with a ``json.dumps`` and a ``json.loads`` each: about half of the
    Router's build, 1.6 of 3.2 s CPU at 1,000 deployments (``bench/startup.py --phases``). ``None``,
    booleans, strings and integers below ``_JSON_INT_LIMIT`` always read back equal, so the answer
    is True without the round trip; every other value goes through LiteLLM's own check, so the
    answers and the Router are the same (``tests/serve/test_startup_path.py``). Returns False (and
    changes nothing) on a LiteLLM without that check.
    """
    try:
        from litellm.router_rust.surface import registry
    except ImportError:  # pragma: no cover - another LiteLLM layout
        return False
    check: Callable[[object], bool] | None = getattr(registry, "_round_trips", None)
    if check is None:
        return False
    if getattr(check, "_lisa_fast", False):
        return True

    @functools.wraps(check)
    def round_trips(value: object) -> bool:
        if type(value) in _JSON_EXACT or (type(value) is int and -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT):
            return True
        return check(value)

    round_trips._lisa_fast = True  # type: ignore[attr-defined]
    registry._round_trips = round_trips
    return True


def incremental_cost_key_map() -> bool:
    """Extend LiteLLM's lowercase index of its cost map by the keys added since it was last built,
    instead of lowercasing every key again.

    Every deployment a Router adds registers its id in ``litellm.model_cost``, which drops LiteLLM's
    lowercase index of the map's keys; the next lookup of a key the map lacks (the following
    deployment's id) rebuilds it from all ~6,000 keys. At 1,000 new deployments that is a third of
    the first ``Router(model_list=...)`` (about 1 s CPU, ``bench/startup.py --phases``). When the
    map is the same dict and the keys the index was built from are still its first keys, in order
    (the key that was last is still at that position: a deleted or re-inserted earlier key would
    move it), the keys after it are exactly the ones added, and adding them last gives the index a
    rebuild gives (a later key wins a lowercase collision in both). Anything else rebuilds as
    LiteLLM does. Returns False (and changes nothing) on a LiteLLM without that index.
    ``tests/serve/test_startup_path.py`` compares the index with LiteLLM's own rebuild.
    """
    from litellm import utils

    rebuild: Callable[[], dict[str, str]] | None = getattr(utils, "_rebuild_model_cost_lowercase_map", None)
    if rebuild is None or not hasattr(utils, "_model_cost_lowercase_map"):
        return False
    if getattr(rebuild, "_lisa_incremental", False):
        return True
    #: The last index built: the cost map it indexes, its keys then (a tuple), the index.
    built: list[tuple[dict[str, Any], tuple[str, ...], dict[str, str]]] = []
    lock = threading.Lock()

    @functools.wraps(rebuild)
    def rebuild_incrementally() -> dict[str, str]:
        with lock:
            cost_map = litellm.model_cost
            keys = tuple(cost_map)  # one C-level copy: a consistent view while other threads register
            if built and built[0][0] is cost_map and built[0][1] and len(keys) >= len(built[0][1]):
                _, before, index = built[0]
                if keys[len(before) - 1] == before[-1]:
                    index = {**index, **{key.lower(): key for key in keys[len(before) :]}}
                    utils._model_cost_lowercase_map = index
                    built[:] = [(cost_map, keys, index)]
                    return index
            index = {key.lower(): key for key in keys}  # LiteLLM's rebuild, of this snapshot
            utils._model_cost_lowercase_map = index
            built[:] = [(cost_map, keys, index)]
            return index

    rebuild_incrementally._lisa_incremental = True  # type: ignore[attr-defined]
    utils._rebuild_model_cost_lowercase_map = rebuild_incrementally
    return True


quiet_litellm()
skip_unused_bookkeeping()
fast_round_trip_check()
incremental_cost_key_map()

#: Builds a Router of a model list (``serve.app.router_factory``: LISA's timeouts and retries).
RouterFactory = Callable[[list[dict[str, Any]]], Router]
#: Seconds a deployment no snapshot routes to stays in the Router (a request that read the previous
#: snapshot just before the swap reaches the Router within microseconds; this is the margin; a
#: request's fallbacks are held as calls in flight: ``ModelRouter.held``).
RETIRE_AFTER_SECONDS = 5.0
#: Most deployments deleted per follower cycle (each delete re-indexes the Router's list).
RETIRE_PER_CYCLE = 8
_SEPARATOR = "#"  # never in a model id (``MODEL_ID_PATTERN``)


@dataclass(frozen=True, eq=False)
class ModelRouter:
    """One snapshot's routes: model id -> its deployment's name in the shared Router (immutable)."""

    router: Router
    names: Mapping[str, str]
    #: Calls in flight per deployment name (shared by every ``ModelRouter`` of one ``SharedRouter``;
    #: only the event loop's thread writes it).
    calls: Counter[str]

    async def acompletion(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.acompletion, model, kwargs)

    async def atext_completion(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.atext_completion, model, kwargs)

    async def aembedding(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.aembedding, model, kwargs)

    async def aanthropic_messages(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.aanthropic_messages, model, kwargs)

    async def aresponses(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.aresponses, model, kwargs)

    async def aimage_generation(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.aimage_generation, model, kwargs)

    async def aspeech(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.aspeech, model, kwargs)

    async def atranscription(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.atranscription, model, kwargs)

    async def arerank(self, *, model: str, **kwargs: Any) -> Any:
        return await self._call(self.router.arerank, model, kwargs)

    async def _call(self, endpoint: Callable[..., Any], model: str, kwargs: dict[str, Any]) -> Any:
        with self.held((model,)):
            return await endpoint(model=self.names[model], **kwargs)

    @contextlib.contextmanager
    def held(self, model_ids: Iterable[str]) -> Iterator[None]:
        """Keeps the deployments of ``model_ids`` from being retired while held: counted as calls
        in flight (a request's fallbacks are called after its model failed, which can be long after
        the request read its snapshot: ``serve.fallback``)."""
        names = [self.names[model_id] for model_id in model_ids]
        for name in names:
            self.calls[name] += 1
        try:
            yield
        finally:
            for name in names:
                self.calls[name] -= 1


class SharedRouter:
    """Keeps one Router in step with the served deployments, by difference (see the module docstring).

    Only the follower's thread calls ``apply`` and ``retire_unused``."""

    def __init__(
        self,
        factory: RouterFactory,
        *,
        retire_after: float = RETIRE_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._retire_after = retire_after
        self._clock = clock
        self._router: Router | None = None
        #: model id -> (its deployment's name, its parameters), for the deployments routed now
        self._routed: dict[str, tuple[str, Mapping[str, Any]]] = {}
        #: model id -> parameters LiteLLM refused (not offered again until they change)
        self._refused: dict[str, Mapping[str, Any]] = {}
        #: names no snapshot routes to any more -> since when (monotonic)
        self._retiring: dict[str, float] = {}
        self._calls: Counter[str] = Counter()
        self._serial = itertools.count(1)
        #: Routers built from scratch (the first one included).
        self.builds = 0

    def apply(
        self, deployments: Mapping[str, Mapping[str, Any]]
    ) -> tuple[ModelRouter | None, frozenset[str]]:
        """The routes of exactly ``deployments`` (model id -> LiteLLM parameters; ``None`` when
        none is routed) and the model ids whose parameters LiteLLM refused."""
        if self._router is None:
            self._build(deployments)
        else:
            try:
                self._change(deployments)
            except Exception as error:
                logger.error("changing the router failed (%s); building a new one", type(error).__name__)
                self._build(deployments)
        refused = frozenset(model_id for model_id in deployments if model_id not in self._routed)
        if self._router is None or not self._routed:
            return None, refused
        names = {model_id: name for model_id, (name, _) in self._routed.items()}
        return ModelRouter(self._router, names, self._calls), refused

    def retire_unused(self) -> int:
        """Delete the deployments due for it (see the module docstring); how many were deleted."""
        router, now = self._router, self._clock()
        due = [
            name
            for name, since in self._retiring.items()
            if now - since >= self._retire_after and not self._calls[name]
        ][:RETIRE_PER_CYCLE]
        if router is None or not due:
            return 0
        router.apply(ChangeSet(delete=due))
        for name in due:
            del self._retiring[name]
            self._calls.pop(name, None)
        return len(due)

    def _name(self, model_id: str) -> str:
        return f"{model_id}{_SEPARATOR}{next(self._serial)}"

    def _change(self, deployments: Mapping[str, Mapping[str, Any]]) -> None:
        router = self._router
        assert router is not None
        for model_id in [m for m in self._routed if m not in deployments]:
            self._retire(self._routed.pop(model_id)[0])
        for model_id in [m for m in self._refused if m not in deployments]:
            del self._refused[model_id]
        for model_id, params in deployments.items():
            routed = self._routed.get(model_id)
            if (routed is not None and routed[1] == params) or self._refused.get(model_id) == params:
                continue
            name = self._name(model_id)
            deployment = Deployment(
                model_name=name, litellm_params=LiteLLM_Params(**params), model_info={"id": name}
            )
            router.apply(ChangeSet(upsert=[deployment]))
            if routed is not None:
                self._retire(self._routed.pop(model_id)[0])
            if router.registry().has_deployment(name):
                self._routed[model_id] = (name, params)
                self._refused.pop(model_id, None)
            else:
                self._refuse(model_id, params)

    def _build(self, deployments: Mapping[str, Mapping[str, Any]]) -> None:
        named = {model_id: (self._name(model_id), params) for model_id, params in deployments.items()}
        model_list = [
            {"model_name": name, "litellm_params": dict(params), "model_info": {"id": name}}
            for name, params in named.values()
        ]
        previous, self._router = self._router, self._new_router(model_list)
        self.builds += 1
        routed = set(self._router.registry().names()) if self._router is not None else set()
        self._routed, self._refused, self._retiring = {}, {}, {}
        for model_id, (name, params) in named.items():
            if name in routed:
                self._routed[model_id] = (name, params)
            else:
                self._refuse(model_id, params)
        if previous is not None:
            previous.retire()  # it keeps serving the requests of older snapshots

    def _new_router(self, model_list: list[dict[str, Any]]) -> Router | None:
        """The Router of ``model_list``; when LiteLLM refuses the whole list because of one
        deployment (some invalid parameters raise instead of being ignored), without the
        deployments it refuses on their own."""
        try:
            return self._factory(model_list)
        except Exception as error:
            logger.error(
                "building the router failed (%s); leaving out what LiteLLM refuses", type(error).__name__
            )
        usable = [deployment for deployment in model_list if self._accepted_alone(deployment)]
        return self._factory(usable) if usable else self._factory([])

    def _accepted_alone(self, deployment: dict[str, Any]) -> bool:
        try:
            self._factory([deployment]).retire()
        except Exception:
            return False
        return True

    def _refuse(self, model_id: str, params: Mapping[str, Any]) -> None:
        logger.error("model %s not served: LiteLLM refused its parameters", model_id)
        self._refused[model_id] = params

    def _retire(self, name: str) -> None:
        self._retiring[name] = self._clock()


__all__ = [
    "ModelRouter",
    "Router",
    "RouterFactory",
    "SharedRouter",
    "callbacks_registered",
    "fast_round_trip_check",
    "incremental_cost_key_map",
    "litellm",
    "quiet_litellm",
    "skip_unused_bookkeeping",
]
