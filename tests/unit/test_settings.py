"""Settings from the environment: a value that is not usable is named in one line, not a pydantic traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pinpipe.common.config import PROJECT_ROOT, SettingsError, cli_settings, get_settings


def test_each_unusable_setting_is_named_with_its_value_and_the_reason(monkeypatch):
    monkeypatch.setenv("POSTER_PORT", "70000")
    monkeypatch.setenv("DELIVERY_TIMEOUT_S", "soon")
    with pytest.raises(SettingsError) as raised:
        get_settings()
    assert str(raised.value) == ("POSTER_PORT='70000': Input should be less than or equal to 65535; "
                                 "DELIVERY_TIMEOUT_S='soon': Input should be a valid number, unable to parse string "
                                 "as a number")


def test_a_command_ends_with_one_error_line(monkeypatch):
    monkeypatch.setenv("POSTER_PORT", "abc")
    with pytest.raises(SystemExit) as raised:
        cli_settings()
    assert raised.value.code == ("error: invalid setting POSTER_PORT='abc': Input should be a valid integer, unable "
                                 "to parse string as an integer")


@pytest.mark.parametrize("command", [["data_poster.py", "--count", "1"], ["batch_extractor.py", "--count", "1"]])
def test_the_entry_points_say_it_and_exit_1(command):
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / command[0]), *command[1:]], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "POSTER_PORT": "abc"})
    assert done.returncode == 1 and done.stderr == ("error: invalid setting POSTER_PORT='abc': Input should be a "
                                                    "valid integer, unable to parse string as an integer\n")
