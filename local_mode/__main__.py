"""``python -m local_mode`` (what ``make local`` runs): the whole system on 127.0.0.1 until Ctrl-C.

Options come from flags or the environment (flags win):

| flag | environment | default |
| --- | --- | --- |
| ``--admin-port`` | ``LISA_LOCAL_ADMIN_PORT`` | 8780 (a free port when taken; 0 = any) |
| ``--serve-port`` | ``LISA_LOCAL_SERVE_PORT`` | 8781 (same rule) |
| ``--console-port`` | ``LISA_LOCAL_CONSOLE_PORT`` | 8782 (same rule) |
| ``--state-file`` | ``LISA_LOCAL_STATE_FILE`` | ``.lisa/local.json`` |
| ``--no-demo`` | ``LISA_LOCAL_DEMO=0`` | the two demo models are created |

SIGINT (Ctrl-C) and SIGTERM stop everything it started, model processes included, then exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from local_mode.system import REPO_ROOT, LocalSystem, Options, StartupError


class _Stop(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler (a BaseException, like KeyboardInterrupt,
    so no ``except Exception`` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def parse_options(argv: list[str] | None = None) -> Options:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m local_mode", description=__doc__.splitlines()[0])
    parser.add_argument("--admin-port", type=int, default=int(env.get("LISA_LOCAL_ADMIN_PORT", "8780")))
    parser.add_argument("--serve-port", type=int, default=int(env.get("LISA_LOCAL_SERVE_PORT", "8781")))
    parser.add_argument("--console-port", type=int, default=int(env.get("LISA_LOCAL_CONSOLE_PORT", "8782")))
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(env.get("LISA_LOCAL_STATE_FILE") or REPO_ROOT / ".lisa" / "local.json"),
    )
    parser.add_argument(
        "--no-demo", action="store_true", default=env.get("LISA_LOCAL_DEMO", "1") in ("0", "false", "no")
    )
    args = parser.parse_args(argv)
    state_file: Path = args.state_file.resolve()
    return Options(
        admin_port=args.admin_port,
        serve_port=args.serve_port,
        console_port=args.console_port,
        state_file=state_file,
        run_dir=state_file.parent,
        demo=not args.no_demo,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    options = parse_options(argv)
    system = LocalSystem(options)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    code = 0
    try:
        system.start()
        while True:
            signal.pause()
    except _Stop as stop:
        system.say(f"\nlocal mode: {stop} received, stopping")
    except StartupError as error:
        system.say(f"local mode: could not start: {error}")
        code = 1
    finally:
        # Shutdown is bounded (a few seconds); further signals must not cut it short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        system.stop()
        system.say("local mode: stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
