"""Cost control in the serve app: start on request (503 model_starting, one flag however many ask)
and usage reports (lastUsedAt, no write per request). The serve app runs against moto."""

from __future__ import annotations

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from lisa_domain.cost_control import LAST_USED_AT, START_REQUESTED
from lisa_domain.registry import now
from lisa_domain.schema import ModelRecord, ModelStatus
from serve.activity import RETRY_AFTER_SECONDS, StartRequester
from tests.serve.conftest import ServeEnv
from tests.support.lisa_payloads import VLLM_MODEL

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _stopped_model(serve: ServeEnv, model_id: str, *, start_on_request: bool, groups: list[str]) -> None:
    body: dict[str, Any] = copy.deepcopy(VLLM_MODEL)
    body.update(modelId=model_id, allowedGroups=groups, startOnRequest=start_on_request)
    serve.registry.create(
        ModelRecord.model_validate(
            {**body, "status": ModelStatus.STOPPED, "createdAt": now(), "updatedAt": now()}
        )
    )
    serve.wait_for_registry()


def _chat(serve: ServeEnv, model_id: str, who: str) -> httpx.Response:
    return httpx.post(
        f"{serve.base_url}/chat/completions",
        json={"model": model_id, **CHAT},
        headers=serve.headers(who),
        timeout=20,
    )


def _item(serve: ServeEnv, model_id: str) -> dict[str, Any]:
    return serve.registry.get_item(model_id)


def test_concurrent_requests_for_a_stopped_model_answer_503_and_flag_one_start(serve: ServeEnv) -> None:
    _stopped_model(serve, "sor-many", start_on_request=True, groups=["team-a"])
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: _chat(serve, "sor-many", "alice"), range(32)))
    assert {response.status_code for response in responses} == {503}
    response = responses[0]
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("model_starting", "server_error", "model")
    flagged = _item(serve, "sor-many")[START_REQUESTED]
    assert isinstance(flagged, int) and abs(flagged - now()) < 60
    # This replica asks once per interval: another request does not write the flag again.
    assert _chat(serve, "sor-many", "alice").status_code == 503
    assert _item(serve, "sor-many")[START_REQUESTED] == flagged


def test_a_caller_who_may_not_use_the_model_gets_404_and_asks_nothing(serve: ServeEnv) -> None:
    _stopped_model(serve, "sor-team-a", start_on_request=True, groups=["team-a"])
    response = _chat(serve, "sor-team-a", "bob")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert START_REQUESTED not in _item(serve, "sor-team-a")


def test_without_start_on_request_a_stopped_model_is_404_and_stopped_models_are_never_listed(
    serve: ServeEnv,
) -> None:
    _stopped_model(serve, "plain-stopped", start_on_request=False, groups=[])
    _stopped_model(serve, "sor-listed", start_on_request=True, groups=[])
    response = _chat(serve, "plain-stopped", "alice")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert START_REQUESTED not in _item(serve, "plain-stopped")
    listed = {
        m["id"] for m in httpx.get(f"{serve.base_url}/models", headers=serve.headers("admin")).json()["data"]
    }
    assert "plain-stopped" not in listed and "sor-listed" not in listed
    assert httpx.get(f"{serve.base_url}/models/sor-listed", headers=serve.headers("admin")).status_code == 404


def test_while_starting_requests_wait_and_once_in_service_they_succeed(serve: ServeEnv) -> None:
    _stopped_model(serve, "sor-start", start_on_request=True, groups=[])
    assert _chat(serve, "sor-start", "alice").status_code == 503
    serve.registry.transition("sor-start", allowed_from=[ModelStatus.STOPPED], to=ModelStatus.STARTING)
    serve.wait_for_registry()
    assert _chat(serve, "sor-start", "alice").status_code == 503
    serve.registry.register(
        "sor-start",
        {"model": "openai/echo", "api_base": serve.backend_url, "api_key": "unused"},
        allowed_from=[ModelStatus.STARTING],
    )
    serve.wait_for_registry()
    response = _chat(serve, "sor-start", "alice")
    assert response.status_code == 200, response.text


def test_usage_is_reported_once_per_model_per_flush(serve: ServeEnv) -> None:
    usage = serve.services.usage
    assert usage is not None
    usage.flush()  # start clean (earlier tests' requests)
    for _ in range(5):
        assert _chat(serve, "chat-open", "admin").status_code == 200
    assert _chat(serve, "embed", "admin").status_code == 400  # wrong endpoint: not a use
    assert usage.flush() == 1
    assert abs(_item(serve, "chat-open")[LAST_USED_AT] - now()) <= 2
    assert usage.flush() == 0  # nothing used since: no write


class _CountingStore:
    def __init__(self) -> None:
        self.calls = 0

    def request_start(self, model_id: str, at: int) -> bool:
        self.calls += 1
        return True


def test_the_start_requester_asks_once_per_interval_however_many_requests() -> None:
    store = _CountingStore()
    clock = [100.0]
    requester = StartRequester(store, interval=10.0, clock=lambda: clock[0])  # type: ignore[arg-type]

    async def many() -> None:
        await asyncio.gather(*(requester.request("m") for _ in range(50)))

    asyncio.run(many())
    assert store.calls == 1
    clock[0] += 10.0
    asyncio.run(requester.request("m"))
    assert store.calls == 2
