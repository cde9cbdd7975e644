"""run_pipeline.sh's report of a failed stage, its `why` function run by bash on logs written here."""
from __future__ import annotations

import subprocess

from pinpipe.common.config import PROJECT_ROOT


def why(log) -> str:
    script = (PROJECT_ROOT / "run_pipeline.sh").read_text()
    function = script[script.index("why() {"):]
    function = function[:function.index("\n}\n") + 3]
    # under the script's own options: a failing grep or a closed pipe must not end it before it has said why
    return subprocess.run(["bash", "-c", f'set -euo pipefail\n{function}\nwhy "$1"', "why", str(log)],
                          capture_output=True, text=True, check=True).stdout


def test_a_failed_stage_shows_its_own_error_not_the_java_noise_before_it(tmp_path):
    log = tmp_path / "stream.log"
    noise = [f"\tat java.base/java.util.regex.Pattern$Branch.match(Pattern.java:{n})" for n in range(40)]
    log.write_text("\n".join(["starting", "error: a first complaint", *noise,
                              "error: stream_processing_spark.ipynb failed in cell 5: RecordsDeleted: query ...",
                              "the executed notebook, with the traceback, is stream_data/report.ipynb", ""]))
    assert why(log).splitlines() == [
        "error: stream_processing_spark.ipynb failed in cell 5: RecordsDeleted: query ...",
        "the executed notebook, with the traceback, is stream_data/report.ipynb"]
    log.write_text("Error: cannot connect to PostgreSQL at 127.0.0.1:1/nothing\n")  # the poster's capital E
    assert why(log) == "Error: cannot connect to PostgreSQL at 127.0.0.1:1/nothing\n"


def test_a_long_error_section_is_cut_to_25_lines(tmp_path):
    log = tmp_path / "notebook.log"
    log.write_text("error: it failed\n" + "".join(f"\tat frame {n} {'x' * 200}\n" for n in range(5000)))
    assert len(why(log).splitlines()) == 25


def test_without_an_error_line_the_last_lines_are_shown(tmp_path):
    log = tmp_path / "poster.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert why(log).splitlines() == [f"line {n}" for n in range(75, 100)]
    assert why(tmp_path / "missing.log") == ""
