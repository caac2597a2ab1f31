"""``/v2/serve/images/generations`` with the official ``openai`` client against the stand-in
backend's ``/v1/images/generations`` (``tests/support/fake_backend.py``: not an image model)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import openai
import pytest

from lisa_domain.schema import ModelType
from tests.serve.conftest import ServeEnv
from tests.support.fake_backend import IMAGE_BYTES


@pytest.fixture(scope="module")
def image_model(serve: ServeEnv) -> Iterator[str]:
    serve.add_model("painter", "painter", model_type=ModelType.IMAGEGEN)
    yield "painter"


def test_images_are_generated_by_an_imagegen_model(serve: ServeEnv, image_model: str) -> None:
    result = serve.client("alice").images.generate(
        model=image_model, prompt="a lighthouse", n=2, size="256x256"
    )
    assert result.data is not None and len(result.data) == 2
    assert base64.b64decode(result.data[0].b64_json or "") == IMAGE_BYTES + b"a lighthouse"


def test_model_types_and_routes_are_checked_against_each_other(serve: ServeEnv, image_model: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        serve.client().images.generate(model="chat-open", prompt="a lighthouse")
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "model_type_mismatch"
    with pytest.raises(openai.BadRequestError) as raised:
        serve.client().chat.completions.create(
            model=image_model, messages=[{"role": "user", "content": "hi"}]
        )
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "model_type_mismatch"


def test_image_requests_are_checked_and_capped(serve: ServeEnv, image_model: str) -> None:
    client = serve.client()
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model=image_model, prompt="x", n=10_000)
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model=image_model, prompt="x", extra_body={"api_base": "http://elsewhere"})
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "api_base"
    with pytest.raises(openai.NotFoundError):
        serve.client("bob").images.generate(model="chat-team-a", prompt="x")
