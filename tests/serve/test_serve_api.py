"""The serve API driven with the official ``openai`` client against stand-in model backends."""

from __future__ import annotations

import base64
import json
import logging
import struct
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from lisa_domain.schema import ModelType
from tests.serve.conftest import BACKEND_TIMEOUT, MAX_BODY, ServeEnv
from tests.support.waiting import wait_for


def says(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def body_of(error: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(error.body, dict), error.body
    return error.body


HELLO = says("hello world")


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "code"} <= set(body["error"]), body
    return body["error"]


# ---- models ----------------------------------------------------------------------------------------
def test_models_list_has_exactly_the_seed_shape(serve: ServeEnv) -> None:
    response = httpx.get(serve.base_url + "/models", headers=serve.headers("admin"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "object"}
    assert body["object"] == "list"
    for item in body["data"]:
        assert set(item) == {"id", "object", "created", "owned_by"}
        assert item["object"] == "model"
        assert isinstance(item["created"], int)
    ids = [item["id"] for item in body["data"]]
    assert ids == sorted(ids)
    record = serve.registry.get("chat-open")
    assert {"id": "chat-open", "object": "model", "created": record.createdAt, "owned_by": "openai"} in body[
        "data"
    ]

    listed = serve.client("admin").models.list()
    assert {"chat-open", "chat-team-a", "chat-team-b", "embed"} <= {model.id for model in listed.data}


def test_models_retrieve(serve: ServeEnv) -> None:
    model = serve.client("alice").models.retrieve("chat-open")
    assert model.id == "chat-open"
    assert model.object == "model"
    assert model.created == serve.registry.get("chat-open").createdAt
    assert model.owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as caught:
        serve.client("alice").models.retrieve("no-such-model")
    assert body_of(caught.value)["code"] == "model_not_found"


# ---- visibility ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "visible", "invisible"),
    [
        ("alice", {"chat-open", "chat-team-a"}, {"chat-team-b"}),
        ("bob", {"chat-open", "chat-team-b"}, {"chat-team-a"}),
        ("nobody", {"chat-open"}, {"chat-team-a", "chat-team-b"}),
        ("admin", {"chat-open", "chat-team-a", "chat-team-b"}, set()),
        ("management", {"chat-open", "chat-team-a", "chat-team-b"}, set()),
        ("hdr.alice.sig", {"chat-open", "chat-team-a"}, {"chat-team-b"}),  # an OIDC identity
    ],
)
def test_models_outside_the_callers_groups_are_invisible(
    serve: ServeEnv, who: str, visible: set[str], invisible: set[str]
) -> None:
    client = serve.client(who)
    listed = {model.id for model in client.models.list().data}
    assert visible <= listed
    assert not invisible & listed
    for model_id in visible:
        assert client.chat.completions.create(model=model_id, messages=HELLO).choices[0].message.content
    for model_id in invisible:
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(model_id)
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=model_id, messages=HELLO)
        assert body_of(caught.value)["code"] == "model_not_found"
        # The same answer as for a model that does not exist: nothing is revealed.
        assert f"'{model_id}' does not exist" in body_of(caught.value)["message"]


# ---- inference -------------------------------------------------------------------------------------
def test_chat_completion(serve: ServeEnv) -> None:
    reply = serve.client("alice").chat.completions.create(model="chat-open", messages=HELLO, temperature=0.2)
    assert reply.object == "chat.completion"
    assert reply.model == "chat-open"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "echo: hello world"
    assert reply.usage is not None and reply.usage.total_tokens > 0


def test_chat_completion_streams_server_sent_events_ending_in_done(serve: ServeEnv) -> None:
    stream = serve.client("alice").chat.completions.create(model="chat-open", messages=HELLO, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == "echo: hello world"
    assert len(pieces) > 2

    with httpx.stream(
        "POST",
        serve.base_url + "/chat/completions",
        headers=serve.headers("alice"),
        json={"model": "chat-open", "messages": HELLO, "stream": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_completions(serve: ServeEnv) -> None:
    client = serve.client("bob")
    reply = client.completions.create(model="chat-open", prompt="say this", max_tokens=5)
    assert reply.object == "text_completion"
    assert reply.choices[0].text == "echo: say this"
    streamed = client.completions.create(model="chat-open", prompt="a b c", stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == "echo: a b c"


def test_embeddings(serve: ServeEnv) -> None:
    client = serve.client("nobody")
    floats = client.embeddings.create(model="embed", input=["one", "two words"], encoding_format="float")
    assert [item.index for item in floats.data] == [0, 1]
    assert all(len(item.embedding) == 8 for item in floats.data)
    assert floats.model == "embed"
    # The client's default asks for base64; the answer must still decode to the same vectors.
    default = client.embeddings.create(model="embed", input=["one", "two words"])
    assert [item.embedding for item in default.data] == [item.embedding for item in floats.data]


def test_api_key_header_is_accepted(serve: ServeEnv) -> None:
    response = httpx.get(serve.base_url + "/models", headers={"Api-Key": serve.token_values["alice"]})
    assert response.status_code == 200


def test_provider_key_is_resolved_from_secrets_manager(serve: ServeEnv) -> None:
    arn = serve.secretsmanager.create_secret(Name="lisa/test/models/ext", SecretString="sk-provider-key")[
        "ARN"
    ]
    serve.add_model(
        "external-model",
        params={"model": "openai/external", "api_base": serve.backend_url, "api_key_secret_arn": arn},
    )
    reply = serve.client("alice").chat.completions.create(model="external-model", messages=HELLO)
    assert reply.choices[0].message.content == "echo: hello world"
    assert serve.backend.authorization["external"] == "Bearer sk-provider-key"


# ---- auth errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer lisa_not-a-real-token"},
        {"Authorization": "Basic abc"},
        {"Api-Key": "wrong"},
    ],
)
def test_missing_or_bad_credentials_are_401(serve: ServeEnv, headers: dict[str, str]) -> None:
    for method, path, body in [
        ("GET", "/models", None),
        ("GET", "/models/chat-open", None),
        ("POST", "/chat/completions", {"model": "chat-open", "messages": HELLO}),
        ("POST", "/embeddings", {"model": "embed", "input": "x"}),
    ]:
        response = httpx.request(method, serve.base_url + path, headers=headers, json=body)
        assert response.status_code == 401, path
        assert _error(response)["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        serve.client("lisa_wrong").models.list()


def test_expired_token_is_401(serve: ServeEnv) -> None:
    value, _ = serve.tokens.create(username="old", groups=[], expiration=int(time.time()) - 1)
    serve.wait_for_tokens()
    with pytest.raises(openai.AuthenticationError):
        serve.client(value).models.list()


def test_revoked_token_stops_working_within_a_second(serve: ServeEnv) -> None:
    value, record = serve.tokens.create(username="temp", groups=[])
    serve.wait_for_tokens()
    client = serve.client(value)
    client.models.list()
    assert serve.tokens.delete(record)

    def refused() -> bool:
        return httpx.get(serve.base_url + "/models", headers=serve.headers(value)).status_code == 401

    wait_for(refused, 1.0, "the revoked token refused")


def test_forbidden_identity_is_403(serve: ServeEnv) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        serve.client("hdr.forbidden.sig").models.list()
    assert body_of(caught.value)["type"] == "permission_error"


# ---- request errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", {"model": "chat-open"}, "messages"),
        ("/chat/completions", {"messages": HELLO}, "model"),
        ("/chat/completions", {"model": "chat-open", "messages": []}, "messages"),
        ("/chat/completions", {"model": "chat-open", "messages": [{"content": "x"}]}, "messages[0].role"),
        ("/chat/completions", {"model": "chat-open", "messages": HELLO, "temperature": "hot"}, "temperature"),
        ("/chat/completions", {"model": "chat-open", "messages": HELLO, "stream": "yes"}, "stream"),
        ("/chat/completions", {"model": "chat-open", "messages": HELLO, "api_base": "http://x"}, "api_base"),
        (
            "/chat/completions",
            {"model": "chat-open", "messages": HELLO, "mock_response": "hi"},
            "mock_response",
        ),
        ("/completions", {"model": "chat-open"}, "prompt"),
        ("/embeddings", {"model": "embed"}, "input"),
        ("/embeddings", {"model": "embed", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ("/embeddings", {"model": "chat-open", "input": "x"}, "model"),  # a text model
        ("/chat/completions", {"model": "embed", "messages": HELLO}, "model"),  # an embedding model
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    serve: ServeEnv, path: str, body: dict[str, object], param: str
) -> None:
    response = httpx.post(serve.base_url + path, headers=serve.headers("admin"), json=body)
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["param"] == param
    assert param.split("[")[0] in str(error["message"])


def test_bad_body_through_the_openai_client(serve: ServeEnv) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        serve.client("admin").chat.completions.create(model="chat-open", messages=[])
    assert body_of(caught.value)["param"] == "messages"


def test_invalid_json_is_400(serve: ServeEnv) -> None:
    for content in (b"{not json", b"[1, 2]"):
        response = httpx.post(
            serve.base_url + "/chat/completions",
            headers={**serve.headers("admin"), "Content-Type": "application/json"},
            content=content,
        )
        assert response.status_code == 400
        assert _error(response)["code"] == "invalid_json"


def test_body_over_the_limit_is_413(serve: ServeEnv) -> None:
    big = {"model": "chat-open", "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    response = httpx.post(serve.base_url + "/chat/completions", headers=serve.headers("admin"), json=big)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"

    def chunks():  # no Content-Length: the streamed length is checked
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    response = httpx.post(
        serve.base_url + "/chat/completions", headers=serve.headers("admin"), content=chunks()
    )
    assert response.status_code == 413
    with pytest.raises(openai.APIStatusError) as caught:
        serve.client("admin").chat.completions.create(model="chat-open", messages=says("x" * MAX_BODY))
    assert caught.value.status_code == 413


def test_unknown_model_and_route_are_404(serve: ServeEnv) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        serve.client("admin").chat.completions.create(model="nope", messages=HELLO)
    assert body_of(caught.value)["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        serve.client("admin").embeddings.create(model="nope", input="x")
    response = httpx.get(serve.base_url + "/nothing-here", headers=serve.headers("admin"))
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


# ---- backend failures ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("broken-fail500", 502, "backend_error"),
        ("broken-refused", 502, "backend_unreachable"),
        ("broken-hang", 504, "backend_timeout"),
        ("broken-bad400", 400, "backend_rejected_request"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_backend_failures_map_to_openai_errors(
    serve: ServeEnv, model: str, status: int, code: str, stream: bool
) -> None:
    before = serve.backend.calls[model.removeprefix("broken-")]
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        serve.client("alice").chat.completions.create(model=model, messages=HELLO, stream=stream)
    elapsed = time.monotonic() - started
    assert caught.value.status_code == status
    assert body_of(caught.value)["code"] == code
    if model != "broken-refused":
        assert serve.backend.calls[model.removeprefix("broken-")] == before + 1  # no retries
    if model == "broken-hang":
        assert BACKEND_TIMEOUT <= elapsed < BACKEND_TIMEOUT + 2
    else:
        assert "127.0.0.1" not in body_of(caught.value)["message"]


def test_stream_cut_midway_ends_with_an_error_event(serve: ServeEnv) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        stream = serve.client("alice").chat.completions.create(
            model="broken-cut", messages=says("one two three four"), stream=True
        )
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "echo: one"
    assert "broken-cut" in caught.value.message

    with httpx.stream(
        "POST",
        serve.base_url + "/chat/completions",
        headers=serve.headers("alice"),
        json={"model": "broken-cut", "messages": HELLO, "stream": True},
    ) as response:
        events = [line for line in response.iter_lines() if line]
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["code"] == "backend_unreachable"
    assert "data: [DONE]" not in events


def test_a_failing_backend_does_not_disturb_other_requests(serve: ServeEnv) -> None:
    errors: list[int] = []

    def hang() -> None:
        try:
            serve.client("alice").chat.completions.create(model="broken-hang", messages=HELLO)
        except openai.APIStatusError as error:
            errors.append(error.status_code)

    hanging = [threading.Thread(target=hang) for _ in range(3)]
    hung_before = serve.backend.calls["hang"]
    for thread in hanging:
        thread.start()
    wait_for(lambda: serve.backend.calls["hang"] == hung_before + 3, 10, "the 3 requests reach the backend")
    client = serve.client("alice")
    started = time.monotonic()
    for _ in range(5):
        assert client.chat.completions.create(model="chat-open", messages=HELLO).choices[0].message.content
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="broken-fail500", messages=HELLO)
    assert time.monotonic() - started < BACKEND_TIMEOUT  # not queued behind the hanging requests
    for thread in hanging:
        thread.join()
    assert errors == [504, 504, 504]


# ---- health and logging ----------------------------------------------------------------------------
def test_health_routes_need_no_credentials(serve: ServeEnv) -> None:
    assert httpx.get(serve.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(serve.url + "/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_no_request_or_response_body_is_logged(serve: ServeEnv, caplog: pytest.LogCaptureFixture) -> None:
    marker = "SECRET-PROMPT-7f3a"
    caplog.set_level(logging.DEBUG)
    client = serve.client("alice")
    client.chat.completions.create(model="chat-open", messages=says(marker))
    list(client.chat.completions.create(model="chat-open", messages=says(marker), stream=True))
    for model in ("broken-fail500", "broken-bad400"):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model=model, messages=says(marker))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-open", messages=says(marker), temperature="x")  # type: ignore[call-overload]
    assert marker not in caplog.text
    assert serve.token_values["alice"] not in caplog.text


def test_embedding_base64_is_decodable(serve: ServeEnv) -> None:
    response = httpx.post(
        serve.base_url + "/embeddings",
        headers=serve.headers("alice"),
        json={"model": "embed", "input": "abc", "encoding_format": "base64"},
    )
    assert response.status_code == 200
    embedding = response.json()["data"][0]["embedding"]
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        assert len(struct.unpack(f"<{len(raw) // 4}f", raw)) == 8
    else:
        assert len(embedding) == 8


def test_model_type_is_checked_before_calling_the_backend(serve: ServeEnv) -> None:
    serve.add_model("img-model", model_type=ModelType.IMAGEGEN)
    with pytest.raises(openai.BadRequestError) as caught:
        serve.client("alice").chat.completions.create(model="img-model", messages=HELLO)
    assert body_of(caught.value)["code"] == "model_type_mismatch"
