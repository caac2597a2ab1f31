"""Unit checks of the serve app's pieces that need no server: settings, body checks (the
authenticator's are in ``test_token_following.py``)."""

from __future__ import annotations

import pytest

from serve.bodies import Endpoint, parse
from serve.config import DEFAULT_MAX_BODY_BYTES, ServeConfig
from serve.errors import ServeError


def test_config_defaults_and_validation() -> None:
    config = ServeConfig.from_env({"MODELS_TABLE_NAME": "models"})
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 4 * 1024 * 1024
    assert config.registry_poll_seconds == 0.25
    assert config.backend_retries == 0
    with pytest.raises(ValueError, match="MODELS_TABLE_NAME"):
        ServeConfig.from_env({})
    with pytest.raises(ValueError, match="LISA_SERVE_MAX_BODY_BYTES"):
        ServeConfig.from_env({"MODELS_TABLE_NAME": "m", "LISA_SERVE_MAX_BODY_BYTES": "big"})
    with pytest.raises(ValueError, match="LISA_SERVE_ACCESS_LOG"):
        ServeConfig.from_env({"MODELS_TABLE_NAME": "m", "LISA_SERVE_ACCESS_LOG": "maybe"})


def test_parse_passes_known_parameters_only() -> None:
    body = parse(b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 5}', Endpoint.CHAT)
    assert body["top_k"] == 5
    for bad in ("api_key", "api_base", "base_url", "metadata", "litellm_params", "mock_response", "timeout"):
        with pytest.raises(ServeError) as caught:
            parse(f'{{"model": "m", "messages": [], "{bad}": 1}}'.encode(), Endpoint.CHAT)
        assert caught.value.status == 400
    with pytest.raises(ServeError) as caught:
        parse(b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": true}', Endpoint.CHAT)
    assert caught.value.param == "max_tokens"
