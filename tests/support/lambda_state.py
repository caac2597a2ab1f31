"""Fresh Lambda containers in one test process.

A handler module builds its clients and services on its first request and keeps them while the
container is warm (``admin_api.wiring``, the authorizer's authenticator with its key caches, the
rotation Lambda's Secrets Manager client). A test that changes the environment or starts another moto
account forgets them here, so the next request builds them again, as a new container would.
"""

from __future__ import annotations


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
