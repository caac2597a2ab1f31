"""What the route modules share: the documented error shape, OpenAPI response helpers, the caller."""

from typing import Any

from pydantic import BaseModel, Field

from admin_api.resolver import app
from lisa_domain.auth import Principal, principal_from_context


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. body.modelId or query.limit")
    message: str


class ErrorResponse(BaseModel):
    message: str = Field(description="What went wrong; names the offending field for invalid input")
    statusCode: int
    errors: list[FieldError] | None = Field(default=None, description="Schema errors (422 only)")


def json_content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"model": model}}


def error_docs(*codes: int, overrides: dict[int, str] | None = None) -> dict[int, Any]:
    """The documented error answers of a route (``overrides`` replaces a code's description)."""
    descriptions = {
        400: "Invalid input that breaks a rule of the API (the message names the field)",
        401: "Missing or invalid credentials",
        403: "Only administrators may do this",
        404: "No such model (or not visible to the caller)",
        409: "Conflict: the model exists, is in the wrong state, or changed concurrently",
        422: "The request does not match the schema (the message names each field)",
        502: "A workflow or AWS service could not be reached; nothing was changed",
        503: "The model registry stayed busy (concurrent changes, throttling); nothing was changed, "
        "try again",
    } | (overrides or {})
    return {
        code: {"description": descriptions[code], "content": json_content(ErrorResponse)} for code in codes
    }


def ok_docs(description: str, model: type[BaseModel], status: int = 200) -> dict[int, Any]:
    return {status: {"description": description, "content": json_content(model)}}


def caller() -> Principal:
    """The authenticated caller of the current request (the authorizer's context)."""
    return principal_from_context(app.current_event.raw_event.get("requestContext", {}).get("authorizer"))
