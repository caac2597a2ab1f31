"""``/v2/serve/rerank`` over HTTP (Cohere's shape, as LiteLLM takes it) against the stand-in
backend's rerank routes (``tests/support/fake_backend.py``: not a reranker; a document's score is
the share of the query's words in it, so the order is known).

Two self-hosted kinds, with the parameters the registry gives them (``lisa_domain.litellm_params``):
a vLLM reranker (``hosted_vllm``: ``/v1/rerank``) and a TEI reranker (LiteLLM's Hugging Face
provider: TEI's own ``/rerank``, which ignores ``top_n`` and returns no documents unless asked).
No small reranker ships in a package these machines can install without a download at run time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lisa_domain.litellm_params import litellm_params
from lisa_domain.schema import ModelDefinition, ModelType
from local_mode.resources import create_resources
from serve._litellm import litellm
from serve.errors import ServeError
from serve.media_routes import rerank_results
from tests.conftest import ADMIN_GROUP
from tests.serve.conftest import ServeEnv, running_serve, usage_of
from tests.support.fake_backend import FakeBackend, rerank_score
from tests.support.lisa_payloads import VLLM_MODEL

QUERY = "capital of France"
DOCUMENTS: list[str | dict[str, str]] = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "The Seine flows through Paris.",
    {"text": "France is a country; its capital is Paris."},
]


def text_of(document: str | dict[str, str]) -> str:
    return document if isinstance(document, str) else document["text"]


#: The documents' indexes by score (highest first), as any reranker would order them here.
RANKED = sorted(range(len(DOCUMENTS)), key=lambda index: -rerank_score(QUERY, text_of(DOCUMENTS[index])))


def reranker(env: ServeEnv, name: str, container: str) -> dict[str, Any]:
    """The registry's parameters for a self-hosted reranker on ``container`` at the stand-in."""
    definition = ModelDefinition.model_validate(
        {
            **VLLM_MODEL,
            "modelId": name,
            "modelName": name,
            "modelType": "rerank",
            "inferenceContainer": container,
            "streaming": False,
        }
    )
    return litellm_params(definition, endpoint_url=env.backend_url.removesuffix("/v1"))


@pytest.fixture(scope="module")
def ranking(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    resources = create_resources("lisa-surface-rerank", endpoint_url=moto_url)
    with running_serve(
        moto_url, backend, resources, usage_table=resources.usage_table, backend_timeout_seconds=5
    ) as env:
        env.add_tokens({"admin": [ADMIN_GROUP], "alice": ["team-a"], "bob": ["team-b"], "meter": []})
        env.add_model("vllm-ranker", model_type=ModelType.RERANK, params=reranker(env, "vllm-ranker", "vllm"))
        env.add_model("tei-ranker", model_type=ModelType.RERANK, params=reranker(env, "tei-ranker", "tei"))
        for model_id, name, groups in (
            ("ranker-team-a", "vllm-ranker", ["team-a"]),
            ("ranker-broken", "fail500", []),
        ):
            params = reranker(env, name, "vllm")
            env.add_model(model_id, name, groups=groups, model_type=ModelType.RERANK, params=params)
        env.add_model("chat")
        yield env


def rerank(env: ServeEnv, who: str = "admin", **body: Any) -> httpx.Response:
    return httpx.post(f"{env.base_url}/rerank", json=body, headers=env.headers(who), timeout=10)


@pytest.mark.parametrize("model", ["vllm-ranker", "tei-ranker"])
def test_documents_come_back_by_relevance_at_most_top_n(ranking: ServeEnv, model: str) -> None:
    answer = rerank(ranking, model=model, query=QUERY, documents=DOCUMENTS, top_n=2)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [item["index"] for item in results] == RANKED[:2]
    assert [item["relevance_score"] for item in results] == [
        pytest.approx(rerank_score(QUERY, text_of(DOCUMENTS[index]))) for index in RANKED[:2]
    ]
    assert all("document" not in item for item in results)  # return_documents defaults to false


@pytest.mark.parametrize("model", ["vllm-ranker", "tei-ranker"])
def test_documents_are_returned_when_asked(ranking: ServeEnv, model: str) -> None:
    answer = rerank(ranking, model=model, query=QUERY, documents=DOCUMENTS, return_documents=True)
    results = answer.json()["results"]
    assert len(results) == len(DOCUMENTS)
    assert [item["document"]["text"] for item in results] == [text_of(DOCUMENTS[index]) for index in RANKED]


def test_the_registry_parameters_reach_each_backends_own_rerank_route(ranking: ServeEnv) -> None:
    snapshot = ranking.services.follower.snapshot
    assert snapshot is not None
    assert snapshot.deployments["vllm-ranker"]["model"] == "hosted_vllm/vllm-ranker"
    assert snapshot.deployments["tei-ranker"]["model"] == "huggingface/tei-ranker"
    before = ranking.backend.calls["tei-rerank"]  # the stand-in's TEI route counts under this name
    assert rerank(ranking, model="tei-ranker", query=QUERY, documents=DOCUMENTS).status_code == 200
    assert ranking.backend.calls["tei-rerank"] == before + 1


def test_model_info_names_the_rerank_mode(ranking: ServeEnv) -> None:
    info = httpx.get(f"{ranking.base_url}/model/info", headers=ranking.headers(), timeout=10).json()
    modes = {entry["model_name"]: entry["model_info"]["mode"] for entry in info["data"]}
    assert modes["vllm-ranker"] == "rerank" and modes["chat"] == "chat"


def test_a_rerank_is_metered_with_the_backends_tokens(ranking: ServeEnv) -> None:
    assert rerank(ranking, "meter", model="vllm-ranker", query=QUERY, documents=DOCUMENTS).status_code == 200
    counted = usage_of(ranking, "meter")["vllm-ranker"]
    words = len(QUERY.split()) + sum(len(text_of(document).split()) for document in DOCUMENTS)
    assert counted["requests"] == 1 and counted["promptTokens"] == words


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"query": ""}, "query", "invalid_value"),
        ({"documents": []}, "documents", "invalid_value"),
        ({"documents": ["a", 3]}, "documents[1]", "invalid_type"),
        ({"documents": [{"title": "no text"}]}, "documents[0]", "invalid_type"),
        ({"documents": ["a"] * 1001}, "documents", "limit_exceeded"),
        ({"top_n": 0}, "top_n", "invalid_value"),
        ({"top_n": "two"}, "top_n", "invalid_type"),
        ({"api_base": "http://elsewhere"}, "api_base", "unknown_parameter"),
        ({"rank_fields": ["text"]}, "rank_fields", "unknown_parameter"),
        ({"model": None}, "model", "missing_required_parameter"),
    ],
)
def test_fields_are_checked_and_named(
    ranking: ServeEnv, change: dict[str, Any], param: str, code: str
) -> None:
    before = ranking.backend.calls["vllm-ranker"]
    body = {"model": "vllm-ranker", "query": QUERY, "documents": DOCUMENTS, **change}
    answer = rerank(ranking, **{key: value for key, value in body.items() if value is not None})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param and answer.json()["error"]["code"] == code
    assert ranking.backend.calls["vllm-ranker"] == before


def test_the_model_type_must_be_rerank(ranking: ServeEnv) -> None:
    answer = rerank(ranking, model="chat", query=QUERY, documents=DOCUMENTS)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "model_type_mismatch"
    chat = httpx.post(
        f"{ranking.base_url}/chat/completions",
        json={"model": "vllm-ranker", "messages": [{"role": "user", "content": "hi"}]},
        headers=ranking.headers(),
        timeout=10,
    )
    assert chat.status_code == 400 and chat.json()["error"]["code"] == "model_type_mismatch"


def test_a_model_the_caller_may_not_use_is_404(ranking: ServeEnv) -> None:
    hidden = rerank(ranking, "bob", model="ranker-team-a", query=QUERY, documents=DOCUMENTS)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "model_not_found"
    assert (
        rerank(ranking, "alice", model="ranker-team-a", query=QUERY, documents=DOCUMENTS).status_code == 200
    )


def test_a_failing_backend_is_502_in_the_error_shape(ranking: ServeEnv) -> None:
    answer = rerank(ranking, model="ranker-broken", query=QUERY, documents=DOCUMENTS)
    assert answer.status_code == 502
    assert (
        answer.json()["error"]["type"] == "backend_error"
        and answer.json()["error"]["code"] == "backend_error"
    )


@pytest.mark.parametrize(
    "result",
    [
        {"index": 4, "relevance_score": 0.5},  # one past the last of the 4 documents
        {"index": -1, "relevance_score": 0.5},  # Python would read the last document
        {"index": 0, "relevance_score": float("nan")},  # not JSON
    ],
    ids=["index-past-the-end", "negative-index", "nan-score"],
)
@pytest.mark.parametrize("return_documents", [True, False])
def test_a_backend_result_naming_no_document_is_502(result: dict[str, Any], return_documents: bool) -> None:
    answer = litellm.RerankResponse(id="r", results=[{"index": 1, "relevance_score": 0.9}, result])
    body = {"query": QUERY, "documents": [text_of(document) for document in DOCUMENTS]}
    with pytest.raises(ServeError) as failed:
        rerank_results(answer, body | {"return_documents": return_documents}, "vllm-ranker")
    assert failed.value.status == 502 and failed.value.code == "backend_error"
    assert "vllm-ranker" in failed.value.message and "0-3" in failed.value.message
