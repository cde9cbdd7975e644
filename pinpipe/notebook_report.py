"""Run a notebook headless (papermill) and render the executed copy to HTML, in one process.

What `papermill IN OUT -p ...` followed by `jupyter nbconvert --to html OUT` do, less their second Python start:
nbconvert's exporter is imported and its templates loaded in a thread while the kernel runs, so the HTML costs
about 0.3 s after the last cell instead of a 3 s process (measured on the 2-core machine, README "Speed").
A notebook that fails is still rendered, so its report shows the error; the exit status is then 1.

    python -m pinpipe.notebook_report batch_processing_spark.ipynb batch_data/report.ipynb \\
        --html batch_data/report.html -p input_dir batch_data
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path


class _Exporter(threading.Thread):
    """nbconvert's HTML exporter, imported and warmed up on `notebook` (the input) in the background."""

    def __init__(self, notebook: Path) -> None:
        super().__init__(name="html-exporter", daemon=True)
        self.notebook = notebook
        self.exporter = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            from nbconvert import HTMLExporter

            exporter = HTMLExporter()
            exporter.from_filename(str(self.notebook))  # loads and compiles the templates
            self.exporter = exporter
        except Exception as error:  # reported when the HTML is wanted
            self.error = error

    def render(self, executed: Path, html: Path) -> None:
        self.join()
        if self.exporter is None:
            raise RuntimeError(f"cannot load nbconvert's HTML exporter: {self.error}")
        body, _ = self.exporter.from_filename(str(executed))
        tmp = html.with_name(html.name + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(html)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path, help="the notebook to run")
    parser.add_argument("output", type=Path, help="where the executed notebook goes")
    parser.add_argument("--html", type=Path, help="also render the executed notebook to this HTML file")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a text parameter for the notebook's parameters cell (repeatable)")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"no such notebook: {args.notebook}")

    exporter = _Exporter(args.notebook) if args.html else None
    if exporter:
        exporter.start()
    import papermill

    failed = None
    try:
        papermill.execute_notebook(str(args.notebook), str(args.output), parameters=dict(args.parameter),
                                   log_output=False, progress_bar=False)
    except papermill.PapermillExecutionError as error:
        failed = error
    if exporter:
        try:
            exporter.render(args.output, args.html)
        except Exception as error:
            print(f"warning: could not render {args.html}: {error}; the executed notebook is {args.output}",
                  file=sys.stderr)
    if failed is not None:
        print(f"error: {args.notebook} failed in cell {failed.exec_count}: {failed.ename}: {failed.evalue}\n"
              f"the executed notebook, with the traceback, is {args.output}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
