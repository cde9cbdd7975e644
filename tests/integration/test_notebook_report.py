"""pinpipe.notebook_report: a notebook run headless in a real kernel and rendered to HTML in one process."""
from __future__ import annotations

import subprocess
import sys

import nbformat


def notebook(path, *cells: str, parameters: str = "greeting = 'hello'"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(cell) for cell in cells)]
    nbformat.write(nb, path)
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pinpipe.notebook_report", *args], capture_output=True, text=True,
                          timeout=300)


def test_parameters_reach_the_notebook_and_the_report_shows_its_output(tmp_path):
    source = notebook(tmp_path / "in.ipynb", "print(greeting.upper() + ' from ' + where)",
                      parameters="greeting = 'hello'\nwhere = 'nowhere'")
    done = run(str(source), str(tmp_path / "out.ipynb"), "--html", str(tmp_path / "out.html"),
               "-p", "where", "the kernel")
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "HELLO from the kernel\n"
    html = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "HELLO from the kernel" in html
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failing_cell_exits_1_names_it_and_still_renders_the_error(tmp_path):
    source = notebook(tmp_path / "in.ipynb", "x = 1", "raise ValueError('no batch here')", "print('never')")
    done = run(str(source), str(tmp_path / "out.ipynb"), "--html", str(tmp_path / "out.html"))
    assert done.returncode == 1
    assert "failed in cell" in done.stderr and "ValueError: no batch here" in done.stderr
    assert str(tmp_path / "out.ipynb") in done.stderr
    assert "no batch here" in (tmp_path / "out.html").read_text(encoding="utf-8")
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert not executed.cells[-1].get("outputs")  # nothing ran after the failure


def test_a_missing_notebook_is_a_usage_error(tmp_path):
    done = run(str(tmp_path / "nope.ipynb"), str(tmp_path / "out.ipynb"))
    assert done.returncode == 2 and "no such notebook" in done.stderr
