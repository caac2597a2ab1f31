"""``LisaClient``: one typed method per admin-API route, plus ``wait_for`` and ``serve_client``.

Requests and answers are the schema module's pydantic models (``lisa_domain.schema``; API tokens:
``admin_api.tokens``; schedules: ``lisa_domain.schedule`` and ``scheduler.schedules``; usage: the
schema module too). An error answer raises the typed exception of ``lisa_client.errors`` with the
API's message and the field it names. Listings follow ``nextToken`` to the end.

Retries (full-jitter exponential backoff, ``Retry-After`` honoured): reads and other idempotent
calls (schedule writes included: setting the same schedule twice is harmless) are retried on 429,
5xx and connection errors; calls that start a workflow (create, update,
start, stop, delete) only on 429 and 503, the answers with which the API guarantees that nothing
was changed, so a retry can never start a second workflow.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from scheduler.schedules import (
    DeleteScheduleResponse,
    GetScheduleResponse,
    GetScheduleStatusResponse,
    UpdateScheduleResponse,
)

from admin_api.tokens import CreatedTokenResponse, CreateTokenRequest, TokenResponse
from lisa_client.errors import NotFound, WaitTimeout, WorkflowFailed, api_error
from lisa_domain.schedule import DailySchedulingConfig, RecurringSchedulingConfig
from lisa_domain.schema import (
    TRANSIENT_STATES,
    CreateModelRequest,
    ModelRecord,
    ModelStatus,
    ModelSummary,
    MyUsageResponse,
    UpdateModelRequest,
    UsageResponse,
)

if TYPE_CHECKING:
    import openai

#: Called on every poll of a wait: (model id, the model or None once it is gone, seconds elapsed).
ProgressCallback = Callable[[str, "ModelRecord | ModelSummary | None", float], None]

#: Status codes after which a non-idempotent call is safe to repeat (the API wrote nothing).
_SAFE_TO_REPEAT = frozenset({429, 503})
DEFAULT_WAIT_TIMEOUT = 1800.0


def parse_model(data: dict[str, Any]) -> ModelRecord | ModelSummary:
    """An administrator's full record, or the summary every other caller gets (it has no
    ``allowedGroups``; validating it as a record would invent defaults)."""
    return ModelRecord.model_validate(data) if "allowedGroups" in data else ModelSummary.model_validate(data)


class LisaClient:
    """A client of one deployment's admin API (and, with ``serve_url``, its serve API)."""

    def __init__(
        self,
        admin_url: str,
        token: str,
        *,
        serve_url: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        backoff_cap: float = 8.0,
        page_size: int = 100,  # the largest page both listings allow (MAX_LIMIT)
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        """``on_warning`` gets each of the ``warnings`` a create, update or delete answers (a fallback
        not open to every caller of the model, a model others fall back to deleted, ...)."""
        self.admin_url = admin_url.rstrip("/")
        self.serve_url = serve_url.rstrip("/") if serve_url else None
        self._token = token
        self._retries = retries
        self._backoff = backoff
        self._backoff_cap = backoff_cap
        self._page_size = page_size
        self._sleep = sleep
        self._on_warning = on_warning
        self._http = httpx.Client(
            base_url=self.admin_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LisaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- transport ------------------------------------------------------------------------------
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self._backoff_cap)
        return random.uniform(0, min(self._backoff_cap, self._backoff * 2**attempt))  # noqa: S311

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool,
    ) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, params=params, json=body)
            except httpx.TransportError:
                # A connection error after the request was sent may have started a workflow.
                if not idempotent or attempt >= self._retries:
                    raise
                self._sleep(self._delay(attempt, None))
                attempt += 1
                continue
            status = response.status_code
            retryable = status in _SAFE_TO_REPEAT or (idempotent and status >= 500)
            if retryable and attempt < self._retries:
                self._sleep(self._delay(attempt, response))
                attempt += 1
                continue
            try:
                data = response.json() if response.content else None
            except ValueError:
                data = response.text
            if status >= 400:
                raise api_error(status, data)
            return data

    def _pages(self, path: str, key: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        next_token: str | None = None
        while True:
            query = {**params, "limit": self._page_size} | ({"nextToken": next_token} if next_token else {})
            page = self._request("GET", path, params=query, idempotent=True)
            yield from page.get(key, [])
            next_token = page.get("nextToken")
            if not next_token:
                return

    # ---- models ---------------------------------------------------------------------------------
    def iter_models(self) -> Iterator[ModelRecord | ModelSummary]:
        """Every model the caller may see, page by page."""
        for item in self._pages("/models", "models", {}):
            yield parse_model(item)

    def list_models(self) -> list[ModelRecord | ModelSummary]:
        return list(self.iter_models())

    def get_model(self, model_id: str) -> ModelRecord | ModelSummary:
        return parse_model(self._request("GET", f"/models/{model_id}", idempotent=True)["model"])

    def create_model(self, request: CreateModelRequest) -> ModelRecord:
        """Register a model (self-hosted ones start the create workflow); the model, in Creating."""
        body = request.model_dump(mode="json", exclude_none=True)
        return self._changed(self._request("POST", "/models", body=body, idempotent=False))

    def update_model(self, model_id: str, request: UpdateModelRequest) -> ModelRecord:
        """Start the update workflow; the model, in Updating, Stopping or Starting."""
        body = request.changes()
        return self._changed(self._request("PUT", f"/models/{model_id}", body=body, idempotent=False))

    def start_model(self, model_id: str) -> ModelRecord:
        return self.update_model(model_id, UpdateModelRequest(enabled=True))

    def stop_model(self, model_id: str) -> ModelRecord:
        return self.update_model(model_id, UpdateModelRequest(enabled=False))

    def delete_model(self, model_id: str) -> ModelRecord:
        """Start the delete workflow; the model, in Deleting."""
        return self._changed(self._request("DELETE", f"/models/{model_id}", idempotent=False))

    def set_context_window(self, model_id: str, context_window: int) -> ModelRecord:
        body = {"contextWindow": context_window}
        return self._record(
            self._request("PUT", f"/models/{model_id}/context-window", body=body, idempotent=True)
        )

    def list_instance_types(self) -> list[str]:
        return [str(name) for name in self._request("GET", "/models/metadata/instances", idempotent=True)]

    @staticmethod
    def _record(answer: dict[str, Any]) -> ModelRecord:
        return ModelRecord.model_validate(answer["model"])

    def _changed(self, answer: dict[str, Any]) -> ModelRecord:
        """A create, update or delete answer's model; its ``warnings`` go to ``on_warning``."""
        if self._on_warning is not None:
            for warning in answer.get("warnings") or []:
                self._on_warning(f"{warning['model']} {warning['field']}: {warning['message']}")
        return self._record(answer)

    # ---- schedules ------------------------------------------------------------------------------
    def get_schedule(self, model_id: str) -> GetScheduleResponse:
        """The model's schedule (``scheduling`` is {} when none is set) and its next action."""
        return GetScheduleResponse.model_validate(
            self._request("GET", f"/models/{model_id}/schedule", idempotent=True)
        )

    def get_schedule_status(self, model_id: str) -> GetScheduleStatusResponse:
        return GetScheduleStatusResponse.model_validate(
            self._request("GET", f"/models/{model_id}/schedule/status", idempotent=True)
        )

    def set_schedule(
        self, model_id: str, schedule: DailySchedulingConfig | RecurringSchedulingConfig
    ) -> UpdateScheduleResponse:
        """Create or replace the schedule (a self-hosted model, InService or Stopped)."""
        body = schedule.model_dump(mode="json")
        return UpdateScheduleResponse.model_validate(
            self._request("PUT", f"/models/{model_id}/schedule", body=body, idempotent=True)
        )

    def delete_schedule(self, model_id: str) -> DeleteScheduleResponse:
        """Remove the schedule; the model stays as it is (deleting no schedule is no error)."""
        return DeleteScheduleResponse.model_validate(
            self._request("DELETE", f"/models/{model_id}/schedule", idempotent=True)
        )

    # ---- usage ----------------------------------------------------------------------------------
    def usage(
        self, start: str | None = None, end: str | None = None, group_by: str = "user"
    ) -> UsageResponse:
        """Administrators: totals per ``user``, ``model`` or ``group`` between the days ``start`` and
        ``end`` (YYYY-MM-DD, UTC; default: this month), every page in one answer."""
        params = {"groupBy": group_by} | {
            name: value for name, value in (("from", start), ("to", end)) if value is not None
        }
        first = UsageResponse.model_validate(self._request("GET", "/usage", params=params, idempotent=True))
        rows = list(first.usage)
        next_token = first.nextToken
        while next_token:
            page = UsageResponse.model_validate(
                self._request("GET", "/usage", params=params | {"nextToken": next_token}, idempotent=True)
            )
            rows.extend(page.usage)
            next_token = page.nextToken
        return first.model_copy(update={"usage": rows, "nextToken": None})

    def my_usage(self, start: str | None = None, end: str | None = None) -> MyUsageResponse:
        """The caller's own usage per day and model, with totals."""
        params = {name: value for name, value in (("from", start), ("to", end)) if value is not None}
        return MyUsageResponse.model_validate(
            self._request("GET", "/usage/me", params=params, idempotent=True)
        )

    # ---- waiting --------------------------------------------------------------------------------
    def _settle(
        self, model_id: str, timeout: float, poll: float, on_progress: ProgressCallback | None
    ) -> ModelRecord | ModelSummary | None:
        """Poll until the model is in no transient status (or gone: None)."""
        started = time.monotonic()
        while True:
            try:
                model: ModelRecord | ModelSummary | None = self.get_model(model_id)
            except NotFound:
                model = None
            elapsed = time.monotonic() - started
            if on_progress is not None:
                on_progress(model_id, model, elapsed)
            if model is None or model.status not in TRANSIENT_STATES:
                return model
            if elapsed >= timeout:
                raise WaitTimeout(model_id, model.status.value, timeout)
            self._sleep(poll)

    def wait_for(
        self,
        model_id: str,
        status: ModelStatus,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        *,
        poll: float = 1.0,
        on_progress: ProgressCallback | None = None,
    ) -> ModelRecord | ModelSummary:
        """Follow the model's workflow to its end and return the model once it is in ``status``.

        WorkflowFailed when it settles anywhere else, ``Failed`` included, or in ``status`` with a
        ``statusReason`` (a failed metadata-only update puts the model back where it was, with the
        reason; a successful transition clears it). NotFound when the model disappears.
        """
        model = self._settle(model_id, timeout, poll, on_progress)
        if model is None:
            raise NotFound(404, f"model '{model_id}' no longer exists", None)
        reason = model.statusReason if isinstance(model, ModelRecord) else None
        if model.status != status or reason:
            raise WorkflowFailed(model, status.value)
        return model

    def wait_deleted(
        self,
        model_id: str,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        *,
        poll: float = 1.0,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Follow the delete workflow until the model is gone (WorkflowFailed if it settles instead)."""
        model = self._settle(model_id, timeout, poll, on_progress)
        if model is not None:
            raise WorkflowFailed(model, "deleted")

    # ---- API tokens -----------------------------------------------------------------------------
    def create_token(self, request: CreateTokenRequest) -> CreatedTokenResponse:
        """A new token; its value is in this answer only."""
        body = request.model_dump(mode="json", exclude_none=True)
        return CreatedTokenResponse.model_validate(
            self._request("POST", "/api-tokens", body=body, idempotent=False)
        )

    def list_tokens(self, username: str | None = None) -> list[TokenResponse]:
        params = {"username": username} if username else {}
        return [TokenResponse.model_validate(item) for item in self._pages("/api-tokens", "tokens", params)]

    def get_token(self, token_id: str) -> TokenResponse:
        return TokenResponse.model_validate(self._request("GET", f"/api-tokens/{token_id}", idempotent=True))

    def revoke_token(self, token_id: str) -> TokenResponse:
        return TokenResponse.model_validate(
            self._request("DELETE", f"/api-tokens/{token_id}", idempotent=False)
        )

    # ---- serve API ------------------------------------------------------------------------------
    def serve_client(self) -> openai.OpenAI:
        """The official OpenAI client for the serve API, with this client's credentials."""
        import openai

        if not self.serve_url:
            raise ValueError("serve_url: not configured (pass serve_url= or use local mode)")
        return openai.OpenAI(base_url=self.serve_url, api_key=self._token)
