"""Kafka and MongoDB connection settings, with the adapters services build clients from."""

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo import AsyncMongoClient

from provisioning_common.retrying import RetryPolicy


class KafkaSettings(BaseSettings):
    """Read from KAFKA_* variables, so one variable points every service at a cluster."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated host:port list of the Kafka brokers.",
    )
    topic_partitions: int = Field(
        default=3, ge=1, description="Partitions of each topic when the system creates it."
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of each topic when the system creates it."
    )
    client_id: str = Field(
        default="provisioning", description="Client id prefix sent to the brokers (shows in logs)."
    )
    topic_prefix: str = Field(
        default="",
        description="Prepended to every topic name; lets several systems (or test runs) share "
        "one cluster without reading each other's messages.",
    )
    consumer_group_suffix: str = Field(
        default="",
        description="Appended to every consumer group id, for the same reason as topic_prefix.",
    )
    request_timeout_ms: int = Field(
        default=30_000, ge=1000, description="How long a request to a broker may take."
    )
    consumer_give_up_after: int = Field(
        default=5,
        ge=1,
        description="Failures of one message's handler (other than the database or the broker "
        "being away, which are waited out) before it is dead-lettered and the consumer moves on.",
    )
    consumer_max_backoff_seconds: float = Field(
        default=30.0, gt=0, description="Longest pause between two tries of one message."
    )

    consumer_max_poll_interval_ms: int = Field(
        default=300_000,
        ge=1000,
        description="Longest pause between two polls before the broker takes the consumer's "
        "partitions away (handlers return fast: long work runs in background tasks).",
    )
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="How long a consumer that stopped heartbeating (a killed process) keeps "
        "its partitions before the group gives them to another replica.",
    )

    def topic(self, name: str) -> str:
        """The real name of one of the topics in provisioning_common.topics."""
        return f"{self.topic_prefix}{name}"

    def group_id(self, service: str) -> str:
        """The consumer group of a service, e.g. group_id("sequence-runner")."""
        return f"{service}{self.consumer_group_suffix}"

    def consumer_retry_policy(self) -> RetryPolicy:
        """How every consumer of the system retries a message its handler failed on."""
        return RetryPolicy(
            give_up_after=self.consumer_give_up_after,
            max_delay_seconds=self.consumer_max_backoff_seconds,
        )

    def consumer_params(self) -> dict[str, Any]:
        """Keyword arguments of a faststream subscriber: how long a member may stay silent."""
        return {
            "max_poll_interval_ms": self.consumer_max_poll_interval_ms,
            "session_timeout_ms": self.consumer_session_timeout_ms,
            # The broker refuses a heartbeat interval of a third of the session or more.
            "heartbeat_interval_ms": min(3000, self.consumer_session_timeout_ms // 3),
        }

    def to_faststream_params(self) -> dict[str, Any]:
        """Keyword arguments of faststream's KafkaBroker: idempotent producer, acks from all ISR."""
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "enable_idempotence": True,
            "acks": "all",
            "request_timeout_ms": self.request_timeout_ms,
        }

    def to_aiokafka_params(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka's admin client, producer and consumer."""
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
        }


class MongoSettings(BaseSettings):
    """Read from MONGO_* variables."""

    model_config = SettingsConfigDict(env_prefix="MONGO_", extra="ignore")

    uri: str = Field(
        default="mongodb://127.0.0.1:27017",
        description="MongoDB connection string (a replica set or a single server).",
    )
    database: str = Field(
        default="provisioning",
        description="Database of the system's own collections (runs, plans, read model, audit).",
    )
    server_selection_timeout_ms: int = Field(
        default=10_000, ge=100, description="How long to wait for a reachable server."
    )

    def client(self) -> AsyncMongoClient[dict[str, Any]]:
        """A new async client; it connects lazily, on first use, never at import time."""
        return AsyncMongoClient(
            self.uri,
            serverSelectionTimeoutMS=self.server_selection_timeout_ms,
            tz_aware=True,
        )
