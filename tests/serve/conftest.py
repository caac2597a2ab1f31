"""The serve app on 127.0.0.1 against a moto server and a stand-in model backend, for the session."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from openai import OpenAI

from lisa_domain.auth import JwtVerifier, Principal
from lisa_domain.errors import Forbidden
from lisa_domain.registry import ModelRegistry, now
from lisa_domain.schema import ModelRecord, ModelType
from lisa_domain.tokens import TokenStore
from lisa_domain.usage import day_of
from local_mode.resources import LocalResources, create_resources
from serve.app import Services, build_services, create_app
from serve.config import ServeConfig
from tests.conftest import ADMIN_GROUP
from tests.support.fake_backend import FakeBackend
from tests.support.served_models import echo_params, serve_model
from tests.support.servers import ServerThread, free_port
from tests.support.waiting import wait_for

BACKEND_TIMEOUT = 1.5
MAX_BODY = 256 * 1024
AUTH_CACHE = 0.0  # the default: revocation takes effect on the next request

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log


def jwt_stub(credential: str) -> Principal | None:
    """Stands in for the OIDC verifier (identity issue): two fixed 'JWTs'."""
    if credential == "hdr.forbidden.sig":
        raise Forbidden("this identity may not use LISA")
    if credential == "hdr.alice.sig":
        return Principal("alice-oidc", ("team-a",), False, "jwt")
    return None


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def backend() -> Iterator[tuple[FakeBackend, str]]:
    fake = FakeBackend()
    server = ServerThread(fake.app).start()
    yield fake, server.url + "/v1"
    server.stop()


@dataclass
class ServeEnv:
    """The running serve app and what tests need to drive it."""

    url: str
    resources: LocalResources
    services: Services
    registry: ModelRegistry
    tokens: TokenStore
    secretsmanager: Any
    backend: FakeBackend
    backend_url: str
    token_values: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.url + "/v2/serve"

    def client(self, who: str = "admin") -> OpenAI:
        key = self.resources.management_key if who == "management" else self.token_values.get(who, who)
        return OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=20)

    def headers(self, who: str = "admin") -> dict[str, str]:
        key = self.resources.management_key if who == "management" else self.token_values.get(who, who)
        return {"Authorization": f"Bearer {key}"}

    def add_model(
        self,
        model_id: str,
        backend_model: str = "echo",
        *,
        groups: list[str] | None = None,
        model_type: ModelType = ModelType.TEXTGEN,
        params: dict[str, Any] | None = None,
    ) -> ModelRecord:
        record = serve_model(
            self.registry,
            model_id,
            params or echo_params(self.backend_url, backend_model),
            backend_model,
            model_type=model_type,
            groups=groups,
            created_at=now() - 1000,
        )
        self.wait_for_registry()
        return record

    def add_tokens(self, users: dict[str, list[str]]) -> None:
        """An API token for each user (with those groups), followed by the serve app."""
        for who, groups in users.items():
            self.token_values[who] = self.tokens.create(username=who, groups=groups)[0]
        self.wait_for_tokens()

    def wait_for_tokens(self, timeout: float = 5.0) -> None:
        """Until the serve app follows every token change made so far (bounded)."""
        wanted = self.tokens.version().version
        follower = self.services.tokens
        assert follower is not None
        wait_for(lambda: (follower.version or 0) >= wanted, timeout, "the serve app following the tokens")

    def wait_for_registry(self, timeout: float = 5.0) -> None:
        """Until the serve app follows every registry change made so far (bounded)."""
        wanted = self.registry.version()

        def followed() -> bool:
            snapshot = self.services.follower.snapshot
            return snapshot is not None and snapshot.version >= wanted

        wait_for(followed, timeout, "the serve app following the registry", interval=0.005)


@contextmanager
def running_serve(
    moto_url: str,
    backend: tuple[FakeBackend, str],
    resources: LocalResources,
    *,
    jwt_verifier: JwtVerifier | None = None,
    **settings: Any,
) -> Iterator[ServeEnv]:
    """A serve replica on 127.0.0.1 reading ``resources`` (registry and tokens polled every 0.05 s,
    ``settings``: more ``ServeConfig`` fields), stopped on exit."""
    config = ServeConfig(
        models_table=resources.models_table,
        tokens_table=resources.tokens_table,
        admin_group=ADMIN_GROUP,
        registry_poll_seconds=0.05,
        tokens_poll_seconds=0.05,
        **settings,
    )
    services = build_services(config, endpoint_url=moto_url, jwt_verifier=jwt_verifier)
    server = ServerThread(create_app(services)).start()
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    try:
        yield ServeEnv(
            url=server.url,
            resources=resources,
            services=services,
            registry=ModelRegistry(resources.models_table, dynamodb),
            tokens=TokenStore(resources.tokens_table, dynamodb),
            secretsmanager=boto3.client("secretsmanager", endpoint_url=moto_url),
            backend=backend[0],
            backend_url=backend[1],
        )
    finally:
        server.stop()


def usage_of(env: ServeEnv, username: str) -> dict[str, dict[str, int]]:
    """Flush the replica, then read the user's aggregates of today: model -> counters."""
    meter = env.services.meter
    assert meter is not None
    meter.flush()
    assert meter.pending_batches == 0
    rows = meter.store.read([day_of(time.time())], username)
    return {key.model: counts.body() for key, counts in rows.items()}


@pytest.fixture(scope="session")
def serve(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    resources = create_resources("lisa-serve", endpoint_url=moto_url)
    with running_serve(
        moto_url,
        backend,
        resources,
        jwt_verifier=jwt_stub,
        management_key_secret_arn=resources.management_key_secret_arn,
        backend_timeout_seconds=BACKEND_TIMEOUT,
        max_body_bytes=MAX_BODY,
        auth_cache_seconds=AUTH_CACHE,
        allow_management_key=True,  # the "management" client; the default (refused) is in the auth matrix
    ) as env:
        env.add_tokens({"admin": [ADMIN_GROUP], "alice": ["team-a"], "bob": ["team-b"], "nobody": []})
        env.add_model("chat-open")
        env.add_model("chat-team-a", groups=["team-a"])
        env.add_model("chat-team-b", groups=["team-b"])
        env.add_model("embed", "embedder", model_type=ModelType.EMBEDDING)
        for name in ("fail500", "bad400", "hang", "cut", "slow"):
            env.add_model(f"broken-{name}", name)
        env.add_model(
            "broken-refused",
            params={"model": "openai/echo", "api_base": f"http://127.0.0.1:{free_port()}/v1", "api_key": "x"},
        )
        yield env
