"""scim2-server as its own process for the tests (the "SaaS app"), and a proxy in front of it
that answers 429 to every third request, as a rate-limited SaaS API does."""

import http.client
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from scripts.scim_app import scim_app_argv
from tests.support.processes import VENV_BIN, port_answers, start_service


@dataclass(frozen=True)
class ScimApp:
    """One tenant of the server: its own Users and Groups, under its own base URL."""

    base_url: str
    token: str

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """A plain HTTP GET, the check that does not go through the connector."""
        answer = httpx.get(
            f"{self.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    def all(self, resource: str) -> list[dict[str, Any]]:
        found = self.get(f"/{resource}", count=10_000)
        assert found["totalResults"] == len(found.get("Resources", [])), found
        resources: list[dict[str, Any]] = found.get("Resources", [])
        return resources

    def post(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.base_url}/{resource}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        answer.raise_for_status()
        created: dict[str, Any] = answer.json()
        return created

    def delete(self, resource: str, id: str) -> None:
        answer = httpx.delete(
            f"{self.base_url}/{resource}/{id}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        answer.raise_for_status()


@dataclass(frozen=True)
class ScimServer:
    host: str
    port: int
    token: str

    def tenant(self, name: str) -> ScimApp:
        # --dynamic-tenants: the first request to /<name> makes an empty tenant.
        return ScimApp(f"http://{self.host}:{self.port}/{name}/v2", self.token)


@contextmanager
def scim_server(port: int, log_path: Path, token: str | None = None) -> Iterator[ScimServer]:
    token = token or secrets.token_urlsafe(24)
    # The same command line as `make run`'s demo app (scripts/scim_app.py), with a tenant per test.
    argv = scim_app_argv(VENV_BIN, port, token, dynamic_tenants=True)
    with start_service(
        "scim2-server",
        argv,
        {},
        lambda: port_answers("127.0.0.1", port),
        log_path,
        timeout=30,
        check_clean_exit=False,
    ):
        yield ScimServer("127.0.0.1", port, token)


@dataclass
class ThrottlingProxy:
    """Forwards to the server, but answers every `every`-th request 429 with Retry-After."""

    upstream: str  # http://host:port
    every: int = 3
    retry_after: str | None = "1"
    status: int = 429
    requests: int = 0
    forwarded: list[tuple[str, str, int, dict[str, Any] | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def throttled(self) -> bool:
        with self.lock:
            self.requests += 1
            return self.requests % self.every == 0


@contextmanager
def throttling_proxy(
    upstream: str, every: int = 3, status: int = 429, retry_after: str | None = "1"
) -> Iterator[tuple[str, ThrottlingProxy]]:
    state = ThrottlingProxy(upstream, every, retry_after, status)
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if state.throttled():
                payload = json.dumps(
                    {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": str(state.status),
                        "detail": "Too many requests",
                    }
                ).encode()
                self.send_response(state.status)
                if state.retry_after is not None:
                    self.send_header("Retry-After", state.retry_after)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            with state.lock:
                state.forwarded.append(
                    (self.command, self.path, answer.status, json.loads(body) if body else None)
                )
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "server", "date"):
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _relay  # noqa: N815 - http.server's names

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tests read `state`, not a log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
