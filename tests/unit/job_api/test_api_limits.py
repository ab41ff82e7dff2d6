"""The request body limit, by declared length and by what actually arrives."""

import json
from typing import Any

import pytest
from job_api.api.limits import BodySizeLimitMiddleware, BodyTooLarge
from starlette.types import Message, Receive, Scope, Send

LIMIT = 100


class EchoLength:
    """An app that reads the whole body, as a route with a body does."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


def chunks(*bodies: bytes) -> Receive:
    messages = [
        {"type": "http.request", "body": body, "more_body": i < len(bodies) - 1}
        for i, body in enumerate(bodies)
    ]

    async def receive() -> Message:
        return messages.pop(0)

    return receive


class Sent:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> Any:
        return self.messages[0]["status"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


async def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    app, sent = EchoLength(), Sent()
    middleware = BodySizeLimitMiddleware(app, max_bytes=LIMIT)
    await middleware(scope([(b"content-length", b"101")]), chunks(b"x" * 101), sent)
    assert not app.called
    assert sent.status == 413
    assert json.loads(sent.body) == {
        "detail": "request body too large: at most 100 bytes are accepted"
    }


async def test_a_body_within_the_limit_passes() -> None:
    app, sent = EchoLength(), Sent()
    middleware = BodySizeLimitMiddleware(app, max_bytes=LIMIT)
    await middleware(scope([(b"content-length", b"100")]), chunks(b"x" * 60, b"x" * 40), sent)
    assert (sent.status, sent.body) == (200, b"100")


async def test_a_streamed_body_is_stopped_when_it_grows_past_the_limit() -> None:
    middleware = BodySizeLimitMiddleware(EchoLength(), max_bytes=LIMIT)
    with pytest.raises(BodyTooLarge) as refused:
        await middleware(scope([]), chunks(b"x" * 60, b"x" * 60), Sent())
    assert refused.value.status_code == 413


async def test_a_lying_content_length_does_not_get_past() -> None:
    middleware = BodySizeLimitMiddleware(EchoLength(), max_bytes=LIMIT)
    with pytest.raises(BodyTooLarge):
        await middleware(scope([(b"content-length", b"10")]), chunks(b"x" * 200), Sent())


async def test_non_http_scopes_pass_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await BodySizeLimitMiddleware(app, max_bytes=LIMIT)({"type": "lifespan"}, chunks(b""), Sent())
    assert seen == ["lifespan"]
