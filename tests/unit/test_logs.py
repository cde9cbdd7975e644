"""The log set-up the command-line entry points share."""
from __future__ import annotations

import logging

from pinpipe.common.logs import setup_logging


def test_kafka_pythons_slow_step_warning_is_dropped_and_its_other_warnings_kept(caplog):
    """kafka-python 3's "blocking the event loop" warning fires whenever two busy cores delay its network loop;
    its other warnings still reach the log."""
    setup_logging()
    selector = logging.getLogger("kafka.net.selector")
    with caplog.at_level(logging.WARNING):
        selector.warning("Task <Task fetch> ran for 0.330s (>0.100s threshold). It is blocking the event loop -- "
                         "likely a tight sync loop inside a coroutine. Other pollers will time out.")
        selector.warning("Task <Task fetch> left RUNNING after step; demoting to UNSCHEDULED")
        logging.getLogger("kafka.conn").warning("a broker went away")
    assert [record.getMessage() for record in caplog.records] == [
        "Task <Task fetch> left RUNNING after step; demoting to UNSCHEDULED", "a broker went away"]
