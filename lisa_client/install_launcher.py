"""Writes ``<venv>/bin/lisa`` (run by ``make install``): a launcher that puts this repository on
``sys.path`` and runs ``lisa_client.cli.main``. LISA is not an installable package (it is deployed
with CDK), so the console script points at the working tree instead of a copy.

Usage: ``python -m lisa_client.install_launcher`` (with the venv's python).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

LAUNCHER = """#!{python}
# Written by `make install` (lisa_client/install_launcher.py): the lisa command of {repo}.
import sys

sys.path.insert(0, {repo!r})
from lisa_client.cli import main

sys.exit(main())
"""


def write_launcher(bin_dir: Path) -> Path:
    path = bin_dir / "lisa"
    path.write_text(LAUNCHER.format(python=sys.executable, repo=str(REPO_ROOT)))
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    print(f"installed {write_launcher(Path(sys.executable).parent)}")
