"""Metering, rate limits and budgets in the serve app (one replica on moto, the fake backend).

Multi-replica behaviour is in tests/integration/test_usage_replicas.py; the arithmetic in
tests/unit/test_usage_limits.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest

from lisa_contracts.limits import RateLimit
from lisa_domain.schema import ModelType
from local_mode.resources import create_resources
from serve.metering import MetricsPrinter
from tests.serve.conftest import ServeEnv, running_serve, usage_of
from tests.support.fake_backend import FakeBackend

LIMITS = {
    "users": {
        "limited": {"rateLimit": {"rpm": 3}},
        "spender": {"monthlyTokenBudget": 5},
    },
    "groups": {"team-t": {"rateLimit": {"tpm": 5}}},
}
CHAT = {"messages": [{"role": "user", "content": "one two three"}]}


@pytest.fixture(scope="module")
def metered(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    resources = create_resources("lisa-metering", endpoint_url=moto_url)
    with running_serve(
        moto_url, backend, resources, usage_table=resources.usage_table, usage_limits=json.dumps(LIMITS)
    ) as env:
        env.add_tokens({"alice": ["team-a"], "limited": [], "spender": [], "tpm": ["team-t"], "streamer": []})
        env.add_model("chat")
        env.add_model("embed", "embedder", model_type=ModelType.EMBEDDING)
        env.add_model("broken", "fail500")
        yield env


def post(env: ServeEnv, route: str, who: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{env.base_url}/{route}", json=body, headers=env.headers(who), timeout=20)


def test_a_chat_completion_is_metered_with_its_tokens(metered: ServeEnv) -> None:
    answers = [post(metered, "chat/completions", "alice", {"model": "chat", **CHAT}) for _ in range(2)]
    assert all(answer.status_code == 200 for answer in answers)
    usage = answers[0].json()["usage"]
    counted = usage_of(metered, "alice")["chat"]
    assert counted["requests"] == 2 and counted["errors"] == 0
    assert counted["promptTokens"] == 2 * usage["prompt_tokens"] > 0
    assert counted["completionTokens"] == 2 * usage["completion_tokens"] > 0
    # no limits configured for alice: no rate-limit headers
    assert "x-ratelimit-limit-requests" not in answers[0].headers


def test_embeddings_and_backend_errors_are_metered(metered: ServeEnv) -> None:
    assert post(metered, "embeddings", "alice", {"model": "embed", "input": "a b c"}).status_code == 200
    failed = post(metered, "chat/completions", "alice", {"model": "broken", **CHAT})
    assert failed.status_code >= 500
    usage = usage_of(metered, "alice")
    assert usage["embed"]["requests"] == 1 and usage["embed"]["promptTokens"] > 0
    assert usage["broken"] == usage["broken"] | {"requests": 1, "errors": 1, "totalTokens": 0}


def _stream(env: ServeEnv, who: str, include_usage: bool) -> list[dict[str, object]]:
    body: dict[str, object] = {"model": "chat", "stream": True, **CHAT}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream(
        "POST", f"{env.base_url}/chat/completions", json=body, headers=env.headers(who), timeout=20
    ) as answer:
        assert answer.status_code == 200
        lines = [line[6:] for line in answer.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_a_stream_is_metered_once_and_its_usage_reaches_only_clients_that_ask(metered: ServeEnv) -> None:
    plain = _stream(metered, "streamer", include_usage=False)
    assert not any(chunk.get("usage") for chunk in plain)
    after_one = usage_of(metered, "streamer")["chat"]
    assert after_one["requests"] == 1 and after_one["completionTokens"] > 0

    asked = _stream(metered, "streamer", include_usage=True)
    reported = [chunk["usage"] for chunk in asked if chunk.get("usage")]
    assert len(reported) == 1
    after_two = usage_of(metered, "streamer")["chat"]
    assert after_two["requests"] == 2
    assert after_two["completionTokens"] - after_one["completionTokens"] == reported[0]["completion_tokens"]  # type: ignore[index]


def test_over_the_rpm_limit_answers_429_in_openai_shape_with_headers(metered: ServeEnv) -> None:
    answers = [post(metered, "chat/completions", "limited", {"model": "chat", **CHAT}) for _ in range(5)]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200, 200, 200, 429, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0", "0", "0"]
    assert all(a.headers["x-ratelimit-limit-requests"] == "3" for a in answers)
    refused = answers[3]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert usage_of(metered, "limited")["chat"] == usage_of(metered, "limited")["chat"] | {
        "requests": 5,
        "errors": 2,
    }


def test_the_tpm_limit_of_a_group_refuses_once_the_tokens_are_spent(metered: ServeEnv) -> None:
    first = post(metered, "chat/completions", "tpm", {"model": "chat", **CHAT})
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] >= 5
    assert first.headers["x-ratelimit-limit-tokens"] == "5"
    second = post(metered, "chat/completions", "tpm", {"model": "chat", **CHAT})
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limit_exceeded"


def test_a_spent_monthly_budget_answers_budget_exceeded(metered: ServeEnv) -> None:
    first = post(metered, "chat/completions", "spender", {"model": "chat", **CHAT})
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] >= 5
    second = post(metered, "chat/completions", "spender", {"model": "chat", **CHAT})
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "budget_exceeded"
    assert int(second.headers["Retry-After"]) > 0
    usage_of(metered, "spender")  # flushed: the stored counter holds the spend too
    assert post(metered, "chat/completions", "spender", {"model": "chat", **CHAT}).status_code == 429


def test_metrics_are_printed_as_cloudwatch_emf() -> None:
    from lisa_domain.usage import UsageStore as Store
    from serve.metering import Meter

    out = io.StringIO()
    meter = Meter(Store("unused", client=_NoWrites()), flush_seconds=10, metrics=MetricsPrinter(out))
    for index in range(150):
        meter.record(
            username="u",
            groups=(),
            model="m",
            status=500 if index == 0 else 200,
            prompt_tokens=2,
            completion_tokens=3,
            latency_seconds=0.01,
            route="chat/completions",
        )
    meter.flush()
    documents = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(documents) == 2  # 150 latencies: 100 + 50 values
    first = documents[0]
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "LISA" and directive["Dimensions"] == [["model"], ["model", "route"]]
    assert (
        first["model"] == "m"
        and first["route"] == "chat/completions"
        and first["Requests"] == 150
        and first["Errors"] == 1
    )
    assert first["PromptTokens"] == 300 and first["CompletionTokens"] == 450
    assert len(first["Latency"]) == 100 and len(documents[1]["Latency"]) == 50


class _NoWrites:
    def transact_write_items(self, **_: object) -> None:
        return None


def test_an_api_tokens_own_rate_limit_and_budget_apply_on_top_of_its_users(metered: ServeEnv) -> None:
    limited, _ = metered.tokens.create(username="alice", groups=["team-a"], rate_limit=RateLimit(rpm=2))
    budgeted, _ = metered.tokens.create(username="alice", groups=["team-a"], monthly_token_budget=1)
    metered.wait_for_tokens()

    def chat(token: str) -> httpx.Response:
        return httpx.post(
            f"{metered.base_url}/chat/completions",
            json={"model": "chat", **CHAT},
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )

    answers = [chat(limited) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "2"
    assert answers[2].json()["error"]["code"] == "rate_limit_exceeded"
    assert chat(budgeted).status_code == 200  # within the budget (0 of 1 spent) it is never refused
    refused = chat(budgeted)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
    assert "token" in refused.json()["error"]["message"]
    # alice's other credentials are not limited by the tokens' own limits
    assert post(metered, "chat/completions", "alice", {"model": "chat", **CHAT}).status_code == 200
