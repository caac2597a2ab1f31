"""The serve container's entry point (Dockerfile CMD, tests and local mode run exactly this).

``python -m serve [--host HOST] [--port PORT]``; defaults from ``LISA_SERVE_HOST`` and
``LISA_SERVE_PORT``. Port 0 picks a free port. Once the socket is bound it prints
``LISA serve listening on http://HOST:PORT`` (flushed) on standard output.

``LISA_SERVE_WORKERS`` worker processes (default 1; 0 = one per available CPU) share the socket;
each runs the whole app, its own registry follower included. With more than one, this process only
supervises them (uvicorn's ``Multiprocess``: restarts a worker that dies, forwards SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import uvicorn
from fastapi import FastAPI

from serve.config import ServeConfig


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    family, kind, proto, _, address = infos[0]
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on such sockets, and without it small
    # responses wait for delayed ACKs (about 40 ms each).
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def _event_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _http() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _configure_logging(config: ServeConfig) -> None:
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def worker_app() -> FastAPI:
    """The app in a worker process (uvicorn's app factory when there are several workers). The
    registry's first read starts before the app, and LiteLLM with it, is imported (``serve.first_load``)."""
    from serve.first_load import FirstLoad

    config = ServeConfig.from_env()
    _configure_logging(config)
    first_load = FirstLoad.from_config(config)
    from serve.app import app_from_env

    return app_from_env(first_load)


def main(argv: list[str] | None = None) -> None:
    config = ServeConfig.from_env()
    parser = argparse.ArgumentParser(prog="python -m serve", description="LISA's OpenAI-compatible serve API")
    parser.add_argument("--host", default=config.host, help="address to listen on (LISA_SERVE_HOST)")
    parser.add_argument("--port", type=int, default=config.port, help="port, 0 for any (LISA_SERVE_PORT)")
    args = parser.parse_args(argv)
    _configure_logging(config)
    workers = config.worker_count()
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    uvicorn_config = uvicorn.Config(
        "serve.__main__:worker_app" if workers > 1 else worker_app(),
        factory=workers > 1,
        workers=workers,
        loop=_event_loop(),
        http=_http(),
        lifespan="on",
        access_log=config.access_log,
        log_config=None,
        log_level=config.log_level,
        timeout_keep_alive=int(config.keep_alive_seconds),
        timeout_graceful_shutdown=int(config.graceful_shutdown_seconds),
        server_header=False,
    )
    print(f"LISA serve listening on http://{host}:{port}", flush=True)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(uvicorn_config, sockets=[sock]).run()
    else:
        uvicorn.Server(uvicorn_config).run(sockets=[sock])


if __name__ == "__main__":
    main()
