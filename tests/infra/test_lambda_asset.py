"""The Lambda asset ships no local-mode code: no module importing ``local_mode``, no process plumbing."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from lisa_stacks.lambda_code import LAMBDAS_DIR, NOT_COPIED

#: Imports that only local mode needs (its hosting starts and kills model processes).
LOCAL_ONLY_IMPORTS = {"local_mode", "subprocess"}
#: Names of process-group plumbing (local mode's hosting); a Lambda never forks servers.
PROCESS_GROUP_NAMES = {"killpg", "setsid", "start_new_session", "preexec_fn", "prctl"}


def asset_files(destination: Path) -> list[Path]:
    """The sources as the bundling copies them into the asset (same ignore patterns)."""
    shutil.copytree(LAMBDAS_DIR, destination, ignore=shutil.ignore_patterns(*NOT_COPIED))
    return sorted(path for path in destination.rglob("*") if path.is_file())


def local_mode_code(path: Path) -> list[str]:
    """What in this module belongs to local mode (empty when nothing does)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [
                f"import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in LOCAL_ONLY_IMPORTS
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in LOCAL_ONLY_IMPORTS:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in PROCESS_GROUP_NAMES:
            found.append(f".{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in PROCESS_GROUP_NAMES:
            found.append(f"{node.arg}=")
        elif isinstance(node, ast.Name) and node.id in PROCESS_GROUP_NAMES:
            found.append(node.id)
    return found


def test_the_lambda_asset_contains_no_local_mode_code(tmp_path: Path) -> None:
    files = asset_files(tmp_path / "asset")
    relative = [path.relative_to(tmp_path / "asset").as_posix() for path in files]
    # The listing is the real asset: the handlers and the ECS backend are in it, caches are not.
    assert "workflow_steps/hosting/ecs.py" in relative and "admin_api/handler.py" in relative
    assert not [name for name in relative if "__pycache__" in name or name.endswith(".pyc")]
    offenders = {
        name: found
        for name, path in zip(relative, files, strict=True)
        if path.suffix == ".py" and (found := local_mode_code(path))
    }
    assert offenders == {}
    assert not [name for name in relative if "local_mode" in name]


def test_the_check_recognises_local_hosting_code(tmp_path: Path) -> None:
    module = tmp_path / "hosting.py"
    module.write_text(
        "import os\nimport subprocess\nfrom local_mode.processes import spawner\n"
        "subprocess.Popen(['x'], start_new_session=True)\nos.killpg(1, 9)\n"
    )
    assert sorted(local_mode_code(module)) == sorted(
        ["import subprocess", "from local_mode.processes import ...", "start_new_session=", ".killpg"]
    )
