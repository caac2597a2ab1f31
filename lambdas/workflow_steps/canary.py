"""The canary: one real request to a model before it is registered ``InService``.

The create workflow (after the containers are healthy) and the update workflow when a model ends
running after an infrastructure change (start, autoscaling or container update) send a one-token
completion (textgen) or a one-input embedding (embedding) to the model. A model that answers an
error (``Invalid model name``, a template the server rejects) ends ``Failed`` with the backend's
error as the reason, and the failure path cleans its infrastructure up as for any other failure.

The same path as serving: the request is what the serve app's LiteLLM Router sends for the
model's ``litellmParams`` (``lisa_domain.litellm_params``): for ``hosted_vllm/<name>`` and
``openai/<name>`` a POST to ``<api_base>/chat/completions`` or ``<api_base>/embeddings`` with
``model: <name>`` and ``Authorization: Bearer <api_key>``. LiteLLM itself is not in the Lambda
asset (too big), so the request is sent with urllib (no proxy: the model ALB is internal).

Bounded and retried like the other polls: no connection, a timeout, 429 and 502-504 are retried
(``pollSeconds`` apart, at most ``CANARY_MAX_POLLS`` times); any other error fails at once.
Bedrock and external models are not probed (the step Lambda has no Bedrock access and no
provider keys); the skip is recorded in the model's status history (a pass is visible as the
execution's ``Canary`` step).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from lisa_domain.litellm_params import is_bedrock, litellm_params
from lisa_domain.schema import ModelRecord, ModelType
from workflow_steps.common import StepError, model_in_transit, poll
from workflow_steps.hosting import Progress
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState
from workflow_steps.update import desired_model

#: At most this many canary requests per workflow (fewer when the execution's maxPolls is smaller).
CANARY_MAX_POLLS = 10
REQUEST_TIMEOUT_SECONDS = 30.0
#: Answers that mean "not ready yet" (the load balancer has no healthy target, the server is busy).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: The LiteLLM providers whose requests are plain OpenAI-compatible HTTP (self-hosted kinds).
OPENAI_COMPATIBLE_PREFIXES = ("hosted_vllm/", "openai/")
#: How much of the backend's error goes into the model's statusReason.
REASON_CHARS = 300
CANARY_PROMPT = "Reply with OK."
CANARY_INPUT = "LISA canary"


class CanaryFailed(StepError):
    """The model answered the canary request with an error (the message carries the backend's)."""


@dataclass(frozen=True)
class CanaryRequest:
    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    #: For messages: "a one-token completion" or "a one-input embedding".
    what: str


def skip_reason(model: ModelRecord) -> str | None:
    """Why the canary does not probe ``model``, or None when it does."""
    if is_bedrock(model):
        return "Bedrock models are not probed (the workflow Lambda has no Bedrock access)"
    if not model.self_hosted:
        return "external models are not probed (the workflow Lambda holds no provider keys)"
    if model.modelType not in (ModelType.TEXTGEN, ModelType.EMBEDDING):
        return f"{model.modelType.value} models are not probed (textgen and embedding are)"
    return None


def canary_request(model: ModelRecord, params: dict[str, Any]) -> CanaryRequest:
    """The request LiteLLM's Router would send for ``params`` (an OpenAI-compatible deployment)."""
    provider_model = str(params["model"])
    prefix = next((p for p in OPENAI_COMPATIBLE_PREFIXES if provider_model.startswith(p)), None)
    if prefix is None:
        raise CanaryFailed(f"the canary cannot call LiteLLM model '{provider_model}' over HTTP")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {params['api_key']}"}
    name = provider_model.removeprefix(prefix)
    base = str(params["api_base"]).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CanaryFailed(f"the model's endpoint {base!r} is not an http(s) URL")
    if model.modelType == ModelType.EMBEDDING:
        body: dict[str, Any] = {"model": name, "input": [CANARY_INPUT]}
        return CanaryRequest(f"{base}/embeddings", body, headers, "a one-input embedding")
    body = {"model": name, "messages": [{"role": "user", "content": CANARY_PROMPT}], "max_tokens": 1}
    return CanaryRequest(f"{base}/chat/completions", body, headers, "a one-token completion")


def backend_message(raw: bytes) -> str:
    """The error text of an OpenAI-style (``error.message``), vLLM (``message``) or FastAPI
    (``detail``) error body, else the body itself; shortened for a statusReason."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        found = error.get("message") if isinstance(error, dict) else error
        found = found or body.get("message") or body.get("detail")
        if found:
            text = found if isinstance(found, str) else json.dumps(found)
    return text[:REASON_CHARS] or "(empty body)"


def answer_problem(model_type: ModelType, answer: Any) -> str | None:
    """What is wrong with a 2xx answer, or None when it is a usable completion/embedding."""
    if model_type == ModelType.EMBEDDING:
        data = answer.get("data") if isinstance(answer, dict) else None
        vector = (
            data[0].get("embedding")
            if isinstance(data, list) and data and isinstance(data[0], dict)
            else None
        )
        return (
            None if isinstance(vector, list) and vector else "the answer has no embedding (data[0].embedding)"
        )
    choices = answer.get("choices") if isinstance(answer, dict) else None
    return None if isinstance(choices, list) and choices else "the answer has no choices"


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def send(request: CanaryRequest, model_type: ModelType, timeout: float = REQUEST_TIMEOUT_SECONDS) -> Progress:
    """Send the canary once: done when the model answered, not done when it is not reachable yet
    (retried); CanaryFailed when it answered with an error."""
    http = urllib.request.Request(  # noqa: S310 (http(s) only: canary_request checks the scheme)
        request.url, data=json.dumps(request.body).encode(), headers=request.headers, method="POST"
    )
    started = time.monotonic()
    try:
        with _opener.open(http, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        message = backend_message(error.read())
        if error.code in RETRY_STATUSES:
            return Progress(False, f"HTTP {error.code}: {message}")
        raise CanaryFailed(f"the model answered {request.what} with HTTP {error.code}: {message}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Progress(False, f"no answer from {request.url}: {reason}")
    try:
        answer = json.loads(raw)
    except ValueError:
        raise CanaryFailed(
            f"the model answered {request.what} with a body that is not JSON: {backend_message(raw)}"
        ) from None
    problem = answer_problem(model_type, answer)
    if problem:
        raise CanaryFailed(f"the model answered {request.what}, but {problem}")
    return Progress(True, f"{request.what} answered in {time.monotonic() - started:.1f} s")


def record(services: Services, state: ExecutionState, note: str) -> None:
    """Add ``note`` to the model's status history (a transition to the status it is in)."""
    transient = state.transient_status()
    services.registry.transition(state.modelId, allowed_from=[transient], to=transient, reason=note)


def canary(services: Services, state: ExecutionState) -> ExecutionState:
    """The ``Canary`` step: one probe per call; ``state.done`` says whether to register now."""
    record_now = model_in_transit(services, state)
    model = desired_model(record_now, state) if state.operation == "update" else record_now
    if not model.enabled:  # a stop: nothing to ask
        state.done = True
        return state
    skipped = skip_reason(model)
    if skipped:
        record(services, state, f"canary skipped: {skipped}")
        state.done = True
        return state
    params = litellm_params(model, endpoint_url=services.hosting.endpoint_url(model))
    request = canary_request(model, params)
    return poll(
        state,
        "canary",
        f"the canary ({request.what})",
        lambda: send(request, model.modelType),
        limit=CANARY_MAX_POLLS,
    )
