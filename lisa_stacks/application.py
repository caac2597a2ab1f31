"""Build and synthesize the whole deployment (used by app.py and the infrastructure tests).

Two cloud assemblies are produced:

1. ``<outdir>/model-hosting/``: the per-model ``ModelHostingStack`` alone, synthesized first and
   checked by cdk-nag like every stack;
2. ``<outdir>/``: the core and serve stacks. The core stack ships the per-model template from (1) as
   an S3 file asset, whose URL is the workflow Lambda's ``MODEL_STACK_TEMPLATE_URL``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api

from lisa_stacks.config import REPO_ROOT, DeploymentConfig, load_config, resolve_config_path
from lisa_stacks.console import ConsoleStack
from lisa_stacks.model_hosting_stack import ModelHostingStack
from lisa_stacks.nag import attach_checks
from lisa_stacks.stacks import CoreStack, ServeStack

MODEL_HOSTING_DIR = "model-hosting"


@dataclass(frozen=True)
class StackNames:
    core: str
    serve: str
    model_hosting: str
    console: str

    @classmethod
    def of(cls, config: DeploymentConfig) -> StackNames:
        return cls(
            core=f"{config.prefix}-core",
            serve=f"{config.prefix}-serve",
            model_hosting=f"{config.prefix}-model-hosting",
            console=f"{config.prefix}-console",
        )


@dataclass(frozen=True)
class Synthesized:
    config: DeploymentConfig
    names: StackNames
    assembly: cx_api.CloudAssembly
    model_assembly: cx_api.CloudAssembly

    def template(self, stack_name: str) -> dict[str, Any]:
        assembly = self.model_assembly if stack_name == self.names.model_hosting else self.assembly
        path = Path(assembly.get_stack_by_name(stack_name).template_full_path)
        result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return result

    def templates_by_role(self) -> dict[str, dict[str, Any]]:
        """``{"core" | "serve" | "model_hosting": template}``, independent of the deployment's name."""
        return {role: self.template(name) for role, name in dataclasses.asdict(self.names).items()}


def cdk_json_context() -> dict[str, Any]:
    """Feature flags from cdk.json, so ``python app.py`` synthesizes exactly what the CDK CLI would."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8")).get(
        "context", {}
    )
    return context


def synthesize(context: dict[str, Any] | None = None, outdir: str | None = None) -> Synthesized:
    """Synthesize every stack. ``context`` overrides cdk.json (e.g. ``{"config": path}``)."""
    merged = {**cdk_json_context(), **(context or {})}
    if outdir is None and not os.environ.get("CDK_OUTDIR"):
        outdir = str(REPO_ROOT / "cdk.out")
    app = cdk.App(context=merged, outdir=outdir)
    config = load_config(resolve_config_path(app.node.try_get_context("config")))
    names = StackNames.of(config)
    env = (
        cdk.Environment(account=config.account, region=config.region)
        if config.account or config.region
        else None
    )

    model_app = cdk.App(
        context=merged, outdir=str(Path(app.outdir) / MODEL_HOSTING_DIR), analytics_reporting=False
    )
    ModelHostingStack(
        model_app,
        names.model_hosting,
        stack_name=names.model_hosting,
        permissions_boundary_name=config.model_boundary_policy_name,
    )
    attach_checks(model_app)
    model_assembly = model_app.synth()
    model_template = Path(model_assembly.get_stack_by_name(names.model_hosting).template_full_path)

    console = ConsoleStack(app, names.console, config=config, env=env)
    core = CoreStack(
        app,
        names.core,
        config=config,
        model_template_path=model_template,
        console_origin=console.origin,
        env=env,
    )
    ServeStack(app, names.serve, config=config, core=core, console=console, env=env)
    attach_checks(app)
    return Synthesized(config=config, names=names, assembly=app.synth(), model_assembly=model_assembly)
