"""The report notebook, executed headless by papermill wherever people run Spark (local classic, a Spark
Connect server standing in for Databricks serverless, a standalone cluster, pyspark 3.5), each run's nine
result files compared with the independent pandas computation."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from pinpipe.common.config import PROJECT_ROOT
from tests import spark_services
from tests.integration.test_spark_crosscheck import batch_dir, normalise, pandas_results  # noqa: F401

NOTEBOOK = PROJECT_ROOT / "batch_processing_spark.ipynb"
SPARK35_REQUIREMENTS = PROJECT_ROOT / "tests" / "spark35" / "requirements.txt"
# Kept between runs like Kafka's jars (one per requirements file), so only a machine's first run builds it.
SPARK35_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pinpipe" / (
    "venv-spark35-" + hashlib.sha256(SPARK35_REQUIREMENTS.read_bytes()).hexdigest()[:12])

EXPECTED_COLUMNS = {
    "q1_top_category_by_country": ["country", "category", "category_count"],
    "q2_category_posts_by_year": ["post_year", "category", "category_count"],
    "q3a_top_user_by_country": ["country", "poster_name", "follower_count"],
    "q3b_country_with_top_user": ["country", "follower_count"],
    "q4_top_category_by_age_group": ["age_group", "category", "category_count"],
    "q5_median_followers_by_age_group": ["age_group", "median_follower_count"],
    "q6_users_joined_by_year": ["post_year", "number_users_joined"],
    "q7_median_followers_by_join_year": ["post_year", "median_follower_count"],
    "q8_median_followers_by_age_group_and_join_year": ["age_group", "post_year", "median_follower_count"],
}

# Appended to every notebook run here: the quality table the save counted (DataFrame.observe) must be there, and
# equal to the one a pass of its own counts; the rules themselves are checked by hand in tests/unit/test_quality.py.
QUALITY_CHECK = '''
assert audit.counted_during_save is True, "the quality counts were not taken during the save"
from pinpipe.spark.quality import quality_report as _quality_report
_again = _quality_report(raw["pin"], raw["geo"], raw["user"])
assert quality_table.equals(_again), (quality_table, _again)
_changed = dict(zip(quality_table["rule"] + " " + quality_table["column"], quality_table["values_changed"]))
assert _changed["k/M suffix -> integer follower_count"] > 0 and _changed["placeholder -> null description"] > 0
print("quality table checked: counted during the save")
'''


def notebook_with(tmp_path, extra_cell: str | None):
    """The notebook with QUALITY_CHECK appended, and `extra_cell` (if any) right after its parameters cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if extra_cell is not None:
        spark_services.insert_after_parameters(nb, extra_cell)
    nb.cells.append(nbformat.v4.new_code_cell(QUALITY_CHECK))
    path = tmp_path / "notebook.ipynb"
    nbformat.write(nb, path)
    return path


def execute(tmp_path, input_dir, master, extra_cell=None, **parameters):
    output_dir = tmp_path / "out" / "results"
    papermill.execute_notebook(
        str(notebook_with(tmp_path, extra_cell)), str(tmp_path / "executed.ipynb"),
        parameters={"input_dir": str(input_dir), "output_dir": str(output_dir), "spark_master": master,
                    **parameters},
        kernel_name="python3", cwd=str(PROJECT_ROOT), progress_bar=False,
    )
    return output_dir


def assert_results_equal_pandas(output_dir, input_dir):
    assert "quality table checked" in (output_dir.parent.parent / "executed.ipynb").read_text()
    expected = pandas_results(input_dir)
    for name, columns in EXPECTED_COLUMNS.items():
        with open(output_dir / f"{name}.csv", encoding="utf-8", newline="") as handle:
            assert next(csv.reader(handle)) == columns, name
        got = pd.read_csv(output_dir / f"{name}.csv", keep_default_na=False)
        assert normalise(got, columns), name
        assert normalise(got, columns) == normalise(expected[name], columns), name
    summary = json.loads((output_dir / "summary.json").read_text())
    assert set(summary["result_rows"]) == set(EXPECTED_COLUMNS)
    # the cleaned tables' rows (counted during the save): one per record of each file
    records = {}
    for kind in ("pin", "geo", "user"):
        with open(Path(input_dir) / f"{kind}_data.csv", encoding="utf-8", newline="") as handle:
            records[kind] = sum(1 for _ in csv.reader(handle)) - 1
    assert summary["input_rows"] == records


@pytest.fixture(scope="module")
def lf_batch_dir(batch_dir, tmp_path_factory):  # noqa: F811
    """The same batch with LF line ends, as pandas, Excel or a Unix tool writes it."""
    path = tmp_path_factory.mktemp("lf-batch")
    for source in batch_dir.glob("*_data.csv"):
        with open(source, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        with open(path / source.name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
    assert b"\r\n" not in (path / "geo_data.csv").read_bytes()
    return path


def test_local_classic_session(batch_dir, tmp_path):  # noqa: F811
    output_dir = execute(tmp_path, batch_dir, "local[2]")
    assert_results_equal_pandas(output_dir, batch_dir)
    with open(output_dir / "q6_users_joined_by_year.csv", newline="") as handle:
        years = [row["post_year"] for row in csv.DictReader(handle)]
    assert years == ["2015", "2016", "2017"]  # integers, not 2015.0; generated joins span 2015-10..2017-10
    for kind in ("pin", "geo", "user"):
        assert any((tmp_path / "out" / "cleaned" / kind).glob("*.parquet"))
    assert "one partition per table (a small batch)" in (tmp_path / "executed.ipynb").read_text()
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert any("image/png" in out.get("data", {}) for cell in executed.cells for out in cell.get("outputs", []))


def test_spark_connect_as_serverless_stand_in_on_an_lf_batch(lf_batch_dir, tmp_path, monkeypatch):
    """No sparkContext, RDD, cache or settings but the time zone: what Databricks serverless allows."""
    monkeypatch.setenv("IS_SERVERLESS", "TRUE")  # detected, as on Databricks serverless
    with spark_services.connect_server(tmp_path) as url:
        output_dir = execute(tmp_path, lf_batch_dir, url, extra_cell=spark_services.SERVERLESS_GUARD)
    assert_results_equal_pandas(output_dir, lf_batch_dir)
    executed = (tmp_path / "executed.ipynb").read_text()
    assert "Spark Connect" in executed


def test_standalone_cluster_of_two_workers(batch_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    with spark_services.standalone_cluster(tmp_path) as url:
        # The plan for a large batch (shuffles and broadcasts between the executors), on this small one; the
        # other notebook tests run the small-batch plan (one partition per table).
        output_dir = execute(tmp_path, batch_dir, url, small=False)
    assert_results_equal_pandas(output_dir, batch_dir)
    executed = (tmp_path / "executed.ipynb").read_text()
    assert f"({url})" in executed and "partitions as read" in executed


@pytest.fixture(scope="module")
def spark35_python():
    """A second virtual environment with pyspark 3.5 (Databricks Runtime 16.4 LTS), built once per machine."""
    want = hashlib.sha256(SPARK35_REQUIREMENTS.read_bytes()).hexdigest()
    stamp = SPARK35_VENV / ".requirements.sha256"
    python = SPARK35_VENV / "bin" / "python"
    if not (python.exists() and stamp.exists() and stamp.read_text() == want):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(SPARK35_VENV)], check=True, timeout=120)
        # uv, which run_tests.sh installs into .venv, where it is (about 20 s here where pip took 30-45 s), without
        # its cache (pyspark is a source archive: uv would keep its 300 MB build); else, or if uv fails, pip.
        uv = Path(sys.executable).with_name("uv")
        installers = [[str(uv), "pip", "install", "-q", "--no-cache", "--python", str(python)]] if uv.exists() else []
        installers.append([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"])
        for installer in installers:
            with tempfile.TemporaryDirectory() as scratch:  # uv's lock files go with it, not left in /tmp
                result = subprocess.run([*installer, "-r", str(SPARK35_REQUIREMENTS)], capture_output=True,
                                        text=True, timeout=1200, env={**os.environ, "TMPDIR": scratch})
            if result.returncode == 0:
                break
        assert result.returncode == 0, f"building {SPARK35_VENV} failed:\n{result.stdout}\n{result.stderr}"
        stamp.write_text(want)
    return python


def test_pyspark_35(spark35_python, batch_dir, tmp_path):  # noqa: F811
    output_dir = tmp_path / "out" / "results"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PATH": f"{spark35_python.parent}:{os.environ['PATH']}"}
    env.pop("SPARK_HOME", None)
    result = subprocess.run(
        [str(spark35_python), "-m", "papermill", str(notebook_with(tmp_path, None)), str(tmp_path / "executed.ipynb"),
         "-k", "python3",
         "--cwd", str(PROJECT_ROOT), "--no-progress-bar", "-p", "input_dir", str(batch_dir),
         "-p", "output_dir", str(output_dir), "-p", "spark_master", "local[2]"],
        capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Spark 3.5." in (tmp_path / "executed.ipynb").read_text()
    assert_results_equal_pandas(output_dir, batch_dir)


def test_the_streaming_half_on_pyspark_35_says_it_needs_spark_4(spark35_python, tmp_path):
    """The stream checks records through VARIANT functions pyspark 3.5 lacks: the command line and the notebook
    stop with that said, before a Spark session starts or a connector is fetched for 3.5."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PATH": f"{spark35_python.parent}:{os.environ['PATH']}"}
    env.pop("SPARK_HOME", None)
    command = subprocess.run([str(spark35_python), "-m", "pinpipe.spark.streaming", "--output-dir",
                              str(tmp_path / "tables"), "--checkpoint-dir", str(tmp_path / "checkpoints")],
                             capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT_ROOT)
    assert command.returncode == 1, command.stderr[-3000:]
    assert command.stderr.startswith("error: the streaming half needs Spark 4.0 or later"), command.stderr[-3000:]
    assert "pyspark 3.5." in command.stderr and "try_parse_json" in command.stderr
    notebook = subprocess.run(
        [str(spark35_python), "-m", "papermill", str(PROJECT_ROOT / "stream_processing_spark.ipynb"),
         str(tmp_path / "stream.ipynb"), "-k", "python3", "--cwd", str(PROJECT_ROOT), "--no-progress-bar",
         "-p", "output_dir", str(tmp_path / "tables"), "-p", "checkpoint_dir", str(tmp_path / "checkpoints")],
        capture_output=True, text=True, timeout=300, env=env)
    assert notebook.returncode != 0 and "SparkTooOld" in notebook.stderr, notebook.stderr[-3000:]
    assert "needs Spark 4.0 or later" in notebook.stderr
    assert not (tmp_path / "tables").exists() and not (tmp_path / "checkpoints").exists()


def test_a_bad_input_stops_the_notebook_before_any_result(batch_dir, tmp_path):  # noqa: F811
    broken = tmp_path / "broken"
    broken.mkdir()
    for source in batch_dir.glob("*_data.csv"):
        (broken / source.name).write_bytes(source.read_bytes())
    (broken / "user_data.csv").write_bytes(b"idx,first_name,last_name,age,date_joined\r\n")
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        execute(tmp_path, broken, "local[2]")
    assert f"{broken}/user_data.csv: only a header row, no records" in str(caught.value)
    assert not (tmp_path / "out").exists()  # nothing computed, nothing written
