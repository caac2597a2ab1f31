"""Fresh Lambda containers in one test process.

A handler module builds its clients and services on its first request and keeps them while the
container is warm (``admin_api.wiring``, the authorizer's authenticator with its key caches, the
rotation Lambda's Secrets Manager client). A test that changes the environment or starts another moto
account forgets them here, so the next request builds them again, as a new container would.
"""

from __future__ import annotations

import pytest

from lisa_contracts.settings import RuntimeSettings


def configure(monkeypatch: pytest.MonkeyPatch, *runtime_settings: RuntimeSettings) -> None:
    """Give the runtimes the environment ``runtime_settings`` describe, the way the CDK stacks build
    it (``Model.build(...).to_env()``): a name or value a runtime does not accept fails here."""
    for settings in runtime_settings:
        for name, value in settings.to_env().items():
            monkeypatch.setenv(name, value)


def fresh_admin_api() -> None:
    """The admin API's services and settings, rebuilt on the next request."""
    from admin_api import wiring
    from lisa_domain.settings import settings

    wiring._service = None
    wiring._token_service = None
    wiring._token_settings = None
    wiring._usage_store = None
    settings.cache_clear()


def fresh_authorizer() -> None:
    """The authorizer's authenticator (management key and OIDC key caches), rebuilt on the next call."""
    from authorizer import handler

    handler._authenticator = None


def fresh_key_rotation() -> None:
    """The rotation Lambda's Secrets Manager client, rebuilt on the next call (e.g. in another moto account)."""
    from key_rotation import handler

    handler._client = None
