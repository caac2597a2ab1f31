"""A model's ``fallbacks``: the rules a create or update must meet, and what the admin is told.

Refused (400 naming the entry, nothing written): more than ``MAX_FALLBACKS``, the model itself, an
id listed twice, a model that does not exist, is being deleted or is of another ``modelType``.
Accepted with a warning: a fallback that some of the model's callers may not use (the serve app
never sends a caller to a model it may not use, so those callers get the model's own error), and,
when only ``allowedGroups`` changes, a stored fallback that no longer exists (the serve app skips it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field, ValidationError

from lisa_domain.errors import NotFound, ValidationFailed
from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import MAX_FALLBACKS, ModelRecord, ModelStatus, ModelType


class FallbackWarning(BaseModel):
    """Something about a fallback the admin should know; the request was applied all the same."""

    field: str = Field(description="The entry, e.g. fallbacks[1]")
    fallback: str = Field(description="The fallback's model id")
    groups: list[str] = Field(
        description="The model's allowedGroups that may not use the fallback (empty when the model is "
        "open to everyone, or when the fallback no longer exists)"
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
    """One warning per fallback that some caller of the model (``allowed_groups``; empty: everyone)
    may not use, or that no longer exists."""
    warnings: list[FallbackWarning] = []
    for index, (fallback, record) in enumerate(records.items()):
        where = f"fallbacks[{index}]"
        if record is None:
            warnings.append(
                FallbackWarning(
                    field=where,
                    fallback=fallback,
                    groups=[],
                    message=f"model '{fallback}' no longer exists (or is not a valid record); requests skip it",
                )
            )
            continue
        if not record.allowedGroups:
            continue  # open to everyone
        their = ", ".join(record.allowedGroups)
        if not allowed_groups:
            warnings.append(
                FallbackWarning(
                    field=where,
                    fallback=fallback,
                    groups=[],
                    message=f"model '{model_id}' is open to everyone but '{fallback}' only to the groups "
                    f"{their}: requests of other callers are not sent to it",
                )
            )
            continue
        excluded = [group for group in allowed_groups if group not in record.allowedGroups]
        if excluded:
            warnings.append(
                FallbackWarning(
                    field=where,
                    fallback=fallback,
                    groups=excluded,
                    message=f"the groups {', '.join(excluded)} may use '{model_id}' but not '{fallback}': "
                    f"requests of callers outside the groups {their} are not sent to it",
                )
            )
    return warnings


def _read(registry: ModelRegistry, model_id: str, where: str) -> ModelRecord | None:
    try:
        return registry.get(model_id)
    except NotFound:
        return None
    except ValidationError as error:
        raise ValidationFailed(f"{where}: model '{model_id}' is not a valid model record") from error
