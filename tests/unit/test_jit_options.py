"""Which JIT and settings a new Spark session gets, by the size of the batch it will process."""
from __future__ import annotations

import argparse
import json

import pytest

from pinpipe.notebook_report import prestart_size
from pinpipe.source.datagen import DEFAULT_ROWS
from pinpipe.spark.session import (
    C1_ONLY_CODE,
    DRIVER_GC,
    INTERPRETED,
    INTERPRETED_INPUT_BYTES,
    JIT_DIRECTIVES,
    JIT_HUGE_METHODS,
    QUICK_JIT,
    SMALL_INPUT_BYTES,
    driver_java_options,
    expected_bytes,
    interpreted,
    is_small,
    jit_options,
)
from pinpipe.spark.spark_io import batch_bytes
from tests.helpers import write_generated_batch


def test_small_inputs_get_c1_only_and_large_or_unknown_ones_the_optimising_compiler():
    assert SMALL_INPUT_BYTES == 100 * 1024 * 1024
    assert jit_options(0).split() == [JIT_HUGE_METHODS, QUICK_JIT]
    assert jit_options(100 * 1024 * 1024 - 1).split() == [JIT_HUGE_METHODS, QUICK_JIT]
    assert jit_options(100 * 1024 * 1024).split() == [JIT_HUGE_METHODS]
    assert jit_options(None).split() == [JIT_HUGE_METHODS]


def test_small_given_decides_instead_of_the_size():
    assert jit_options(None, small=True).split() == [JIT_HUGE_METHODS, QUICK_JIT]
    assert jit_options(10**12, small=True).split() == [JIT_HUGE_METHODS, QUICK_JIT]
    assert jit_options(0, small=False).split() == [JIT_HUGE_METHODS]


def test_a_driver_with_the_optimising_compiler_leaves_the_code_of_one_query_to_c1():
    """A new driver JVM with C2 gets the compiler directives that exclude from it the code that lives for one query;
    one with C1 only has nothing to exclude. The file is HotSpot's directive format (JSON): Spark's generated
    classes (the name Spark's CodeGenerator compiles each under, its nested classes, all their methods), Janino,
    ASM and Java serialization, C2 excluded and nothing else set."""
    large = driver_java_options("4g", jit_options(None))
    assert large.startswith(f"-Xms4g {DRIVER_GC} {JIT_HUGE_METHODS} {C1_ONLY_CODE}")
    assert f'-XX:CompilerDirectivesFile="{JIT_DIRECTIVES}"' in C1_ONLY_CODE
    assert "-XX:+UnlockDiagnosticVMOptions" in C1_ONLY_CODE  # the directives file is a diagnostic option
    small = driver_java_options("1g", jit_options(0))
    assert small.startswith(f"-Xms1g {DRIVER_GC} {JIT_HUGE_METHODS} {QUICK_JIT}")
    assert "CompilerDirectivesFile" not in small and "UnlockDiagnosticVMOptions" not in small
    [directive] = json.loads(JIT_DIRECTIVES.read_text())
    assert directive["c2"] == {"Exclude": True} and set(directive) == {"match", "c2"}
    assert set(directive["match"]) == {"org/apache/spark/sql/catalyst/expressions/GeneratedClass*.*",
                                       "org/codehaus/janino/*.*", "org/codehaus/commons/compiler/*.*",
                                       "org/apache/xbean/asm9/*.*", "java/io/Object*.*"}


def test_a_batch_under_8_mb_is_interpreted_and_a_larger_or_unknown_one_generates_code():
    assert INTERPRETED_INPUT_BYTES == 8 * 1024 * 1024
    assert INTERPRETED == {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
    assert interpreted(0) and interpreted(8 * 1024 * 1024 - 1)
    assert not interpreted(8 * 1024 * 1024) and not interpreted(None)


def test_a_batch_is_small_below_100_mb_and_an_unknown_size_is_not():
    assert is_small(0) and is_small(100 * 1024 * 1024 - 1)
    assert not is_small(100 * 1024 * 1024) and not is_small(None)


def test_batch_bytes_adds_up_the_three_files_and_part_file_folders(tmp_path):
    (tmp_path / "pin_data.csv").write_bytes(b"x" * 10)
    (tmp_path / "geo_data.csv").write_bytes(b"x" * 20)
    assert batch_bytes(str(tmp_path)) is None  # user_data.csv missing: size unknown
    parts = tmp_path / "user_data.csv"
    parts.mkdir()
    (parts / "part-0.csv").write_bytes(b"x" * 300)
    (parts / "sub").mkdir()
    (parts / "sub" / "part-1.csv").write_bytes(b"x" * 4000)
    assert batch_bytes(str(tmp_path)) == 10 + 20 + 300 + 4000


def test_the_csv_size_of_a_triplet_is_what_the_extractor_writes_for_the_source_rows(tmp_path):
    """expected_bytes sizes a JVM started before its batch exists: it must match what the extractor writes for the
    rows the source holds (the generator's), within a few per cent."""
    write_generated_batch(tmp_path, DEFAULT_ROWS, seed=3)
    written = batch_bytes(str(tmp_path))
    assert abs(expected_bytes(DEFAULT_ROWS) - written) < 0.05 * written


@pytest.mark.parametrize(("value", "small"), [
    ("small", True), ("large", False),
    ("500", True), ("100000", True),  # bench/.data/100000: 44 MB of CSV
    ("1000000", False)])              # bench/.data/1000000: 442 MB
def test_an_early_session_is_tuned_for_the_batch_size_it_is_told(value, small):
    assert prestart_size(value) is small


@pytest.mark.parametrize("value", ["0", "-5", "12k", "medium", ""])
def test_an_early_session_size_that_is_neither_a_size_nor_a_count_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError, match="small, large or a positive number of triplets"):
        prestart_size(value)
