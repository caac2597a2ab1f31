"""``make smoke``: after a deploy, does every model the token may use answer through the serve API?

``python -m lisa_preflight.smoke --config config/deployment.yaml`` reads the two API URLs from the
stacks' outputs (``AdminApiUrl`` of ``<prefix>-core``, ``ServeUrl`` of ``<prefix>-serve``; or
``--admin-url``/``--serve-url``), lists the models with the token in ``LISA_TOKEN``, and for each
``InService`` model sends one completion (textgen, ``max_tokens: 1``) or one embedding (embedding)
through the serve API. One line per model; exit code 1 when any model fails (or none is InService
and ``--require-models`` is given), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from lisa_client import LisaClient, LisaClientError
from lisa_domain.schema import ModelStatus, ModelType
from lisa_stacks.application import StackNames
from lisa_stacks.config import ConfigError, load_config

TIMEOUT_SECONDS = 60.0
ERROR_CHARS = 300


@dataclass(frozen=True)
class SmokeResult:
    model_id: str
    what: str
    error: str | None = None

    def line(self) -> str:
        return f"{'ok  ' if self.error is None else 'FAIL'} {self.model_id}: {self.what}" + (
            f": {self.error}" if self.error else ""
        )


def stack_urls(cloudformation: Any, names: StackNames) -> tuple[str, str]:
    """(admin API URL, serve URL) from the deployed stacks' outputs."""

    def output(stack: str, key: str) -> str:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        values = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        if key not in values:
            raise KeyError(f"stack {stack} has no output {key}")
        return values[key]

    return output(names.core, "AdminApiUrl"), output(names.serve, "ServeUrl")


def probe(serve: httpx.Client, model_id: str, model_type: ModelType) -> SmokeResult:
    if model_type == ModelType.EMBEDDING:
        what, path = "one embedding", "/v1/embeddings"
        body: dict[str, Any] = {"model": model_id, "input": ["LISA smoke test"]}
    elif model_type == ModelType.TEXTGEN:
        what, path = "one completion", "/v1/chat/completions"
        body = {
            "model": model_id,
            "messages": [{"role": "user", "content": "Reply with OK."}],
            "max_tokens": 1,
        }
    else:
        return SmokeResult(model_id, f"{model_type.value}: not probed")
    try:
        response = serve.post(path, json=body)
    except httpx.HTTPError as error:
        return SmokeResult(model_id, what, f"{type(error).__name__}: {error}")
    if response.status_code != 200:
        return SmokeResult(model_id, what, f"HTTP {response.status_code}: {response.text[:ERROR_CHARS]}")
    answer = response.json()
    key = "data" if model_type == ModelType.EMBEDDING else "choices"
    if not answer.get(key):
        return SmokeResult(model_id, what, f"the answer has no {key}")
    return SmokeResult(model_id, what)


def run_smoke(
    admin_url: str, serve_url: str, token: str, transport: httpx.BaseTransport | None = None
) -> list[SmokeResult]:
    """List the models the token sees, then probe each InService one through the serve API."""
    models = LisaClient(admin_url, token, transport=transport).list_models()
    results = [SmokeResult("(models)", f"{len(models)} listed")]
    with httpx.Client(
        base_url=serve_url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT_SECONDS,
        transport=transport,
    ) as serve:
        for model in models:
            if model.status == ModelStatus.IN_SERVICE:
                results.append(probe(serve, model.modelId, model.modelType))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lisa_preflight.smoke", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", type=Path, default=Path("config/deployment.yaml"))
    parser.add_argument("--admin-url", help="instead of the core stack's AdminApiUrl output")
    parser.add_argument("--serve-url", help="instead of the serve stack's ServeUrl output")
    parser.add_argument("--require-models", action="store_true", help="fail when no model is InService")
    args = parser.parse_args(argv)
    token = os.environ.get("LISA_TOKEN", "")
    if not token:
        print("set LISA_TOKEN to an API token (or the management key)", file=sys.stderr)
        return 2
    admin_url, serve_url = args.admin_url, args.serve_url
    if not (admin_url and serve_url):
        try:
            names = StackNames.of(load_config(args.config))
        except ConfigError as error:
            print(error, file=sys.stderr)
            return 2
        session = boto3.Session(region_name=os.environ.get("AWS_REGION") or None)
        stack_admin, stack_serve = stack_urls(session.client("cloudformation"), names)
        admin_url, serve_url = admin_url or stack_admin, serve_url or stack_serve
    try:
        results = run_smoke(admin_url, serve_url, token)
    except LisaClientError as error:
        print(f"FAIL listing the models: {error}")
        return 1
    print("\n".join(result.line() for result in results))
    failed = any(result.error for result in results)
    if args.require_models and len(results) == 1:
        print("FAIL no model is InService")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
