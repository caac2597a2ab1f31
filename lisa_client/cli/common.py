"""What the ``lisa`` commands share: the connection, ``--output``, ``--wait`` and exit codes.

Exit codes: 0 done; 1 the API refused or a workflow failed (the message and status reason are
printed); 2 bad usage or input (a flag, a file, a missing connection setting); 3 a wait timed out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar, cast

import click
import httpx

from lisa_client.client import LisaClient
from lisa_client.connection import NotConfigured, resolve
from lisa_client.errors import ApiError, LisaClientError, WaitTimeout, WorkflowFailed
from lisa_client.modelfile import ModelFileError
from lisa_client.output import OutputFormat, WaitDisplay, stderr
from lisa_client.signin import SignInFailed
from lisa_domain.schema import ModelRecord, ModelStatus, ModelSummary

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    admin_url: str | None
    token: str | None
    serve_url: str | None
    local: bool
    _client: LisaClient | None = field(default=None, repr=False)

    def client(self) -> LisaClient:
        if self._client is None:
            connection = resolve(self.admin_url, self.token, self.serve_url, self.local)
            self._client = LisaClient(
                connection.admin_url, connection.token, serve_url=connection.serve_url, on_warning=warn
            )
        return self._client


def warn(message: str) -> None:
    """A warning the API answered with (the change was applied): ``warning: ...`` on stderr."""
    stderr().print(f"warning: {message}", markup=False, highlight=False)


def state() -> State:
    found = click.get_current_context().find_object(State)
    assert found is not None, "lisa's main group sets the State"
    return found


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    stderr().print(f"error: {message}", markup=False, highlight=False)
    raise SystemExit(code)


def report_errors(function: F) -> F:
    """Turn this package's exceptions into a message on stderr and the documented exit code."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except WaitTimeout as error:
            fail(f"{error} (the workflow may still be running)", EXIT_TIMEOUT)
        except WorkflowFailed as error:
            fail(str(error))
        except ApiError as error:
            suffix = f" [field: {error.field}]" if error.field else ""
            fail(f"{error.status}: {error.message}{suffix}")
        except (NotConfigured, ModelFileError) as error:
            fail(str(error), EXIT_USAGE)
        except (LisaClientError, SignInFailed) as error:
            fail(str(error))
        except httpx.HTTPError as error:
            fail(f"could not reach the API: {error}")

    return cast(F, wrapper)


def output_option(function: F) -> F:
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice([f.value for f in OutputFormat]),
        default=OutputFormat.TABLE.value,
        show_default=True,
        help="table for people, json or yaml for scripts",
    )(function)


def wait_options(function: F) -> F:
    function = click.option(
        "--timeout", type=float, default=1800.0, show_default=True, help="seconds --wait waits at most"
    )(function)
    return click.option("--wait", is_flag=True, help="show progress until the model settles")(function)


def wait_until(
    client: LisaClient, model_id: str, status: ModelStatus | None, timeout: float
) -> ModelRecord | ModelSummary | None:
    """Follow the workflow with a live progress line until the model is in ``status`` (returned),
    or, with None, until it is deleted."""
    with WaitDisplay() as display:
        if status is None:
            client.wait_deleted(model_id, timeout, on_progress=display.update)
            return None
        return client.wait_for(model_id, status, timeout, on_progress=display.update)
