"""Prometheus metrics of the HTTP API: requests by route and status, commands, listings."""

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "ApiMetrics", "MetricsMiddleware"]

access_log = logging.getLogger("job_api.access")


class ApiMetrics:
    """One registry per app, so several apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "job_api_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "job_api_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.commands = Counter(
            "job_api_commands_published",
            "Operator commands and events published, by message type.",
            ["type"],
            registry=self.registry,
        )
        self.job_requests = Counter(
            "job_api_job_requests",
            "Job requests submitted over HTTP, by outcome (accepted, rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.jobs_listed = Counter(
            "job_api_job_instances_listed",
            "Job instances returned by GET /api/v1/jobs.",
            registry=self.registry,
        )
        self.job_pages = Counter(
            "job_api_job_instance_pages",
            "Pages of job instances served, by paging mode (page, cursor).",
            ["mode"],
            registry=self.registry,
        )
        self.audit_entries = Counter(
            "job_api_audit_entries",
            "Operator actions recorded in the audit trail, by action and outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request under its route template, so ids don't explode the labels,
    and writes the access log line, with the job id of a call about one job."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            job_id = scope.get("path_params", {}).get("job_id")
            access_log.info(
                "%s %s %d %.1fms",
                method,
                scope.get("path", ""),
                status,
                elapsed * 1000,
                extra={"job_id": str(job_id)} if job_id is not None else None,
            )
