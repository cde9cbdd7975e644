"""Shared by the benchmark scripts."""
from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path

from pinpipe.common.config import PROJECT_ROOT
from pinpipe.common.topics import fresh_topics  # noqa: F401  (three new co-partitioned topics per run)


def revision_tree(stack: contextlib.ExitStack, rev: str) -> Path:
    """A temporary git worktree of revision `rev` (for --before), removed when `stack` closes."""
    tree = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-before-"))) / "tree"
    subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)
    stack.callback(subprocess.run, ["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(tree)],
                   capture_output=True)
    return tree
