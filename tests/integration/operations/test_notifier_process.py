"""The job-api-notifier process on the real broker and database, telling a real HTTP receiver
(which checks the signature) and a real SMTP server (aiosmtpd): once per event, across a crash
and two replicas that each read every event."""

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from provisioning_common.definition_options import Recipient
from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import JobCompleted, JobFailed, JobFailedData
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.support.kafka_groups import group_has_members
from tests.support.processes import REPO, ServiceProcess, free_port, service_argv, spawn
from tests.support.waiting import eventually
from tests.unit.job_api.test_projection import SOURCE, at, blocked, created, two_sequence_definition

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

LOGS = REPO / "test-results" / "integration-logs"
SECRET = "whsec-test-4f1c9a"


class Receiver:
    """A webhook receiver: checks each body's signature, refuses the first try of each
    delivery with a 503 (so the notifier must retry), records what it accepted."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.deliveries: list[str] = []
        self.bad_signatures = 0
        self.refused: set[str] = set()
        self.lock = threading.Lock()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            delivery = self.headers["X-Provisioning-Delivery"]
            with state.lock:
                if not hmac.compare_digest(expected, self.headers["X-Provisioning-Signature"]):
                    state.bad_signatures += 1
                    code = 401
                elif delivery not in state.refused:
                    state.refused.add(delivery)
                    code = 503
                else:
                    state.accepted.append(json.loads(body))
                    state.deliveries.append(delivery)
                    code = 204
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def notified_definition(webhook_url: str) -> JobDefinition:
    base = two_sequence_definition("hr-notify")
    return base.model_copy(
        update={
            "recipients": [
                Recipient(name="ops", webhook_url=webhook_url, email="iam-team@example.com")
            ]
        }
    )


def failed(job_id: str, t: float) -> JobFailed:
    return JobFailed(
        source=SOURCE,
        subject=job_id,
        time=at(t),
        data=JobFailedData(index=1, reason="contractors: line 2: no uid"),
    )


async def test_each_stop_is_told_once_across_a_crash_and_two_replicas(
    infra: Infra,
    unique_name: str,
    receiver: tuple[Receiver, str],
    smtp: tuple[Mailbox, int],
    mongo_client: AsyncMongoClient[Any],
) -> None:
    hook, url = receiver
    mailbox, smtp_port = smtp
    kafka = KafkaSettings(bootstrap_servers=infra.kafka_bootstrap, topic_prefix=f"{unique_name}.")
    await ensure_topics(kafka)
    broker = build_broker(kafka)
    await broker.start()
    definition = notified_definition(url)
    job_a = created("notify-a", definition)
    job_b = created("notify-b", definition)
    job_c = created("notify-c", definition)
    events: list[Envelope] = [
        job_a,
        job_b,
        job_c,
        blocked(job_a.subject, 5),
        failed(job_b.subject, 6),
        # Not told: notify_on is threshold and failed by default.
        JobCompleted(source=SOURCE, subject=job_c.subject, time=at(7)),
    ]
    topic = kafka.topic(JOB_EVENTS)
    for event in events:
        await publish_envelope(broker, topic, event)

    def env(group_suffix: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "KAFKA_CONSUMER_GROUP_SUFFIX": group_suffix,
            "MONGO_URI": infra.mongo_uri,
            "MONGO_DATABASE": unique_name,
            "PROVISIONING_SMTP_HOST": "127.0.0.1",
            "PROVISIONING_SMTP_PORT": str(smtp_port),
            "PROVISIONING_WEBHOOK_SECRETS": json.dumps({"ops": SECRET}),
            "PROVISIONING_NOTIFY_FIRST_DELAY_SECONDS": "0.1",
            # The events are stamped days ago (the projection tests' clock).
            "PROVISIONING_NOTIFY_MAX_AGE_HOURS": "100000",
            "PROVISIONING_CONSOLE_BASE_URL": "https://provisioning.example.com",
        }

    def start(name: str, group_suffix: str) -> ServiceProcess:
        log = LOGS / f"{unique_name}-{name}.log"
        return spawn(name, service_argv("job-api-notifier"), env(group_suffix), log)

    async def told(webhooks: int, emails: int) -> bool:
        return len(hook.deliveries) >= webhooks and len(mailbox.messages) >= emails

    first = start("notifier-1", f".{unique_name}.1")
    try:
        await eventually(lambda: told(2, 2), timeout=60, what="the first two stops told")
    finally:
        first.kill_hard()  # a crash: whatever it had not committed is read again

    # Two replicas in groups of their own: each reads every event again from the start.
    second = start("notifier-2", f".{unique_name}.2")
    third = start("notifier-3", f".{unique_name}.3")
    try:
        for group in (f"job-api-notifier.{unique_name}.2", f"job-api-notifier.{unique_name}.3"):

            async def joined(group: str = group) -> bool:
                return await group_has_members(kafka, group)

            await eventually(joined, timeout=60, what=f"group {group}")
        again = blocked(job_a.subject, 20, plan_id="plan-1")  # a new stop after a restart
        await publish_envelope(broker, topic, again)
        await eventually(lambda: told(3, 3), timeout=60, what="the new stop told")
        await asyncio.sleep(3)  # time for a duplicate to show, if there were one
    finally:
        for service in (second, third):
            code = await asyncio.to_thread(service.stop)
            assert code in (0, -15), service.log_tail()
        await broker.stop()

    assert hook.bad_signatures == 0
    assert sorted(hook.deliveries) == sorted(set(hook.deliveries)), "a webhook sent twice"
    told_about = sorted((b["job_id"], b["status"], b["event_id"]) for b in hook.accepted)
    assert told_about == sorted(
        [
            (job_a.subject, "THRESHOLD", events[3].id),
            (job_b.subject, "FAILED", events[4].id),
            (job_a.subject, "THRESHOLD", again.id),
        ]
    )
    block = next(b for b in hook.accepted if b["event_id"] == events[3].id)
    assert block["sequence"] == {"index": 0, "name": "employees"}
    assert block["threshold"]["action"] == "delete"
    assert block["link"] == f"https://provisioning.example.com/#/jobs/{job_a.subject}"

    assert len(mailbox.messages) == 3
    subjects = sorted(m["Subject"] for m in mailbox.messages)
    assert subjects == [
        "[provisioning] hr-notify: job FAILED",
        "[provisioning] hr-notify: job THRESHOLD",
        "[provisioning] hr-notify: job THRESHOLD",
    ]
    text = next(m for m in mailbox.messages if "FAILED" in m["Subject"]).get_content()
    assert "contractors: line 2: no uid" in text
    assert f"https://provisioning.example.com/#/jobs/{job_b.subject}" in text

    # The attempts are stored: the webhook's refused first try, then its success.
    db = mongo_client[unique_name]
    webhook_a = await db["notifications"].find_one({"_id": f"{events[3].id}:ops:webhook"})
    assert webhook_a is not None
    assert webhook_a["status"] == "sent"
    assert [a["ok"] for a in webhook_a["attempts"]] == [False, True]
    assert "503" in webhook_a["attempts"][0]["detail"]
    # The secret is in no stored document and no log line.
    async for doc in db["notifications"].find():
        assert SECRET not in json.dumps(doc, default=str)
    for service in (first, second, third):
        assert SECRET not in service.log_tail(lines=100_000)
