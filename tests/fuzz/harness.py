"""Schema fuzzing with schemathesis, driven by Hypothesis directly so that a run counts its cases and
collects every failure instead of stopping at the first (the benchmarks want the count; the tests
assert the failure list is empty).

For every operation of an OpenAPI document, cases are generated from the schema (positive: valid
by the schema; negative: violating it), sent over HTTP to ``base_url`` with the given headers, and
each response is checked: no 5xx other than the documented ones, the status code documented for
the operation, the content type documented, the body valid against the documented schema, and (for
negative cases) the request rejected with a 4xx. An operation that yields no case (in any mode, or
in the positive mode) is a failure too: a run must not pass by testing nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

#: 5xx answers the serve API documents (a model backend failed or timed out); any other 5xx is a bug.
DOCUMENTED_5XX = frozenset({502, 503, 504})

Mutator = Callable[[Any, random.Random], None]


@dataclass
class Report:
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def merge(self, other: Report) -> None:
        self.cases += other.cases
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.failures.extend(other.failures)


def load(document: Mapping[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(dict(document))


def _checks(mode: GenerationMode, allowed_5xx: frozenset[int]) -> list[Any]:
    checks: list[Any] = [status_code_conformance, content_type_conformance, response_schema_conformance]
    if not allowed_5xx:
        checks.append(not_a_server_error)
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    return checks


def fuzz_operation(
    operation: Any,
    *,
    base_url: str,
    headers: Mapping[str, str],
    cases: int,
    seed: int,
    mode: GenerationMode,
    mutate: Mutator | None = None,
    allowed_5xx: frozenset[int] = DOCUMENTED_5XX,
    timeout: float = 30.0,
) -> Report:
    """Send ``cases`` generated requests for one operation; every failure is recorded, none raised."""
    report = Report()
    rng = random.Random(seed)
    checks = _checks(mode, allowed_5xx)
    label = f"{operation.method.upper()} {operation.path} [{mode.value}]"

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if mutate is not None:
            mutate(case, rng)
        report.cases += 1
        try:
            response = case.call(base_url=base_url, headers=dict(headers), timeout=timeout)
        except Exception as error:  # the server closed the connection or never answered: a failure
            report.failures.append(f"{label}: no response ({type(error).__name__}: {error})")
            return
        status = int(response.status_code)
        report.statuses[status] = report.statuses.get(status, 0) + 1
        if status >= 500 and status not in allowed_5xx:
            report.failures.append(f"{label}: undocumented {status}: {response.text[:300]}")
            return
        try:
            case.validate_response(response, checks=checks, headers=dict(headers))
        except Exception as error:
            report.failures.append(f"{label}: {type(error).__name__}: {str(error)[:600]}")

    try:
        run()
    except (Unsatisfiable, FailedHealthCheck) as error:
        # Negative mode may have nothing to violate (no parameters, no body); ``fuzz`` fails an
        # operation that got no case in any mode, and a positive mode always has valid requests.
        if mode is GenerationMode.POSITIVE:
            report.failures.append(f"{label}: no case generated ({type(error).__name__})")
    if mode is GenerationMode.POSITIVE and report.cases == 0 and not report.failures:
        report.failures.append(f"{label}: no case generated")
    return report


def fuzz(
    document: Mapping[str, Any],
    *,
    base_url: str,
    headers: Mapping[str, str],
    cases_per_operation: int,
    seed: int = 20251126,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    mutate: Mutator | None = None,
    operations: Callable[[str, str], bool] | None = None,
    allowed_5xx: frozenset[int] = DOCUMENTED_5XX,
) -> Report:
    """Fuzz every operation of ``document`` (those for which ``operations(method, path)`` holds)."""
    schema = load(document)
    report = Report()
    for index, result in enumerate(schema.get_all_operations()):
        operation = result.ok()
        if operations is not None and not operations(operation.method.upper(), operation.path):
            continue
        generated = 0
        for mode in modes:
            outcome = fuzz_operation(
                operation,
                base_url=base_url,
                headers=headers,
                cases=cases_per_operation,
                seed=seed + index,
                mode=mode,
                mutate=mutate,
                allowed_5xx=allowed_5xx,
            )
            generated += outcome.cases
            report.merge(outcome)
        if generated == 0:
            report.failures.append(
                f"{operation.method.upper()} {operation.path}: no case generated in any mode"
            )
    return report


def use_known_models(models: list[str], *, by_path: Mapping[str, list[str]] | None = None) -> Mutator:
    """A mutator that puts one of ``models`` into half of the bodies that name a model (JSON or
    multipart form), so that generated requests also reach a real backend instead of all ending in
    404. ``by_path``: the models of the type an operation's path serves; a body of such a path gets
    one of them half of those times (the other half, any model: the wrong type is a 400)."""

    def mutate(case: Any, rng: random.Random) -> None:
        body = getattr(case, "body", None)
        if (
            isinstance(body, dict)
            and isinstance(body.get("model"), str)
            and body["model"]
            and rng.random() < 0.5
        ):
            own = (by_path or {}).get(case.operation.path)
            body["model"] = rng.choice(own if own and rng.random() < 0.5 else models)

    return mutate
