"""A model's ``fallbacks``: the rules a create or update must meet, and what the admin is told.

Refused (400 naming the entry, nothing written): more than ``MAX_FALLBACKS``, the model itself, an
id listed twice, a model that does not exist, is being deleted or is of another ``modelType``.
Accepted with a warning: a fallback that some of the model's callers may not use (the serve app
never sends a caller to a model it may not use, so those callers get the model's own error), and,
when only ``allowedGroups`` changes, a stored fallback that no longer exists (the serve app skips it).
The other direction too: deleting a model, changing its ``allowedGroups``, or creating one under an
id other models' fallbacks kept (a model deleted and created again), warns about every model that
names it as a fallback and loses it, or gets one of another ``modelType``, for some callers
(``dependent_warnings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field, ValidationError

from lisa_domain.errors import NotFound, ValidationFailed
from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import MAX_FALLBACKS, ModelDefinition, ModelRecord, ModelStatus, ModelType

#: Models read per page when looking for the models that name one as a fallback.
SCAN_PAGE = 100


class FallbackWarning(BaseModel):
    """Something about a fallback the admin should know; the request was applied all the same."""

    model: str = Field(description="The model whose fallbacks entry this is")
    field: str = Field(description="The entry, e.g. fallbacks[1]")
    fallback: str = Field(description="The fallback's model id")
    groups: list[str] = Field(
        description="The model's allowedGroups that may not use the fallback (empty when the model is "
        "open to everyone, or when the fallback is deleted)"
    )
    message: str


def check_fallbacks(
    registry: ModelRegistry, model_id: str, model_type: ModelType, fallbacks: Sequence[str]
) -> dict[str, ModelRecord]:
    """The fallback records by id; ValidationFailed naming the first entry that breaks a rule."""
    if len(fallbacks) > MAX_FALLBACKS:
        raise ValidationFailed(f"fallbacks: at most {MAX_FALLBACKS} fallbacks ({len(fallbacks)} given)")
    records: dict[str, ModelRecord] = {}
    for index, fallback in enumerate(fallbacks):
        where = f"fallbacks[{index}]"
        if fallback == model_id:
            raise ValidationFailed(f"{where}: '{fallback}' is the model itself")
        if fallback in records:
            raise ValidationFailed(f"{where}: '{fallback}' is listed twice")
        record = _read(registry, fallback, where)
        if record is None:
            raise ValidationFailed(f"{where}: model '{fallback}' does not exist")
        if record.status == ModelStatus.DELETING:
            raise ValidationFailed(f"{where}: model '{fallback}' is being deleted")
        if record.modelType != model_type:
            raise ValidationFailed(
                f"{where}: model '{fallback}' has modelType {record.modelType.value}; the fallbacks "
                f"of model '{model_id}' must have modelType {model_type.value}"
            )
        records[fallback] = record
    return records


def stored_fallbacks(registry: ModelRegistry, fallbacks: Sequence[str]) -> dict[str, ModelRecord | None]:
    """The records of fallbacks already on the model (``None``: deleted since, or not a valid
    record), for the warnings."""
    records: dict[str, ModelRecord | None] = {}
    for index, fallback in enumerate(fallbacks):
        try:
            records[fallback] = _read(registry, fallback, f"fallbacks[{index}]")
        except ValidationFailed:
            records[fallback] = None
    return records


def visibility_warnings(
    model_id: str, allowed_groups: Sequence[str], records: Mapping[str, ModelRecord | None]
) -> list[FallbackWarning]:
    """One warning per fallback of the model (its ``records`` in order) that some caller of the
    model (``allowed_groups``; empty: everyone) may not use, or that no longer exists."""
    found = (
        _warning(model_id, allowed_groups, index, fallback, record)
        for index, (fallback, record) in enumerate(records.items())
    )
    return [warning for warning in found if warning is not None]


def dependent_warnings(
    registry: ModelRegistry, fallback_id: str, fallback: ModelDefinition | None
) -> list[FallbackWarning]:
    """The warnings of every model that lists ``fallback_id`` among its fallbacks, with the fallback
    as a change leaves it (``None``: deleted). A scan of the registry: only for a create, a delete or
    an ``allowedGroups`` change."""
    warnings = []
    for referrer in _referrers(registry, fallback_id):
        index = referrer.fallbacks.index(fallback_id)
        if fallback is not None and fallback.modelType != referrer.modelType:
            warnings.append(_type_warning(referrer, index, fallback))
            continue
        warning = _warning(referrer.modelId, referrer.allowedGroups, index, fallback_id, fallback)
        if warning is not None:
            warnings.append(warning)
    return warnings


def _referrers(registry: ModelRegistry, model_id: str) -> list[ModelRecord]:
    """The models whose ``fallbacks`` name ``model_id``."""
    found: list[ModelRecord] = []
    token: str | None = None
    while True:
        page = registry.list_visible(SCAN_PAGE, token, lambda record: model_id in record.fallbacks)
        found.extend(page.models)
        token = page.next_token
        if token is None:
            return found


def _type_warning(referrer: ModelRecord, index: int, fallback: ModelDefinition) -> FallbackWarning:
    """Entry ``index`` of ``referrer``'s fallbacks names a model (created again) of another type."""
    message = (
        f"model '{fallback.modelId}' has modelType {fallback.modelType.value}, '{referrer.modelId}' "
        f"{referrer.modelType.value}: requests of '{referrer.modelId}' skip it"
    )
    return FallbackWarning(
        model=referrer.modelId,
        field=f"fallbacks[{index}]",
        fallback=fallback.modelId,
        groups=[],
        message=message,
    )


def _warning(
    model_id: str, allowed_groups: Sequence[str], index: int, fallback: str, record: ModelDefinition | None
) -> FallbackWarning | None:
    """The warning about entry ``index`` (``fallback``, its record or ``None``) of ``model_id``'s
    fallbacks, if some caller of the model (``allowed_groups``; empty: everyone) cannot be sent to it."""
    where = f"fallbacks[{index}]"
    if record is None:
        message = f"model '{fallback}' is deleted (or not a valid record): requests of '{model_id}' skip it"
        return FallbackWarning(model=model_id, field=where, fallback=fallback, groups=[], message=message)
    if not record.allowedGroups:
        return None  # open to everyone
    their = ", ".join(record.allowedGroups)
    if not allowed_groups:
        message = (
            f"model '{model_id}' is open to everyone but '{fallback}' only to the groups {their}: "
            "requests of other callers are not sent to it"
        )
        return FallbackWarning(model=model_id, field=where, fallback=fallback, groups=[], message=message)
    excluded = [group for group in allowed_groups if group not in record.allowedGroups]
    if not excluded:
        return None
    message = (
        f"the groups {', '.join(excluded)} may use '{model_id}' but not '{fallback}': requests of "
        f"callers outside the groups {their} are not sent to it"
    )
    return FallbackWarning(model=model_id, field=where, fallback=fallback, groups=excluded, message=message)


def _read(registry: ModelRegistry, model_id: str, where: str) -> ModelRecord | None:
    try:
        return registry.get(model_id)
    except NotFound:
        return None
    except ValidationError as error:
        raise ValidationFailed(f"{where}: model '{model_id}' is not a valid model record") from error
