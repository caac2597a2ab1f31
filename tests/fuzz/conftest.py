"""The fuzz tests reuse the serve tests' running app (moto, stand-in backend, serve on 127.0.0.1)."""

from tests.serve.conftest import backend, moto_url, serve

__all__ = ["backend", "moto_url", "serve"]
