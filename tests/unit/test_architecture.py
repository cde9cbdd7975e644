"""The stages' import contracts (import-linter) and the linter (ruff) hold on the tree, and each catches a
deliberate violation in a copy of it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pinpipe.common.config import PROJECT_ROOT

BIN = Path(sys.executable).parent


def run(tool: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(BIN / tool), *(["check", "."] if tool == "ruff" else [])], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def copy_of_the_tree(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "pinpipe", tmp_path / "pinpipe", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports_with(tmp_path: Path, module: str, violation: str) -> subprocess.CompletedProcess:
    """lint-imports on a copy of the tree whose `module` (a path under pinpipe/) ends in `violation`."""
    tree = copy_of_the_tree(tmp_path)
    with open(tree / "pinpipe" / module, "a") as handle:
        handle.write(violation)
    return run("lint-imports", tree)


def test_the_import_contracts_hold():
    result = run("lint-imports", PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


def test_the_spark_stage_importing_kafka_breaks_a_contract(tmp_path):
    result = lint_imports_with(tmp_path, "spark/cleaning.py",
                               "\nimport kafka  # noqa: E402,F401  (a deliberate violation)\n")
    assert result.returncode != 0
    assert "the Spark stage never imports Kafka" in result.stdout and "BROKEN" in result.stdout


def test_the_poster_importing_pyspark_breaks_a_contract(tmp_path):
    result = lint_imports_with(tmp_path, "poster/models.py",
                               "\nfrom pinpipe.spark import cleaning  # noqa: E402,F401  (a deliberate violation)\n")
    assert result.returncode != 0 and "never import pyspark BROKEN" in " ".join(result.stdout.split())


def test_a_helper_importing_the_session_breaks_the_spark_layers(tmp_path):
    """The cycle the class archive once had: its module imported the session, which imports it."""
    result = lint_imports_with(tmp_path, "spark/class_archive.py",
                               "\n\ndef _later():\n"
                               "    from pinpipe.spark import session  # noqa: F401  (a deliberate violation)\n")
    assert result.returncode != 0
    assert "the Spark stage in layers" in result.stdout and "BROKEN" in result.stdout
    assert "pinpipe.spark.class_archive -> pinpipe.spark.session" in result.stdout


def test_ruff_passes_on_the_tree_and_fails_on_an_unused_import(tmp_path):
    result = run("ruff", PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    tree = copy_of_the_tree(tmp_path)
    with open(tree / "pinpipe" / "common" / "schema.py", "a") as handle:
        handle.write("\nimport os\n")
    broken = run("ruff", tree)
    assert broken.returncode != 0 and "F401" in broken.stdout
