"""Ports on 127.0.0.1: the one ``free_port`` helper local mode, the tests and the benchmarks use."""

from __future__ import annotations

import logging
import socket

HOST = "127.0.0.1"

logger = logging.getLogger("local_mode")


def free_port() -> int:
    """A port with nothing listening on it (bound and released; connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server (they all set SO_REUSEADDR) could listen on ``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def port_or_free(preferred: int) -> int:
    """``preferred`` when it can be bound on 127.0.0.1, otherwise a free port (0 = any free port)."""
    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, preferred))
            except OSError:
                logger.warning("port %s is in use; using a free port instead", preferred)
            else:
                return preferred
    return free_port()
