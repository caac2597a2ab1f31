"""Domain errors; handlers map them to HTTP status codes (and the serve app to OpenAI errors)."""


class LisaError(Exception):
    """Base of every domain error."""

    status_code = 500


class ValidationFailed(LisaError):
    status_code = 400


class Unauthorized(LisaError):
    status_code = 401


class Forbidden(LisaError):
    status_code = 403


class NotFound(LisaError):
    status_code = 404


class Conflict(LisaError):
    status_code = 409


class Unavailable(LisaError):
    """A dependency stayed busy (throttling, concurrent transactions) through bounded retries;
    nothing was written and the same request may succeed later."""

    status_code = 503


class DependencyFailed(LisaError):
    """An AWS call this request needed failed; nothing was left half-done."""

    status_code = 502


#: AWS error codes that mean "busy now, try again" (throttling, limits, transient service errors).
TRANSIENT_AWS_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
