"""A job request over HTTP is answered within a deadline, whatever the broker and the database
do; past it the answer is 504, saying the request may or may not have been taken. With the
broker away a publish waits for Kafka's request timeout (30 s), with the database away every
read waits for server selection (10 s), and an upstream system that gave up first could not
tell a request taken from one refused.

Only `POST /api/v1/jobs`, because stopping it half way is safe: the request ledger records a
request before publishing it and publishes again when the same request id comes back, and a
JobCreated published twice is one job (the runner keeps its first run, the projector its first
instance). The operator's commands are not cut short: archive and delete change the read model
before they publish, and only their own error handling puts it back.
"""

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SUBMISSIONS = "/api/v1/jobs"


def _overdue_detail(seconds: float) -> str:
    return (
        f"the job request was not taken within {seconds:g} s (the broker or the database is "
        "slow or away); it may or may not have been: send it again with the same request_id, "
        "which never makes a second job"
    )


class SubmissionDeadlineMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != SUBMISSIONS
        ):
            await self.app(scope, receive, send)
            return
        answered = False

        async def send_tracked(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, send_tracked)
        except TimeoutError:
            if answered:  # too late to say anything else: the answer has begun
                raise
            body = json.dumps({"detail": _overdue_detail(self.seconds)}).encode()
            await send(
                {
                    "type": "http.response.start",
                    # 504, not 503: a 503 says nothing was taken, and this one may have been
                    # (a publish cut short can still reach the broker).
                    "status": 504,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", b"5"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
