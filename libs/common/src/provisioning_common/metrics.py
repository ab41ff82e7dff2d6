"""The system's own Prometheus metrics, shared by every consumer process (in the default
registry, one process being one service): what faststream's middleware cannot see."""

from prometheus_client import Counter, Histogram

MESSAGES_HANDLED = Counter(
    "provisioning_messages_handled_total",
    "Messages a consumer handled, by topic and whether they meant something to it.",
    ["topic", "outcome"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "provisioning_messages_dead_lettered_total",
    "Messages a consumer gave up on and sent to <topic>.dlq, by topic.",
    ["topic"],
)
SEQUENCE_WORK = Counter(
    "provisioning_sequence_work_total",
    "Plans and applies the runner did, by phase (planning, applying) and outcome.",
    ["phase", "outcome"],
)
SEQUENCE_WORK_SECONDS = Histogram(
    "provisioning_sequence_work_seconds",
    "How long planning or applying one sequence took, by phase.",
    ["phase"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

__all__ = ["MESSAGES_DEAD_LETTERED", "MESSAGES_HANDLED", "SEQUENCE_WORK", "SEQUENCE_WORK_SECONDS"]
