"""The container's health check: ``python -m serve.healthcheck`` exits 0 when ``/health`` answers 200.

Liveness only (the process serves HTTP), never the registry: the load balancer's target-group
health check uses ``/health`` too, so a registry outage cannot take replicas out of service.
Readiness (snapshot loaded, staleness, gaps) is reported by ``/health/ready``.
"""

from __future__ import annotations

import sys
import urllib.request

from lisa_contracts.settings import ServeSettings


def main() -> int:
    port = ServeSettings.from_env().port
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
