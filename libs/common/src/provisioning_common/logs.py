"""Structured JSON logs, with the job id on every line that is about a job."""

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

current_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_job_id", default=None
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None) or current_job_id.get()
        if job_id:
            line["job_id"] = job_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# aiokafka retries a lost broker every 100 ms (retry_backoff_ms) and logs each failure at ERROR:
# "Unable connect to node with id 1", "Failed fetch messages from 1", "Unable to update metadata"
# ... ten lines a second from every service for the length of an outage.
_CLIENT_LOGGERS = ("aiokafka", "faststream")
# faststream logs its consumer's errors through the broker's logger, which each service names.
_FASTSTREAM_OUTAGE = "Kafka error occurred"
# Those that only say the broker is away: WARNING, since the clients wait it out by themselves.
_OUTAGE_TEMPLATES = (
    "Unable connect to",
    "Unable to update metadata",
    "Failed fetch messages",
    "Failed fetch offsets",
    "Heartbeat",
    "Group Coordinator Request failed",
    "OffsetCommit failed",
    _FASTSTREAM_OUTAGE,
)


class RepeatedClientLogFilter(logging.Filter):
    """The Kafka clients' repeated lines: the first one of a kind, then one per `every_seconds`
    saying how many were left out; outage lines lowered from ERROR to WARNING."""

    def __init__(
        self, every_seconds: float = 30.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every_seconds = every_seconds
        self._monotonic = monotonic
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        template = str(record.msg)
        if not (record.name.startswith(_CLIENT_LOGGERS) or template == _FASTSTREAM_OUTAGE):
            return True
        if record.levelno >= logging.ERROR and template.startswith(_OUTAGE_TEMPLATES):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        key = (record.name, template)
        now = self._monotonic()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.every_seconds:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        left_out = last[1] if last is not None else 0
        self._seen[key] = (now, 0)
        if left_out:
            record.msg = f"{template} ({left_out} more like it in {self.every_seconds:.0f}s)"
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RepeatedClientLogFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every rebalance step at INFO; keep the service's own lines readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
