"""A broker outage must not fill the logs: aiokafka's ERROR every 100 ms is rate-limited."""

import io
import json
import logging

from provisioning_common.logs import JsonFormatter, RepeatedClientLogFilter


def _handler(clock: list[float]) -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(RepeatedClientLogFilter(every_seconds=30, monotonic=lambda: clock[0]))
    return handler, out


def test_a_minute_of_reconnect_errors_is_three_warnings() -> None:
    clock = [0.0]
    handler, out = _handler(clock)
    client = logging.getLogger("aiokafka.client")
    client.addHandler(handler)
    client.propagate = False
    try:
        for _ in range(600):  # one every 0.1 s for a minute
            clock[0] += 0.1
            client.error("Unable connect to node with id %s: %s", 1, "Connect call failed")
    finally:
        client.removeHandler(handler)
        client.propagate = True
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert 2 <= len(lines) <= 3
    assert {line["level"] for line in lines} == {"WARNING"}
    assert "more like it" in lines[-1]["message"]


def test_the_services_own_lines_are_never_held_back() -> None:
    clock = [0.0]
    handler, out = _handler(clock)
    ours = logging.getLogger("sequence_runner.engine_test")
    ours.addHandler(handler)
    ours.propagate = False
    try:
        for _ in range(5):
            ours.error("sequence %s failed", 0)
    finally:
        ours.removeHandler(handler)
        ours.propagate = True
    assert len(out.getvalue().splitlines()) == 5


def test_faststreams_consumer_errors_are_rate_limited_under_the_services_broker_logger() -> None:
    clock = [0.0]
    handler, out = _handler(clock)
    broker_log = logging.getLogger("sequence_runner.broker")
    broker_log.addHandler(handler)
    broker_log.propagate = False
    try:
        for _ in range(12):  # faststream's consumer loop: one every 5 s for a minute
            clock[0] += 5
            broker_log.error("Kafka error occurred", exc_info=ConnectionError("broker away"))
    finally:
        broker_log.removeHandler(handler)
        broker_log.propagate = True
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    assert {line["level"] for line in lines} == {"WARNING"}
