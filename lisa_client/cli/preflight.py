"""``lisa preflight``: ``make preflight`` from the CLI (read-only checks of the AWS account)."""

from __future__ import annotations

from pathlib import Path

import click

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option(
    "-c", "--config", type=_FILE, required=True, help="the deployment config (config/deployment.yaml)"
)
@click.option("-m", "--models", type=_FILE, help="a models file (lisa apply's models.yaml) to check too")
def preflight(config: Path, models: Path | None) -> None:
    """Check the AWS account (credentials, CDK bootstrap, VPC, model capacity and Bedrock access)
    against a deployment config before deploying; read-only, with your AWS credentials and region.

    Exit code 0 when every check passes, 1 on any finding, 2 when the config or models file is invalid.
    """
    # The deployment tooling is imported only here: the other commands do not need it.
    from lisa_preflight.__main__ import main as run_checks

    argv = ["--config", str(config), *(["--models", str(models)] if models else [])]
    raise SystemExit(run_checks(argv))
