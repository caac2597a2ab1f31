"""``/v2/serve/audio/speech`` and ``/v2/serve/audio/transcriptions`` with the official ``openai``
client against the stand-in backend's audio routes (``tests/support/fake_backend.py``: not a speech
model; its speech is a real WAV/FLAC tone and its "transcript" proves the upload arrived intact).

No small speech or transcription model ships in a package these machines can install without a
download at run time, so the backends here are stand-ins; the routes, LiteLLM's provider
translation (the registry's ``hosted_vllm`` parameters for a self-hosted Whisper model) and the
audio bytes are real.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import soundfile

from lisa_domain.cost_control import START_REQUESTED
from lisa_domain.litellm_params import litellm_params
from lisa_domain.registry import now
from lisa_domain.schema import ModelDefinition, ModelRecord, ModelStatus, ModelType
from local_mode.resources import create_resources
from tests.conftest import ADMIN_GROUP
from tests.serve.conftest import ServeEnv, running_serve, usage_of
from tests.support.fake_backend import FakeBackend, heard, speech_audio, speech_seconds, transcription_usage
from tests.support.lisa_payloads import VLLM_MODEL

MAX_AUDIO = 64 * 1024
LIMIT_NAME = "LISA_SERVE_MAX_AUDIO_BYTES"
CLIP = speech_audio("a short clip for the stand-in to hear")


def self_hosted_vllm(env: ServeEnv, name: str, model_type: ModelType) -> dict[str, Any]:
    """The registry's parameters for a self-hosted vLLM model of ``model_type`` at the stand-in."""
    definition = ModelDefinition.model_validate(
        {**VLLM_MODEL, "modelId": name, "modelName": name, "modelType": model_type, "streaming": False}
    )
    return litellm_params(definition, endpoint_url=env.backend_url.removesuffix("/v1"))


@pytest.fixture(scope="module")
def audio(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    """A metered replica whose uploads are limited to ``MAX_AUDIO`` bytes."""
    resources = create_resources("lisa-surface-audio", endpoint_url=moto_url)
    with running_serve(
        moto_url,
        backend,
        resources,
        usage_table=resources.usage_table,
        max_audio_bytes=MAX_AUDIO,
        metrics=True,
        backend_timeout_seconds=5,
    ) as env:
        env.add_tokens({"admin": [ADMIN_GROUP], "alice": ["team-a"], "bob": ["team-b"], "meter": []})
        env.add_model("speaker", model_type=ModelType.TTS)
        env.add_model(
            "listener", model_type=ModelType.STT, params=self_hosted_vllm(env, "listener", ModelType.STT)
        )
        env.add_model("listener-team-a", "listener", groups=["team-a"], model_type=ModelType.STT)
        env.add_model("chat")
        env.add_model("speaker-broken", "fail500", model_type=ModelType.TTS)
        env.add_model("listener-broken", "fail500", model_type=ModelType.STT)
        yield env


def error_of(raised: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = raised.value.body
    assert isinstance(body, dict)
    return body


# ---- speech ---------------------------------------------------------------------------------------
def test_speech_answers_the_backends_audio_with_its_content_type(audio: ServeEnv) -> None:
    text = "LISA speaks through the stand-in backend."
    answer = audio.client("alice").audio.speech.create(
        model="speaker", voice="alloy", input=text, response_format="wav"
    )
    assert answer.response.headers["content-type"] == "audio/wav"
    info = soundfile.info(io.BytesIO(answer.content))
    assert info.format == "WAV" and info.frames / info.samplerate == pytest.approx(speech_seconds(text))

    flac = audio.client().audio.speech.create(
        model="speaker", voice="alloy", input=text, response_format="flac"
    )
    assert flac.response.headers["content-type"] == "audio/flac"
    assert soundfile.info(io.BytesIO(flac.content)).format == "FLAC"


def test_speech_streams_to_a_streaming_client(audio: ServeEnv) -> None:
    client = audio.client()
    with client.audio.speech.with_streaming_response.create(
        model="speaker", voice="alloy", input="streamed", response_format="wav"
    ) as answer:
        data = b"".join(answer.iter_bytes(chunk_size=256))
    assert data == speech_audio("streamed")


def test_speech_is_metered_with_its_input_tokens(audio: ServeEnv) -> None:
    audio.client("meter").audio.speech.create(model="speaker", voice="alloy", input="one two three four")
    counted = usage_of(audio, "meter")["speaker"]
    assert counted["requests"] == 1 and counted["errors"] == 0
    assert counted["promptTokens"] > 0 and counted["completionTokens"] == 0


def test_the_metrics_name_the_route(audio: ServeEnv, capsys: pytest.CaptureFixture[str]) -> None:
    audio.client("meter").audio.speech.create(model="speaker", voice="alloy", input="metrics")
    usage_of(audio, "meter")  # flushes: the EMF documents go to stdout
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"model": "speaker", "route": "audio/speech"}.items() <= next(
        document for document in documents if document.get("model") == "speaker"
    ).items()


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"speed": 10}, "speed", "invalid_value"),
        ({"response_format": "ogg"}, "response_format", "invalid_value"),
        ({"input": "x" * 4097}, "input", "limit_exceeded"),
        ({"input": ""}, "input", "invalid_value"),
        ({"api_base": "http://elsewhere"}, "api_base", "unknown_parameter"),
        ({"mock_response": "fake"}, "mock_response", "unknown_parameter"),
    ],
)
def test_speech_fields_are_checked_and_named(
    audio: ServeEnv, extra: dict[str, Any], param: str, code: str
) -> None:
    before = audio.backend.calls["speaker"]
    body = {"model": "speaker", "voice": "alloy", "input": "hello", **extra}
    answer = httpx.post(f"{audio.base_url}/audio/speech", json=body, headers=audio.headers(), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param and answer.json()["error"]["code"] == code
    assert audio.backend.calls["speaker"] == before


# ---- transcriptions -------------------------------------------------------------------------------
def test_a_transcription_reaches_a_self_hosted_vllm_backend_with_the_upload_intact(audio: ServeEnv) -> None:
    assert audio.services.follower.snapshot is not None
    assert audio.services.follower.snapshot.deployments["listener"]["model"] == "hosted_vllm/listener"
    result = audio.client("alice").audio.transcriptions.create(
        model="listener", file=("clip.wav", CLIP, "audio/wav"), language="en"
    )
    assert result.text == heard("clip.wav", CLIP)
    assert "s" in result.text.rsplit(",", 1)[1]  # the stand-in decoded the audio (its duration)


def test_transcription_formats(audio: ServeEnv) -> None:
    client = audio.client()
    text = client.audio.transcriptions.create(
        model="listener", file=("clip.wav", CLIP, "audio/wav"), response_format="text"
    )
    assert text == heard("clip.wav", CLIP)
    verbose = client.audio.transcriptions.create(
        model="listener",
        file=("clip.wav", CLIP, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["segment"],
        language="fr",
    )
    assert verbose.text == heard("clip.wav", CLIP) and verbose.language == "fr"


def test_a_transcription_is_metered_with_the_backends_usage(audio: ServeEnv) -> None:
    result = audio.client("meter").audio.transcriptions.create(model="listener", file=("clip.wav", CLIP))
    usage = transcription_usage(CLIP, result.text)
    counted = usage_of(audio, "meter")["listener"]
    assert counted["requests"] == 1
    assert (
        counted["promptTokens"] == usage["input_tokens"]
        and counted["completionTokens"] == usage["output_tokens"]
    )


def post_form(env: ServeEnv, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{env.base_url}/audio/transcriptions", headers=env.headers() | (headers or {}), timeout=10, **kwargs
    )


def test_an_upload_over_the_limit_is_413_naming_it_before_the_backend_is_called(audio: ServeEnv) -> None:
    before = audio.backend.calls["listener"]
    big = b"\0" * (MAX_AUDIO + 1)
    with pytest.raises(openai.APIStatusError) as raised:
        audio.client().audio.transcriptions.create(model="listener", file=("big.wav", big))
    assert raised.value.status_code == 413
    assert LIMIT_NAME in raised.value.message and str(MAX_AUDIO) in raised.value.message

    # Without a Content-Length (chunked): counted while it streams into the parser.
    boundary = "lisa-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nlistener\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(MAX_AUDIO // 4096 + 2):
            yield b"\0" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = post_form(
        audio,
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"
    assert LIMIT_NAME in answer.json()["error"]["message"]
    assert audio.backend.calls["listener"] == before


@pytest.mark.parametrize(
    ("data", "files", "param", "code"),
    [
        ({"model": "listener"}, None, "file", "missing_required_parameter"),
        ({}, {"file": ("a.wav", CLIP)}, "model", "missing_required_parameter"),
        (
            {"model": "listener", "temperature": "hot"},
            {"file": ("a.wav", CLIP)},
            "temperature",
            "invalid_type",
        ),
        (
            {"model": "listener", "temperature": "3"},
            {"file": ("a.wav", CLIP)},
            "temperature",
            "invalid_value",
        ),
        (
            {"model": "listener", "response_format": "mp3"},
            {"file": ("a.wav", CLIP)},
            "response_format",
            "invalid_value",
        ),
        (
            {"model": "listener", "api_base": "http://x"},
            {"file": ("a.wav", CLIP)},
            "api_base",
            "unknown_parameter",
        ),
        ({"model": "listener"}, {"audio": ("a.wav", CLIP)}, "audio", "unknown_parameter"),
        ({"model": "listener", "file": "not a file"}, None, "file", "invalid_type"),
        ({}, {"model": ("m.txt", b"listener"), "file": ("a.wav", CLIP)}, "model", "invalid_type"),
        ({"model": "listener"}, {"file": ("empty.wav", b"")}, "file", "invalid_value"),
        ({"model": ""}, {"file": ("a.wav", CLIP)}, "model", "invalid_value"),
        (
            {"model": "listener", "timestamp_granularities[]": "word"},
            {"file": ("a.wav", CLIP)},
            "timestamp_granularities[]",
            "invalid_value",
        ),
    ],
    ids=[
        "no-file",
        "no-model",
        "temperature-text",
        "temperature-range",
        "format",
        "litellm-instruction",
        "unknown-file-field",
        "file-as-text",
        "model-as-file",
        "empty-file",
        "empty-model",
        "granularities-without-verbose-json",
    ],
)
def test_form_fields_are_checked_and_named(
    audio: ServeEnv, data: dict[str, str], files: dict[str, Any] | None, param: str, code: str
) -> None:
    before = audio.backend.calls["listener"]
    if files is None:  # text fields only: as multipart parts (httpx would send them urlencoded)
        answer = post_form(audio, files={name: (None, value) for name, value in data.items()})
    else:
        answer = post_form(audio, data=data, files=files)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param and answer.json()["error"]["code"] == code
    assert audio.backend.calls["listener"] == before


def test_malformed_or_non_multipart_bodies_are_400(audio: ServeEnv) -> None:
    as_json = post_form(audio, json={"model": "listener", "file": "x"})
    assert as_json.status_code == 400 and as_json.json()["error"]["code"] == "invalid_content_type"
    two_files = post_form(
        audio, data={"model": "listener"}, files=[("file", ("a.wav", CLIP)), ("file", ("b.wav", CLIP))]
    )
    assert two_files.status_code == 400 and two_files.json()["error"]["param"] == "file"
    files = [(f"f{index}", (f"{index}.wav", CLIP)) for index in range(3)]
    many_files = post_form(audio, data={"model": "listener"}, files=files)
    assert many_files.status_code == 400 and many_files.json()["error"]["code"] == "invalid_multipart"
    fields = [("model", (None, "listener"))] + [("timestamp_granularities[]", (None, "word"))] * 16
    many_fields = post_form(audio, files=[*fields, ("file", ("a.wav", CLIP))])  # 17 text fields
    assert many_fields.status_code == 400 and many_fields.json()["error"]["code"] == "invalid_multipart"
    unterminated = post_form(
        audio, content=b"--x\r\nnot a part", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert unterminated.status_code == 400, unterminated.text
    no_boundary = post_form(audio, content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400 and no_boundary.json()["error"]["code"] == "invalid_multipart"


def test_the_multipart_content_type_is_matched_whatever_its_case(audio: ServeEnv) -> None:
    built = httpx.Request("POST", audio.url, data={"model": "listener"}, files={"file": ("a.wav", CLIP)})
    content_type = built.headers["content-type"].replace("multipart/form-data", "Multipart/Form-Data")
    answer = post_form(audio, content=built.read(), headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == heard("a.wav", CLIP)


# ---- both ---------------------------------------------------------------------------------------------
def test_model_types_and_routes_are_checked_against_each_other(audio: ServeEnv) -> None:
    client = audio.client()
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="chat", voice="alloy", input="hi")
    assert error_of(raised)["code"] == "model_type_mismatch"
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(model="speaker", file=("clip.wav", CLIP))
    assert error_of(raised)["code"] == "model_type_mismatch" and error_of(raised)["param"] == "model"
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="listener", voice="alloy", input="hi")
    assert error_of(raised)["code"] == "model_type_mismatch"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="speaker", messages=[{"role": "user", "content": "hi"}])
    assert error_of(raised)["code"] == "model_type_mismatch"


def test_a_model_the_caller_may_not_use_is_404(audio: ServeEnv) -> None:
    with pytest.raises(openai.NotFoundError):
        audio.client("bob").audio.transcriptions.create(model="listener-team-a", file=("clip.wav", CLIP))
    result = audio.client("alice").audio.transcriptions.create(
        model="listener-team-a", file=("clip.wav", CLIP)
    )
    assert result.text == heard("clip.wav", CLIP)


def test_a_failing_backend_is_502_in_the_error_shape(audio: ServeEnv) -> None:
    client = audio.client()
    with pytest.raises(openai.APIStatusError) as raised:
        client.audio.speech.create(model="speaker-broken", voice="alloy", input="hi")
    assert raised.value.status_code == 502 and error_of(raised)["code"] == "backend_error"
    with pytest.raises(openai.APIStatusError) as raised:
        client.audio.transcriptions.create(model="listener-broken", file=("clip.wav", CLIP))
    assert raised.value.status_code == 502 and error_of(raised)["type"] == "backend_error"


def test_a_stopped_start_on_request_model_is_started_by_a_transcription(audio: ServeEnv) -> None:
    definition = {**VLLM_MODEL, "modelId": "listener-stopped", "modelType": "stt", "streaming": False}
    record = ModelRecord.model_validate(
        {
            **definition,
            "startOnRequest": True,
            "status": ModelStatus.STOPPED,
            "createdAt": now(),
            "updatedAt": now(),
        }
    )
    audio.registry.create(record)
    audio.wait_for_registry()
    with pytest.raises(openai.APIStatusError) as raised:
        audio.client("alice").audio.transcriptions.create(model="listener-stopped", file=("clip.wav", CLIP))
    assert raised.value.status_code == 503 and error_of(raised)["code"] == "model_starting"
    assert isinstance(audio.registry.get_item("listener-stopped")[START_REQUESTED], int)
