"""JSON request bodies read as text, the way the intake reads a job request from Kafka."""

import json
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute


class JsonTextRequest(Request):
    """A request whose JSON body is parsed by pydantic's parser instead of `json.loads`.

    `json.loads` takes "\\ud800" (a lone surrogate) as a string, which is no text: it fails
    later, where it is hashed, stored in MongoDB, published or even echoed in a 422, each a
    500. pydantic's parser refuses it, as it refuses bytes that are not UTF-8, with FastAPI's
    usual 422 for a body that is not JSON.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body)
            except ValueError as error:
                raise json.JSONDecodeError(str(error), body.decode(errors="replace"), 0) from None
        return self._json


class JsonTextRoute(APIRoute):
    """The route class of every router that takes a body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def as_text(request: Request) -> Response:
            return await handler(JsonTextRequest(request.scope, request.receive))

        return as_text
