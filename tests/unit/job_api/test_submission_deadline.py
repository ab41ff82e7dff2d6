"""A job request is answered within the submission deadline, and only job requests are cut
short: a command that changes the read model before publishing must run to its end."""

import asyncio
import json
import time

from job_api.api.deadline import SubmissionDeadlineMiddleware
from starlette.types import Message, Receive, Scope, Send

DEADLINE = 0.2


class Stuck:
    """An app waiting on a broker or a database that does not answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self.seconds)
        self.finished = True
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def call(app: Stuck, method: str, path: str) -> tuple[list[Message], float]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    started = time.monotonic()
    middleware = SubmissionDeadlineMiddleware(app, seconds=DEADLINE)
    await middleware({"type": "http", "method": method, "path": path}, receive, send)
    return sent, time.monotonic() - started


async def test_a_job_request_stuck_past_the_deadline_is_answered_504_saying_to_resend() -> None:
    sent, took = await call(Stuck(5.0), "POST", "/api/v1/jobs")
    assert took < 2.0
    assert sent[0]["status"] == 504
    assert (b"retry-after", b"5") in sent[0]["headers"]
    detail = json.loads(sent[1]["body"])["detail"]
    assert "may or may not have been" in detail
    assert "same request_id" in detail


async def test_a_job_request_within_the_deadline_is_answered_as_the_app_says() -> None:
    app = Stuck(0.01)
    sent, _ = await call(app, "POST", "/api/v1/jobs/")
    assert app.finished
    assert sent[0]["status"] == 202


async def test_other_calls_are_not_cut_short() -> None:
    # An archive changes the read model before it publishes: stopping it half way would leave
    # the two apart.
    app = Stuck(DEADLINE * 2)
    sent, _ = await call(app, "POST", "/api/v1/jobs/some-id/archive")
    assert app.finished
    assert sent[0]["status"] == 202
