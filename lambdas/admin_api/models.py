"""Model management logic: the rules and state transitions behind the admin API's model routes.

No API Gateway event reaches this module: the handler passes the caller (a ``Principal``) and the
validated request. Every rejection happens before anything is written or started; every write is
a conditional registry write (decision 7 in docs/architecture.md); secrets go to Secrets Manager only and never into
a record, a workflow input, a response or a log (decision 8).

Workflow inputs (besides ``modelId``, ``operation``, ``pollSeconds``, ``maxPolls`` that
``WorkflowStarter`` always adds):

* create: ``{"selfHosted": bool}``
* update: ``{"action": "update" | "stop" | "start", "previousStatus": <status>, "changes": {...}}``
  where ``changes`` is ``UpdateModelRequest.changes()`` (the fields the caller set, camelCase)
* delete: ``{"previousStatus": <status>}``

Callers who are not administrators see a model as a ``ModelSummary`` (``model_view``);
administrators reading one model also get its ``statusHistory`` (``ModelDetail``). A create or
update answers a ``ModelChange``: the model and, when its ``fallbacks`` are not open to every caller
of the model, ``warnings`` (``admin_api.fallbacks``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, ValidationError

from admin_api.fallbacks import (
    FallbackWarning,
    check_fallbacks,
    dependent_warnings,
    stored_fallbacks,
    visibility_warnings,
)
from admin_api.model_url import ModelUrlPolicy
from lisa_domain.auth import Principal
from lisa_domain.capacity import SubnetCapacity
from lisa_domain.context_window import context_window_of
from lisa_domain.errors import Conflict, DependencyFailed, Forbidden, NotFound, ValidationFailed
from lisa_domain.lifecycle import TRANSITIONS, Action, Transition, update_action
from lisa_domain.registry import ModelRegistry, Page, StatusChange, now
from lisa_domain.schema import (
    MARKED_FOR_DELETION,
    NON_STREAMING_TYPES,
    ContainerConfig,
    ContainerConfigUpdate,
    CreateModelRequest,
    ModelRecord,
    ModelStatus,
    ModelSummary,
    UpdateModelRequest,
    check_capacities,
    merge_container_config,
    secret_name_of,
)
from lisa_domain.secrets import ModelSecrets
from lisa_domain.workflows import Workflow, WorkflowStarter

logger = Logger(child=True)

MAX_LIMIT = 100

#: AWS errors that mean "a secret with this name exists (or is scheduled for deletion)".
_SECRET_EXISTS = frozenset({"ResourceExistsException", "InvalidRequestException"})


def _require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"only administrators may {action}")


def model_view(principal: Principal, record: ModelRecord) -> dict[str, Any]:
    """The model as the caller may see it: the full record for admins, the summary for others."""
    shown = record if principal.is_admin else ModelSummary.of(record)
    return shown.model_dump(mode="json")


class ModelDetail(ModelRecord):
    """The administrators' view of one model: its record and every status it went through."""

    statusHistory: list[StatusChange] = Field(
        description="Every status the model entered, oldest first, with the reason and when (Unix seconds)."
    )


class ModelDetailResponse(BaseModel):
    model: ModelDetail | ModelSummary = Field(
        description="For administrators the full record with its status history, the summary for everyone else."
    )


_WARNINGS_DESCRIPTION = (
    "Present when some of the model's fallbacks are not open to every group the model is open to "
    "(those callers are never sent to them) or a stored fallback no longer exists, or when the change "
    "(a delete, new allowedGroups, a create under an id that other models' fallbacks kept) takes this "
    "model away from callers of models that name it as a fallback, or gives them one of another "
    "modelType; the request was applied all the same."
)


class ModelChangeResponse(BaseModel):
    """``POST``, ``PUT`` and ``DELETE /models...``: the model, and what the admin should know."""

    model: ModelRecord
    warnings: list[FallbackWarning] | None = Field(default=None, description=_WARNINGS_DESCRIPTION)


@dataclass(frozen=True)
class ModelChange:
    """A create, update or delete that was started, and its ``warnings`` (``admin_api.fallbacks``)."""

    record: ModelRecord
    warnings: list[FallbackWarning] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The answer's body (``ModelChangeResponse``); ``warnings`` only when there are some."""
        body: dict[str, Any] = {"model": self.record.model_dump(mode="json")}
        if self.warnings:
            body["warnings"] = [warning.model_dump() for warning in self.warnings]
        return body


class DryRunResponse(BaseModel):
    """``?dryRun=true``: what the request would do; nothing was written or started."""

    dryRun: bool = Field(description="Always true: nothing was written or started.")
    model: ModelRecord = Field(description="The model as the request would leave it.")
    warnings: list[FallbackWarning] | None = Field(default=None, description=_WARNINGS_DESCRIPTION)
    wouldCreate: dict[str, Any] | None = Field(
        default=None, description="POST: the record, secret, workflow and infrastructure it would create."
    )
    wouldUpdate: dict[str, Any] | None = Field(
        default=None, description="PUT: the change it would make and the workflow it would start."
    )


def narrowed_groups(current: list[str], requested: list[str]) -> list[str] | None:
    """The ``allowedGroups`` to apply at once when ``requested`` takes access away from someone
    (None when it only adds). An empty list means everyone, so a narrowing never yields one: the
    groups in both lists, or the requested ones when the lists share none."""
    if not requested:
        return None  # open to everyone: an addition, applied when the workflow finishes
    if current and set(current) <= set(requested):
        return None
    common = [group for group in current if group in requested]
    return common or list(requested)


def _with_warnings(plan: dict[str, Any], warnings: list[FallbackWarning]) -> dict[str, Any]:
    """A dry run's answer, with the ``warnings`` the request would get (only when there are some)."""
    if warnings:
        plan["warnings"] = [warning.model_dump() for warning in warnings]
    return plan


def _first_message(error: ValidationError) -> str:
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ")


@dataclass(frozen=True)
class ModelService:
    """The model routes' logic over the registry, the model secrets and the workflow starter."""

    registry: ModelRegistry
    secrets: ModelSecrets
    workflows: WorkflowStarter
    url_policy: ModelUrlPolicy = field(default_factory=ModelUrlPolicy)
    #: Instance type offerings and vCPU quota in the model subnets (None: not checked, local mode).
    capacity: SubnetCapacity | None = None

    # ---- create ------------------------------------------------------------------------------
    def create(self, principal: Principal, request: CreateModelRequest) -> ModelChange:
        """Register a model (status ``Creating``) and start the create workflow.

        Order: secret (if any) → record (conditional) → workflow. A failure at any step undoes the
        earlier ones, so a failed request leaves nothing behind.
        """
        warnings = self._check_create(principal, request)
        model_id = request.modelId
        secret_arn = self._store_secret(model_id, request.apiKey) if request.apiKey is not None else None
        record = self._new_record(request, secret_arn)
        try:
            self.registry.create(record)
        except Exception as error:
            if secret_arn is not None:
                self._delete_secret_quietly(secret_arn, model_id)
            if isinstance(error, ClientError | BotoCoreError):
                raise DependencyFailed(f"could not store model '{model_id}'; nothing was created") from error
            raise

        try:
            self.workflows.start(Workflow.CREATE, model_id, selfHosted=record.self_hosted)
        except Exception as error:
            logger.exception("starting the create workflow failed", extra={"model_id": model_id})
            self._undo_create(model_id, secret_arn)
            raise DependencyFailed(
                f"could not start the create workflow for model '{model_id}'; "
                "nothing was created, try again later"
            ) from error
        logger.info("model creation started", extra={"model_id": model_id})
        return ModelChange(record, warnings)

    def plan_create(self, principal: Principal, request: CreateModelRequest) -> dict[str, Any]:
        """``POST /models?dryRun=true``: every check ``create`` makes; nothing written or started."""
        warnings = self._check_create(principal, request)
        record = self._new_record(request, None)
        return _with_warnings(
            {
                "dryRun": True,
                "model": record.model_dump(mode="json"),
                "wouldCreate": {
                    "record": f"model '{record.modelId}' in {record.status.value}",
                    "secret": request.apiKey is not None,
                    "workflow": Workflow.CREATE.value,
                    "infrastructure": record.self_hosted,
                },
            },
            warnings,
        )

    def _check_create(self, principal: Principal, request: CreateModelRequest) -> list[FallbackWarning]:
        """Everything a create is refused for, before anything is written; the warnings it gets."""
        _require_admin(principal, "create models")
        if request.modelUrl and not request.self_hosted:
            self.url_policy.check(request.modelUrl)
        if request.containerConfig is not None:
            self._check_secret_arns(request.containerConfig.secrets, "containerConfig.secrets")
        # Fast, non-authoritative check (the conditional write is the real one): answers 409
        # before touching Secrets Manager for the common case of a duplicate id.
        if self._exists(request.modelId):
            raise Conflict(f"model '{request.modelId}' already exists")
        if request.self_hosted and request.instanceType and request.autoScalingConfig:
            self._check_capacity(request.instanceType, request.autoScalingConfig.maxCapacity)
        fallbacks = check_fallbacks(self.registry, request.modelId, request.modelType, request.fallbacks)
        warnings = visibility_warnings(request.modelId, request.allowedGroups, fallbacks)
        return warnings + dependent_warnings(self.registry, request.modelId, request)

    def _check_capacity(
        self, instance_type: str, max_capacity: int, capacity_field: str = "autoScalingConfig.maxCapacity"
    ) -> None:
        """The instance type is offered in the model subnets' zones and the vCPU quota holds the
        autoscaling maximum (``lisa_domain.capacity``); skipped without model subnets (local mode)."""
        if self.capacity is None:
            return
        try:
            findings = self.capacity.check(instance_type, max_capacity, capacity_field)
        except (ClientError, BotoCoreError) as error:
            raise DependencyFailed(f"could not check the capacity for {instance_type}: {error}") from error
        blocking = [finding for finding in findings if finding.blocking]
        if blocking:
            raise ValidationFailed("; ".join(str(finding) for finding in blocking))

    def _new_record(self, request: CreateModelRequest, secret_arn: str | None) -> ModelRecord:
        timestamp = now()
        return ModelRecord.model_validate(
            {
                **request.definition().model_dump(),
                "contextWindow": request.contextWindow or context_window_of(request),
                "status": TRANSITIONS[Action.CREATE].transient,
                "createdAt": timestamp,
                "updatedAt": timestamp,
                "apiKeySecretArn": secret_arn,
            }
        )

    def _check_secret_arns(self, secrets: dict[str, str], where: str) -> None:
        """Container secrets must live under the model secret prefix (the task execution role may
        read only there), in a sub-path: a name ``<prefix><model id>`` is a model's API-key secret,
        which the delete workflow removes."""
        prefix = self.secrets.prefix
        for name, arn in secrets.items():
            secret_name = secret_name_of(arn)
            if not secret_name.startswith(prefix) or "/" not in secret_name[len(prefix) :].strip("/"):
                raise ValidationFailed(
                    f"{where}.{name}: the secret's name must start with '{prefix}' followed by a "
                    f"path with '/' (for example '{prefix}shared/hf-token')"
                )

    def _exists(self, model_id: str) -> bool:
        try:
            self.registry.get_item(model_id)
        except NotFound:
            return False
        return True

    def _store_secret(self, model_id: str, api_key: str) -> str:
        try:
            return self.secrets.store(model_id, api_key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _SECRET_EXISTS:
                # Another create of the same id won the race (or an old secret is still being
                # deleted): the secret is not ours, so leave it alone.
                raise Conflict(
                    f"model '{model_id}' already exists or is still being deleted; try again later"
                ) from error
            raise DependencyFailed(f"could not store the API key of model '{model_id}'") from error
        except BotoCoreError as error:
            raise DependencyFailed(f"could not store the API key of model '{model_id}'") from error

    def _undo_create(self, model_id: str, secret_arn: str | None) -> None:
        try:
            self.registry.delete(model_id, allowed_from=[TRANSITIONS[Action.CREATE].transient])
        except Exception:
            logger.exception("cleanup: deleting the model record failed", extra={"model_id": model_id})
        if secret_arn is not None:
            self._delete_secret_quietly(secret_arn, model_id)

    def _delete_secret_quietly(self, secret_arn: str, model_id: str) -> None:
        try:
            self.secrets.delete(secret_arn)
        except Exception:
            logger.exception(
                "cleanup: deleting the model's API key secret failed", extra={"model_id": model_id}
            )

    # ---- read --------------------------------------------------------------------------------
    def list_models(
        self, principal: Principal, limit: int | None = None, next_token: str | None = None
    ) -> Page:
        """One page of the models the caller may see; ``next_token`` is absent on the last page.

        Without a ``limit``, every model the caller may see (from ``next_token`` on) in one page, as
        LISA lists them (its clients do not paginate)."""
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit: must be between 1 and {MAX_LIMIT}")
        visible = None if principal.is_admin else (lambda record: principal.can_use(record.allowedGroups))
        if limit is not None:
            return self.registry.list_visible(limit, next_token, visible)
        models: list[ModelRecord] = []
        skipped = 0
        while True:
            page = self.registry.list_visible(MAX_LIMIT, next_token, visible)
            models.extend(page.models)
            skipped += page.skipped
            next_token = page.next_token
            if next_token is None:
                return Page(models, None, skipped)

    def get(self, principal: Principal, model_id: str) -> ModelRecord:
        """One model; a model the caller may not see is reported as not found (no existence leak).

        Show it with ``model_view`` (non-admins see the summary only)."""
        record = self.registry.get(model_id)
        if not principal.can_use(record.allowedGroups):
            raise NotFound(f"model '{model_id}' not found")
        return record

    def detail(self, principal: Principal, model_id: str) -> dict[str, Any]:
        """One model as the caller may see it; administrators also get its ``statusHistory``
        (the list answers leave it out to stay small)."""
        if not principal.is_admin:
            return model_view(principal, self.get(principal, model_id))
        stored = self.registry.stored(model_id)
        return ModelDetail(**stored.record.model_dump(), statusHistory=stored.history).model_dump(mode="json")

    # ---- update ------------------------------------------------------------------------------
    def update(
        self, principal: Principal, model_id: str, request: UpdateModelRequest, *, reason: str | None = None
    ) -> ModelChange:
        """Move the model to Updating, Stopping (``enabled: false``) or Starting (``enabled: true``)
        and start the update workflow with the requested changes. ``reason`` goes into the status
        history with the move (cost control says why it stopped or started a model).

        An ``allowedGroups`` change that takes access away is written in the same conditional write
        as ``Updating`` (``narrowed_groups``), so the serve app applies it at once; additions wait
        for the workflow."""
        _require_admin(principal, "update models")
        record = self.registry.get(model_id)
        warnings = self._check_update(record, request)
        action = update_action(request.enabled)
        at_once: dict[str, Any] = {}
        if request.allowedGroups is not None:
            narrowed = narrowed_groups(record.allowedGroups, request.allowedGroups)
            if narrowed is not None:
                at_once["allowedGroups"] = narrowed
        updated = self._begin(record, action, reason=reason, changes=at_once or None)
        details: dict[str, Any] = {
            "action": action.value,
            "previousStatus": record.status.value,
            "changes": request.changes(),
        }
        self._start_or_revert(
            Workflow.UPDATE,
            record,
            action,
            details,
            restore={field: getattr(record, field) for field in at_once},
        )
        logger.info("model update started", extra={"model_id": model_id, "action": action.value})
        return ModelChange(updated, warnings)

    def plan_update(self, principal: Principal, model_id: str, request: UpdateModelRequest) -> dict[str, Any]:
        """``PUT /models/{id}?dryRun=true``: every check ``update`` makes; nothing written or started."""
        _require_admin(principal, "update models")
        record = self.registry.get(model_id)
        warnings = self._check_update(record, request)
        action = update_action(request.enabled)
        transition = self._transition_from(record, action)
        return _with_warnings(
            {
                "dryRun": True,
                "model": record.model_dump(mode="json"),
                "wouldUpdate": {
                    "action": action.value,
                    "status": transition.transient.value,
                    "changes": request.changes(),
                    "workflow": Workflow.UPDATE.value,
                },
            },
            warnings,
        )

    def _check_update(self, record: ModelRecord, request: UpdateModelRequest) -> list[FallbackWarning]:
        """Rules that need the stored model (the schema checked everything else); the warnings the
        update gets."""
        if not record.self_hosted:
            for name in ("autoScalingInstanceConfig", "containerConfig", "idleStopMinutes", "startOnRequest"):
                if getattr(request, name):
                    raise ValidationFailed(
                        f"{name}: model '{record.modelId}' is not self-hosted, so it has no {name}"
                    )
        if request.containerConfig is not None and record.containerConfig is not None:
            self._check_container_update(record.containerConfig, request.containerConfig)
        if request.streaming and record.modelType in NON_STREAMING_TYPES:
            raise ValidationFailed(f"streaming: {record.modelType.value} models cannot stream")
        scaling, current = request.autoScalingInstanceConfig, record.autoScalingConfig
        if scaling is not None and current is not None:
            minimum = scaling.minCapacity if scaling.minCapacity is not None else current.minCapacity
            maximum = scaling.maxCapacity if scaling.maxCapacity is not None else current.maxCapacity
            desired = (
                scaling.desiredCapacity if scaling.desiredCapacity is not None else current.desiredCapacity
            )
            try:
                check_capacities(minimum, desired, maximum)
            except ValueError as error:
                raise ValidationFailed(
                    f"autoScalingInstanceConfig: {error} (combined with the model's current settings)"
                ) from error
        if record.self_hosted and record.instanceType and current is not None:
            maximum = (
                scaling.maxCapacity if scaling and scaling.maxCapacity is not None else current.maxCapacity
            )
            if request.enabled and not record.enabled:  # a start: the whole maximum
                self._check_capacity(record.instanceType, maximum)
            elif record.enabled and maximum > current.maxCapacity:  # running: the increase
                self._check_capacity(
                    record.instanceType,
                    maximum - current.maxCapacity,
                    "autoScalingInstanceConfig.maxCapacity",
                )
        return self._fallback_warnings(record, request)

    def _fallback_warnings(self, record: ModelRecord, request: UpdateModelRequest) -> list[FallbackWarning]:
        """New fallbacks are checked (``check_fallbacks``); the model's fallbacks as the update leaves
        them are compared with its groups as it leaves them (a change of either can warn), and a
        change of its groups is compared with the groups of the models that name it as a fallback."""
        if request.fallbacks is None and request.allowedGroups is None:
            return []
        if request.fallbacks is not None:
            fallbacks: Mapping[str, ModelRecord | None] = check_fallbacks(
                self.registry, record.modelId, record.modelType, request.fallbacks
            )
        else:
            fallbacks = stored_fallbacks(self.registry, record.fallbacks)
        groups = record.allowedGroups if request.allowedGroups is None else request.allowedGroups
        warnings = visibility_warnings(record.modelId, groups, fallbacks)
        if request.allowedGroups is not None:
            changed = record.model_copy(update={"allowedGroups": request.allowedGroups})
            warnings += dependent_warnings(self.registry, record.modelId, changed)
        return warnings

    def _check_container_update(self, current: ContainerConfig, update: ContainerConfigUpdate) -> None:
        added = {name: arn for name, arn in (update.secrets or {}).items() if arn != MARKED_FOR_DELETION}
        self._check_secret_arns(added, "containerConfig.secrets")
        try:
            merge_container_config(current, update)
        except ValidationError as error:
            raise ValidationFailed(
                f"containerConfig: {_first_message(error)} (combined with the model's current settings)"
            ) from error

    def set_context_window(self, principal: Principal, model_id: str, context_window: int) -> ModelRecord:
        """Set the model's context window (when registration could not tell it, or told it wrong).

        A metadata change: no workflow, the status stays; the serve app picks it up with the next
        registry version. Not while the model is being deleted."""
        _require_admin(principal, "set context windows")
        record = self.registry.get(model_id)
        if record.status == ModelStatus.DELETING:
            raise Conflict(f"model '{model_id}' is Deleting; its context window can no longer change")
        return self.registry.transition(
            model_id,
            allowed_from=[record.status],
            to=record.status,
            reason=record.statusReason,
            changes={"contextWindow": context_window},
        )

    # ---- delete ------------------------------------------------------------------------------
    def delete(self, principal: Principal, model_id: str) -> ModelChange:
        """Move the model to Deleting and start the delete workflow (which removes the record); warn
        about the models that name it as a fallback (their requests skip it from now on)."""
        _require_admin(principal, "delete models")
        record = self.registry.get(model_id)
        warnings = dependent_warnings(self.registry, model_id, None)
        updated = self._begin(record, Action.DELETE, reason=record.statusReason)
        self._start_or_revert(Workflow.DELETE, record, Action.DELETE, {"previousStatus": record.status.value})
        logger.info("model deletion started", extra={"model_id": model_id})
        return ModelChange(updated, warnings)

    # ---- internals ---------------------------------------------------------------------------
    def _begin(
        self,
        record: ModelRecord,
        action: Action,
        *,
        reason: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """The one move of a model into ``action``'s transient status (``TRANSITIONS``): Conflict
        unless the action may start from ``record``'s status; a conditional write from that status,
        so a concurrent change gets 409 too."""
        transition = self._transition_from(record, action)
        return self.registry.transition(
            record.modelId,
            allowed_from=[record.status],
            to=transition.transient,
            reason=reason,
            changes=changes,
        )

    @staticmethod
    def _transition_from(record: ModelRecord, action: Action) -> Transition:
        """``action``'s transition; Conflict unless it may start from ``record``'s status."""
        transition = TRANSITIONS[action]
        if record.status not in transition.sources:
            raise Conflict(
                f"model '{record.modelId}' is {record.status.value}; {action.value} is allowed only "
                f"from: {transition.allowed_from()}"
            )
        return transition

    def _start_or_revert(
        self,
        workflow: Workflow,
        before: ModelRecord,
        action: Action,
        details: dict[str, Any],
        restore: dict[str, Any] | None = None,
    ) -> None:
        """Start ``workflow``; if that fails, put the model back the way it was (status and the
        ``restore`` fields written with the transition) and report 502."""
        try:
            self.workflows.start(workflow, before.modelId, **details)
        except Exception as error:
            logger.exception(
                f"starting the {workflow.value} workflow failed", extra={"model_id": before.modelId}
            )
            try:
                self.registry.transition(
                    before.modelId,
                    allowed_from=[TRANSITIONS[action].transient],
                    to=before.status,
                    reason=before.statusReason,
                    changes=restore or None,
                )
            except Exception:
                logger.exception("reverting the model's status failed", extra={"model_id": before.modelId})
            raise DependencyFailed(
                f"could not start the {workflow.value} workflow for model '{before.modelId}'; "
                f"the model is unchanged ({before.status.value}), try again later"
            ) from error
