"""One SCIM 2.0 service provider, as the connectors talk to it: scim2-client over httpx2,
paced to the connection's request rate, 429 and 503 waited out as the server asks.

The waits are decided at the HTTP transport because only there is the response's
`Retry-After` header visible: scim2-client turns a failure into an exception or an `Error`
that does not carry the headers. The bearer token is set on the HTTP client only; no message
of this module or of the errors it raises carries it."""

import asyncio
import email.utils
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_client.errors import RequestNetworkException, SCIMClientException
from scim2_models import Error
from scim2_models.exceptions import SCIMException

from sequence_runner.connections import ScimConnection

logger = logging.getLogger(__name__)

TRANSIENT = (429, 503)


class ScimUnavailableError(Exception):
    """The server could not be reached, or kept answering 429/503 past the attempts."""


@dataclass(frozen=True)
class ScimAnswer:
    status: int
    payload: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The server's own explanation of a failure (RFC 7644 §3.12 `detail`)."""
        if self.payload is None:
            return f"HTTP {self.status}"
        try:
            error = Error.model_validate(self.payload)
        except ValueError:
            return f"HTTP {self.status}"
        kind = f" ({error.scim_type})" if error.scim_type else ""
        return f"HTTP {self.status}{kind}: {error.detail or 'no detail'}"


class RequestPacer:
    """At most `per_second` requests start per second on one connection; a 429 or 503 holds
    every request of the connection back for the time the server asked."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._paused_until = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval  # reserved before sleeping: no two share a slot
        if slot > now:
            await asyncio.sleep(slot - now)
        # A hold-off may be set (or lengthened) while this request slept: wait it out too.
        while (pause := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110 - a deadline, not an event
            await asyncio.sleep(pause)

    def hold_off(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PacedRetryingTransport(httpx2.AsyncBaseTransport):
    """Paces every request and sends a 429 or 503 again after the server's Retry-After (else
    a doubling back-off), up to `attempts` tries; the last answer goes up as it came."""

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        pacer: RequestPacer,
        *,
        attempts: int,
        max_retry_after: float,
        first_backoff: float = 0.5,
    ) -> None:
        self._inner = inner
        self._pacer = pacer
        self._attempts = attempts
        self._max_retry_after = max_retry_after
        self._first_backoff = first_backoff
        self.retried = 0  # answers waited out, for tests and the log

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        for attempt in range(1, self._attempts + 1):
            await self._pacer.wait()
            response = await self._inner.handle_async_request(request)
            if response.status_code not in TRANSIENT or attempt == self._attempts:
                return response
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            delay = asked if asked is not None else self._first_backoff * 2 ** (attempt - 1)
            if delay > self._max_retry_after:
                return response
            await response.aclose()
            self._pacer.hold_off(delay)
            self.retried += 1
            logger.warning(
                "%s %s answered %d; sending it again in %.1fs (attempt %d of %d)",
                request.method,
                request.url.path,
                response.status_code,
                delay,
                attempt + 1,
                self._attempts,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._inner.aclose()


class ScimService:
    """The requests the SCIM connectors make, on one shared HTTP client per connection."""

    def __init__(self, settings: ScimConnection) -> None:
        self.base_url = settings.base_url.rstrip("/")
        self.page_size = settings.page_size
        self._settings = settings
        self._concurrency = asyncio.Semaphore(settings.concurrency)
        self.transport = PacedRetryingTransport(
            httpx2.AsyncHTTPTransport(),
            RequestPacer(settings.requests_per_second),
            attempts=settings.retry_attempts,
            max_retry_after=settings.max_retry_after_seconds,
        )
        self._http: httpx2.AsyncClient | None = None
        self._client: AsyncSCIMClient | None = None
        self._discovering = asyncio.Lock()

    async def _scim(self) -> AsyncSCIMClient:
        async with self._discovering:
            if self._client is None:
                self._http = httpx2.AsyncClient(
                    base_url=self.base_url + "/",
                    headers={
                        "Authorization": f"Bearer {self._settings.token.get_secret_value()}",
                        "Accept": "application/scim+json",
                    },
                    transport=self.transport,
                    timeout=self._settings.timeout_seconds,
                )
                # Payloads are built and read as dicts (the records are flat and mapped by
                # path), so scim2-client checks status codes and content types, not models.
                client = AsyncSCIMClient(
                    self._http,
                    check_request_payload=False,
                    check_response_payload=False,
                    raise_scim_errors=False,
                )
                await self._call(client.discover)
                self._client = client
            return self._client

    async def _call(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await operation(*args, **kwargs)
        except RequestNetworkException as error:
            raise ScimUnavailableError(f"{self.base_url} unreachable: {error}") from None
        except SCIMClientException as error:
            status = getattr(getattr(error, "source", None), "status_code", None)
            if status in TRANSIENT:
                raise ScimUnavailableError(self._still_throttled(status)) from None
            raise ScimUnavailableError(f"{self.base_url}: {error}") from None
        except SCIMException as error:
            # Discovery reads its answers as models, and raises the server's error.
            if error.status in TRANSIENT:
                raise ScimUnavailableError(self._still_throttled(error.status)) from None
            raise ScimUnavailableError(f"{self.base_url}: HTTP {error.status}: {error}") from None

    def _still_throttled(self, status: int) -> str:
        return (
            f"{self.base_url} still answered {status} after "
            f"{self._settings.retry_attempts} attempts"
        )

    async def _send(self, method: str, *args: Any, **kwargs: Any) -> ScimAnswer:
        client = await self._scim()
        async with self._concurrency:
            payload = await self._call(
                getattr(client, method), *args, expected_status_codes=None, **kwargs
            )
        if isinstance(payload, dict) and Error.__schema__ in payload.get("schemas", []):
            try:
                status = int(payload.get("status", 500))
            except ValueError:
                status = 500
            if status in TRANSIENT:
                raise ScimUnavailableError(self._still_throttled(status))
            return ScimAnswer(status, payload)
        return ScimAnswer(200, payload if isinstance(payload, dict) else None)

    async def page(
        self, resource: str, start: int, count: int, scim_filter: str | None = None
    ) -> ScimAnswer:
        parameters: dict[str, Any] = {"startIndex": start, "count": count}
        if scim_filter is not None:
            parameters["filter"] = scim_filter
        return await self._send("query", resource, query_parameters=parameters)

    async def find(self, resource: str, scim_filter: str) -> ScimAnswer:
        return await self._send("query", resource, query_parameters={"filter": scim_filter})

    async def create(self, endpoint: str, payload: dict[str, Any]) -> ScimAnswer:
        return await self._send("create", resource=payload, url=endpoint)

    async def modify(self, resource: str, id: str, operations: list[dict[str, Any]]) -> ScimAnswer:
        patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
        return await self._send("modify", resource, id, {**patch, "Operations": operations})

    async def delete(self, resource: str, id: str) -> ScimAnswer:
        return await self._send("delete", resource, id)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None
        self._client = None
