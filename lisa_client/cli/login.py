"""``lisa login`` / ``lisa logout``: OIDC device-code sign-in, cached per admin URL (mode 600)."""

from __future__ import annotations

import click

from lisa_client import credentials
from lisa_client.cli.common import EXIT_USAGE, fail, report_errors
from lisa_client.output import stderr
from lisa_client.signin import DevicePrompt, device_sign_in


def _show(prompt: DevicePrompt) -> None:
    target = prompt.verification_uri_complete or prompt.verification_uri
    stderr().print(f"Open {target} and enter the code {prompt.user_code}", markup=False, highlight=False)


@click.command()
@click.option("--admin-url", envvar="LISA_ADMIN_URL", help="the admin API the token is for")
@click.option("--issuer", envvar="LISA_OIDC_ISSUER", required=True, help="the identity provider's issuer URL")
@click.option("--client-id", envvar="LISA_OIDC_CLIENT_ID", required=True, help="the OIDC client id")
@report_errors
def login(admin_url: str | None, issuer: str, client_id: str) -> None:
    """Sign in with your identity provider (device code); later commands use the cached token."""
    if not admin_url:
        fail("pass --admin-url or set LISA_ADMIN_URL", EXIT_USAGE)
    signed_in = device_sign_in(issuer, client_id, _show)
    path = credentials.store(admin_url, signed_in.token, signed_in.expires_at, issuer)
    stderr().print(f"signed in; token cached in {path}", markup=False, highlight=False)


@click.command()
@click.option("--admin-url", envvar="LISA_ADMIN_URL", required=True)
def logout(admin_url: str) -> None:
    """Forget the cached token of an admin API."""
    removed = credentials.forget(admin_url)
    stderr().print("signed out" if removed else "no cached token", markup=False, highlight=False)
