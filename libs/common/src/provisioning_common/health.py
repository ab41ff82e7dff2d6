"""Liveness, readiness and Prometheus metrics of a headless consumer process (runner, guard,
projector), served on one small HTTP port next to the FastStream app.

- `GET /livez`: 200 while the process's event loop answers (an orchestrator restarts it if not).
- `GET /readyz`: 200 once the consumer has joined its group and been given its partitions (none
  is fine: a replica beyond the partition count is ready and idle), and the broker answers a
  ping; 503 otherwise, with the reason.
- `GET /metrics`: Prometheus text: FastStream's middleware metrics (messages received, handled,
  their durations and errors, per topic), the consumer's lag per partition, and the counters of
  `provisioning_common.metrics` (dead letters, plans, applies, sequence durations; the projector
counts the dead letters its fold sends).
"""

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 3.0


class HealthSettings(BaseSettings):
    """Read from HEALTH_* variables: where the process serves its probes and metrics."""

    model_config = SettingsConfigDict(env_prefix="HEALTH_", extra="ignore")

    host: str = Field(default="0.0.0.0", description="Address the health and metrics port binds.")
    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of /livez, /readyz and /metrics; unset: the service's own default "
        "(runner 8081, guard 8082, projector 8083); 0: no health server.",
    )

    def port_or(self, default: int) -> int:
        return default if self.port is None else self.port


class ConsumerHealth:
    """What the probes of one consumer process look at: its broker and the broker's subscribers."""

    def __init__(self, service: str, broker: KafkaBroker) -> None:
        self.service = service
        self.broker = broker
        self.registry = CollectorRegistry()
        self.started = False
        self.stopping = False
        self._lag = Gauge(
            "provisioning_consumer_lag",
            "Messages not yet consumed, per topic and partition assigned to this process.",
            ["topic", "partition"],
            registry=self.registry,
        )

    def _consumers(self) -> list[AIOKafkaConsumer | None]:
        return [getattr(subscriber, "consumer", None) for subscriber in self.broker.subscribers]

    async def readiness(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "stopping"
        if not self.started or any(c is None for c in self._consumers()):
            return False, "the consumers are not started yet"
        try:
            answered = await self.broker.ping(timeout=PING_TIMEOUT_SECONDS)
        except Exception as error:
            return False, f"kafka does not answer: {error}"
        return (True, "ok") if answered else (False, "kafka does not answer")

    async def refresh_lag(self) -> None:
        self._lag.clear()
        for consumer in self._consumers():
            if consumer is None:
                continue
            for tp in consumer.assignment():
                await self._measure(consumer, tp)

    async def _measure(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        end = consumer.highwater(tp)
        if end is None:
            return  # no fetch yet on this partition: nothing known
        with contextlib.suppress(Exception):
            position = await consumer.position(tp)
            self._lag.labels(tp.topic, str(tp.partition)).set(max(0, end - position))

    async def metrics(self) -> bytes:
        await self.refresh_lag()
        return generate_latest(REGISTRY) + generate_latest(self.registry)


class HealthServer:
    """A tiny HTTP/1.1 server (asyncio streams): three GET routes need no web framework."""

    def __init__(self, health: ConsumerHealth, host: str, port: int) -> None:
        self.health = health
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if self.port == 0:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        where = f"http://{self.host}:{self.port}"
        logger.info("%s: /livez, /readyz and /metrics on %s", self.health.service, where)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers: none is needed
                parts = request.decode("latin-1").split()
                path = parts[1].split("?", 1)[0] if len(parts) > 1 else ""
                status, content_type, body = await self._answer(parts[0] if parts else "", path)
                head = (
                    f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                writer.write(head.encode("latin-1") + body)
                await writer.drain()
        except Exception as error:  # a probe that hangs up early must not disturb the service
            logger.debug("health request failed: %s", error)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path in ("/livez", "/healthz"):
            return "200 OK", "application/json", _json({"status": "ok"})
        if path == "/readyz":
            ready, reason = await self.health.readiness()
            status = "200 OK" if ready else "503 Service Unavailable"
            return status, "application/json", _json({"status": reason})
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, await self.health.metrics()
        return "404 Not Found", "text/plain", b"not found\n"


def _json(body: dict[str, Any]) -> bytes:
    return (json.dumps(body) + "\n").encode()


def serve_health(app: FastStream, broker: KafkaBroker, service: str, default_port: int) -> None:
    """Give a FastStream consumer app its probes and metrics (HEALTH_PORT, or `default_port`).

    FastStream's Prometheus middleware is added to the broker; the server starts with the app
    (live at once, ready once the consumers run) and says "not ready" as soon as it stops.
    """
    settings = HealthSettings()
    port = settings.port_or(default_port)
    if port == 0:
        return
    health = ConsumerHealth(service, broker)
    broker.add_middleware(KafkaPrometheusMiddleware(registry=health.registry, app_name=service))
    server = HealthServer(health, settings.host, port)

    async def start() -> None:
        await server.start()

    async def ready() -> None:
        health.started = True

    async def stopping() -> None:
        health.stopping = True

    async def stop() -> None:
        await server.stop()

    app.on_startup(start)
    app.after_startup(ready)
    app.on_shutdown(stopping)
    app.after_shutdown(stop)


__all__ = ["ConsumerHealth", "HealthServer", "HealthSettings", "serve_health"]
