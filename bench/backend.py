"""``python -m bench.backend --port N``: the tests' stand-in OpenAI-compatible backend as a process.

Uses uvloop and httptools when they are installed (as uvicorn's ``auto`` does), access log off, so
the backend is as fast as this machine allows and the gateways' overhead is what differs.
"""

from __future__ import annotations

import argparse

import uvicorn

from tests.support.fake_backend import FakeBackend


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        FakeBackend().app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="auto",
        http="auto",
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
