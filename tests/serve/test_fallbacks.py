"""Fallbacks (``serve.fallback``) with the official ``openai`` and ``anthropic`` clients.

The model backends are the stand-in OpenAI server of ``tests/support/fake_backend.py`` (not a
model): ``fail500``/``fail503`` answer 5xx, ``bad400`` 400, ``hang`` never answers, ``cut`` drops a
stream after two chunks, any other name echoes. A model's ``fallbacks`` are written to the registry
the way the update workflow writes them (a transition of the model item), so every test also shows
that the serve app follows the field like any other registry change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from itertools import count
from typing import Any

import anthropic
import httpx
import openai
import pytest

from lisa_domain.schema import ModelStatus, ModelType
from local_mode.resources import create_resources
from serve._litellm import Router, SharedRouter, litellm
from serve.app import create_app
from serve.errors import ServeError, backend_error
from serve.fallback import FALLBACK_FROM_HEADER, MODEL_HEADER, Fallbacks, retryable
from serve.openapi import openapi_document
from tests.serve.conftest import ServeEnv, running_serve, usage_of
from tests.support.fake_backend import FakeBackend
from tests.support.servers import free_port

HELLO: Any = [{"role": "user", "content": "hello world"}]
_serial = count(1)


def unique(name: str) -> str:
    """A model id (or stand-in backend name) no other test uses (the serve app is per session)."""
    return f"fb{next(_serial)}-{name}"


def set_fallbacks(env: ServeEnv, model_id: str, fallbacks: list[str]) -> None:
    """Write the model's fallbacks as the update workflow's last step does, and wait for the app."""
    env.registry.transition(
        model_id,
        allowed_from=[ModelStatus.IN_SERVICE],
        to=ModelStatus.IN_SERVICE,
        changes={"fallbacks": fallbacks},
    )
    env.wait_for_registry()


def served(
    env: ServeEnv,
    backend_model: str,
    *,
    fallbacks: list[str] | None = None,
    groups: list[str] | None = None,
    model_type: ModelType = ModelType.TEXTGEN,
    params: dict[str, Any] | None = None,
) -> str:
    """A new served model on the stand-in ``backend_model``; its id."""
    model_id = unique(backend_model)
    env.add_model(model_id, backend_model, groups=groups, model_type=model_type, params=params)
    if fallbacks:
        set_fallbacks(env, model_id, fallbacks)
    return model_id


def chat(env: ServeEnv, model: str, who: str = "alice") -> Any:
    """A chat completion's raw answer (headers and the parsed body)."""
    return env.client(who).chat.completions.with_raw_response.create(model=model, messages=HELLO)


def answered_by(raw: Any) -> tuple[str | None, str | None]:
    return raw.headers.get(MODEL_HEADER), raw.headers.get(FALLBACK_FROM_HEADER)


_E = litellm.exceptions


@pytest.mark.parametrize(
    ("error", "tried_next"),
    [
        (_E.InternalServerError("boom", "openai", "m"), True),
        (_E.ServiceUnavailableError("down", "openai", "m"), True),
        (_E.Timeout("slow", "m", "openai"), True),
        (_E.APIConnectionError("refused", "openai", "m"), True),
        (_E.BadRequestError("too long", "m", "openai"), False),
        (_E.AuthenticationError("LISA's key refused", "openai", "m"), False),
        (_E.NotFoundError("no such model", "openai", "m"), False),
        (_E.RateLimitError("slow down", "openai", "m"), False),
    ],
    ids=["500", "503", "timeout", "connection", "400", "401", "404", "429"],
)
def test_what_a_fallback_is_tried_for(error: Exception, tried_next: bool) -> None:
    assert retryable(error, backend_error(error, "m")) is tried_next


@pytest.mark.parametrize("failure", ["fail500", "fail503", "hang", "refused"])
def test_a_failing_backend_is_answered_by_the_fallback(serve: ServeEnv, failure: str) -> None:
    backup = served(serve, unique("echo"))
    params = (
        {"model": "openai/echo", "api_base": f"http://127.0.0.1:{free_port()}/v1", "api_key": "x"}
        if failure == "refused"
        else None
    )
    primary = served(serve, failure, fallbacks=[backup], params=params)
    calls = serve.backend.calls[failure]

    raw = chat(serve, primary)

    completion = raw.parse()
    assert completion.model == backup
    assert completion.choices[0].message.content == "echo: hello world"
    assert answered_by(raw) == (backup, primary)
    if failure != "refused":  # tried once (no LiteLLM retry, no LiteLLM fallback on top)
        assert serve.backend.calls[failure] == calls + 1


def test_without_a_failure_the_model_answers_and_says_so(serve: ServeEnv) -> None:
    backup_backend = unique("echo")
    primary = served(serve, unique("echo"), fallbacks=[served(serve, backup_backend)])
    raw = chat(serve, primary)
    assert raw.parse().model == primary
    assert answered_by(raw) == (primary, None)
    assert serve.backend.calls[backup_backend] == 0


def test_a_stream_falls_back_before_its_first_chunk(serve: ServeEnv) -> None:
    backup = served(serve, unique("echo"))
    primary = served(serve, "fail500", fallbacks=[backup])
    with serve.client("alice").chat.completions.with_streaming_response.create(
        model=primary, messages=HELLO, stream=True
    ) as response:
        assert answered_by(response) == (backup, primary)
        chunks = list(response.parse())
    assert {chunk.model for chunk in chunks} == {backup}
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == (
        "echo: hello world"
    )


def test_a_stream_that_fails_after_its_first_chunk_is_not_restarted(serve: ServeEnv) -> None:
    backup_backend = unique("echo")
    primary = served(serve, "cut", fallbacks=[served(serve, backup_backend)])
    with httpx.stream(
        "POST",
        f"{serve.base_url}/chat/completions",
        json={"model": primary, "messages": HELLO, "stream": True},
        headers=serve.headers("alice"),
        timeout=20,
    ) as response:
        assert response.status_code == 200 and response.headers[MODEL_HEADER] == primary
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert "error" in json.loads(events[-1].removeprefix("data: "))
    assert serve.backend.calls[backup_backend] == 0


def test_completions_and_embeddings_fall_back_too(serve: ServeEnv) -> None:
    text_backup = served(serve, unique("echo"))
    text = served(serve, "fail503", fallbacks=[text_backup])
    raw = serve.client("alice").completions.with_raw_response.create(model=text, prompt="say hi")
    assert raw.parse().model == text_backup and answered_by(raw) == (text_backup, text)

    embed_backup = served(serve, unique("embedder"), model_type=ModelType.EMBEDDING)
    embed = served(serve, "fail500", fallbacks=[embed_backup], model_type=ModelType.EMBEDDING)
    vectors = serve.client("alice").embeddings.with_raw_response.create(model=embed, input="a b c")
    assert vectors.parse().model == embed_backup and len(vectors.parse().data[0].embedding) > 0
    assert answered_by(vectors) == (embed_backup, embed)


def test_a_fallback_the_caller_may_not_use_is_skipped(serve: ServeEnv) -> None:
    team_b_backend = unique("echo")
    team_b_backup = served(serve, team_b_backend, groups=["team-b"])
    primary = served(serve, "fail500", fallbacks=[team_b_backup])

    with pytest.raises(openai.APIStatusError) as refused:
        chat(serve, primary, "alice")  # team-a: the original error
    assert refused.value.status_code == 502
    assert refused.value.body["code"] == "backend_error"  # type: ignore[index]
    assert primary in refused.value.message
    assert serve.backend.calls[team_b_backend] == 0

    raw = chat(serve, primary, "bob")  # team-b may use it
    assert answered_by(raw) == (team_b_backup, primary)


def test_a_client_error_is_not_retried(serve: ServeEnv) -> None:
    backup_backend = unique("echo")
    primary = served(serve, "bad400", fallbacks=[served(serve, backup_backend)])
    with pytest.raises(openai.BadRequestError) as refused:
        chat(serve, primary)
    assert "maximum context length" in refused.value.message
    assert serve.backend.calls[backup_backend] == 0


def test_a_chain_of_two_is_tried_in_order(serve: ServeEnv) -> None:
    last = served(serve, unique("echo"))
    broken_too = served(serve, "fail503")
    primary = served(serve, "fail500", fallbacks=[broken_too, last])

    raw = chat(serve, primary)

    assert raw.parse().model == last
    assert answered_by(raw) == (last, primary)


def test_when_every_candidate_fails_the_last_error_is_answered(serve: ServeEnv) -> None:
    broken_too = served(serve, "fail503")
    primary = served(serve, "fail500", fallbacks=[broken_too])
    with pytest.raises(openai.APIStatusError) as failed:
        chat(serve, primary)
    assert failed.value.status_code == 502
    assert f"model '{broken_too}' failed (status 503)" in failed.value.message


def test_a_fallback_of_another_type_or_not_served_is_skipped(serve: ServeEnv) -> None:
    """The admin API refuses both; the registry may still hold them (a deleted or stopped fallback)."""
    embedder = served(serve, unique("embedder"), model_type=ModelType.EMBEDDING)
    primary = served(serve, "fail500", fallbacks=["never-created", embedder])
    with pytest.raises(openai.APIStatusError) as failed:
        chat(serve, primary)
    assert failed.value.status_code == 502 and primary in failed.value.message


def test_a_change_of_the_fallbacks_is_followed(serve: ServeEnv) -> None:
    backup = served(serve, unique("echo"))
    primary = served(serve, "fail500")
    with pytest.raises(openai.APIStatusError):
        chat(serve, primary)

    set_fallbacks(serve, primary, [backup])
    snapshot = serve.services.follower.snapshot
    assert snapshot is not None and snapshot.models[primary].fallbacks == (backup,)
    assert answered_by(chat(serve, primary)) == (backup, primary)

    set_fallbacks(serve, primary, [])
    with pytest.raises(openai.APIStatusError):
        chat(serve, primary)


def test_anthropic_messages_fall_back(serve: ServeEnv) -> None:
    backup = served(serve, unique("echo"))
    primary = served(serve, "fail500", fallbacks=[backup])
    client = anthropic.Anthropic(
        base_url=serve.base_url, api_key=serve.token_values["alice"], max_retries=0, timeout=20
    )

    raw = client.messages.with_raw_response.create(model=primary, max_tokens=64, messages=HELLO)

    message = raw.parse()
    assert message.model == backup
    assert message.content[0].text == "echo: hello world"  # type: ignore[union-attr]
    assert answered_by(raw) == (backup, primary)

    with client.messages.stream(model=primary, max_tokens=64, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == "echo: hello world"
        assert stream.get_final_message().model == backup


def test_responses_fall_back(serve: ServeEnv) -> None:
    backup = served(serve, unique("echo"))
    primary = served(serve, "fail503", fallbacks=[backup])
    raw = serve.client("alice").responses.with_raw_response.create(model=primary, input="hello world")
    response = raw.parse()
    assert response.model == backup and response.output_text == "echo: hello world"
    assert answered_by(raw) == (backup, primary)


@pytest.fixture(scope="module")
def metered(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    resources = create_resources("lisa-fallback-metering", endpoint_url=moto_url)
    with running_serve(moto_url, backend, resources, usage_table=resources.usage_table) as env:
        env.add_tokens({"dana": []})
        env.add_model("backup")
        env.add_model("primary", "fail500")
        set_fallbacks(env, "primary", ["backup"])
        yield env


def test_usage_is_recorded_for_the_model_that_answered(metered: ServeEnv) -> None:
    raw = chat(metered, "primary", "dana")
    tokens = raw.parse().usage
    usage = usage_of(metered, "dana")
    assert "primary" not in usage
    assert usage["backup"]["requests"] == 1
    assert usage["backup"]["promptTokens"] == tokens.prompt_tokens > 0


def test_the_openapi_document_names_the_answer_headers(serve: ServeEnv) -> None:
    paths = openapi_document(create_app(serve.services))["paths"]
    for route in ("chat/completions", "completions", "embeddings", "v1/messages", "responses", "rerank"):
        headers = paths[f"/v2/serve/{route}"]["post"]["responses"]["200"]["headers"]
        assert set(headers) == {MODEL_HEADER, FALLBACK_FROM_HEADER}, route
    assert not paths["/v2/serve/v1/messages/count_tokens"]["post"]["responses"]["200"].get("headers")


class BackendStream:
    """A backend stream that yields ``items``, or fails before its first item; knows if it was closed."""

    def __init__(self, *items: str, error: Exception | None = None) -> None:
        self.items, self.error, self.closed = list(items), error, False

    def __aiter__(self) -> BackendStream:
        return self

    async def __anext__(self) -> str:
        if self.error is not None:
            raise self.error
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)

    async def aclose(self) -> None:
        self.closed = True


def test_a_stream_that_fails_before_its_first_item_is_closed() -> None:
    """Its connection is released, whether a fallback answers or the error does."""
    broken, good = BackendStream(error=_E.InternalServerError("cut", "openai", "m")), BackendStream("hi")
    streams = {"primary": broken, "backup": good}

    async def start(model_id: str, body: dict[str, Any]) -> BackendStream:
        return streams[model_id]

    answer = asyncio.run(Fallbacks(("primary", "backup")).stream({}, start))
    assert (answer.model_id, answer.result.first) == ("backup", "hi")
    assert broken.closed and not good.closed  # the answering one is closed by the event stream

    streams["primary"] = alone = BackendStream(error=_E.ServiceUnavailableError("down", "openai", "m"))
    with pytest.raises(ServeError) as failed:
        asyncio.run(Fallbacks(("primary",)).stream({}, start))
    assert failed.value.status == 502 and alone.closed


def test_a_fallback_changed_while_the_model_fails_is_still_the_snapshots() -> None:
    """The model can take minutes to fail (a timeout); a fallback changed meanwhile keeps its
    deployment for the request, instead of a retired one (LiteLLM: 400 naming a deployment)."""
    shared = SharedRouter(lambda model_list: Router(model_list=model_list), retire_after=0.0)

    def params(reply: str) -> dict[str, Any]:
        return {
            "model": "openai/m",
            "api_base": "http://127.0.0.1:9/v1",
            "api_key": "x",
            "mock_response": reply,
        }

    routes, _ = shared.apply({"primary": params("primary"), "backup": params("backup")})
    assert routes is not None

    async def start(model_id: str, body: dict[str, Any]) -> Any:
        if model_id == "primary":  # the backup changes while the primary fails
            shared.apply({"primary": params("primary"), "backup": params("backup, changed")})
            shared.retire_unused()
            raise _E.InternalServerError("boom", "openai", "m")
        return await routes.acompletion(model=model_id, **body)

    answer = asyncio.run(Fallbacks(("primary", "backup"), router=routes).call({"messages": HELLO}, start))

    assert answer.model_id == "backup" and answer.result.choices[0].message.content == "backup"
    assert shared.retire_unused() == 1  # the request is done: the old deployment goes now
