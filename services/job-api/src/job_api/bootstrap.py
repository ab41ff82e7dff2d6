"""The composition root of job-api: every client and repository, built from one settings object."""

import logging
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from provisioning_common.kafka import build_broker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from job_api.adapters.audit import AuditLog
from job_api.adapters.commands import CommandPublisher
from job_api.adapters.definitions import DefinitionRepository
from job_api.adapters.job_events import KafkaJobEvents
from job_api.adapters.job_instances import JobInstanceStore
from job_api.adapters.request_ledger import IntakeRecords, RequestLedger
from job_api.auth.keys import ApiKeyStore
from job_api.auth.sessions import SessionStore
from job_api.handlers.job_actions import JobActions
from job_api.metrics import ApiMetrics
from job_api.settings import JobApiSettings

logger = logging.getLogger(__name__)


@dataclass
class JobApiServices:
    settings: JobApiSettings
    broker: KafkaBroker
    mongo: AsyncMongoClient[dict[str, Any]]
    db: AsyncDatabase[dict[str, Any]]
    definitions: DefinitionRepository
    job_instances: JobInstanceStore
    request_ledger: RequestLedger
    api_keys: ApiKeyStore
    sessions: SessionStore
    audit: AuditLog
    commands: CommandPublisher
    job_events: KafkaJobEvents
    metrics: ApiMetrics = field(default_factory=ApiMetrics)

    @property
    def job_actions(self) -> JobActions:
        """The operator's actions on job instances (handlers/job_actions.py)."""
        return JobActions(self.job_instances, self.commands, self.request_ledger)

    @property
    def intake_records(self) -> IntakeRecords:
        """What the intake (API and Kafka) decides a request's fate from."""
        return IntakeRecords(self.job_instances, self.request_ledger)

    async def ensure_indexes(self) -> None:
        await self.definitions.ensure_indexes()
        await self.job_instances.ensure_indexes()
        await self.request_ledger.ensure_indexes()
        await self.api_keys.ensure_indexes()
        await self.sessions.ensure_indexes()
        await self.audit.ensure_indexes()

    async def ensure_bootstrap_admin(self) -> None:
        """The admin key of PROVISIONING_ADMIN_API_KEY, named "admin", exists with that value."""
        if self.settings.admin_api_key is None:
            return
        record, changed = await self.api_keys.upsert_bootstrap_admin(
            self.settings.admin_api_key.get_secret_value()
        )
        if changed:
            # A new value replaces the old one: nobody signed in with the old one stays in.
            closed = await self.sessions.delete_for_key(record.id)
            logger.info("bootstrap admin key %r set (%d old sessions closed)", record.name, closed)


def build_services(settings: JobApiSettings) -> JobApiServices:
    """Clients connect lazily: the broker when the app starts it, Mongo on first use."""
    # faststream's own logger would print plain text; ours is JSON with the job id. Its line per
    # message is DEBUG: the intake logs each request's outcome itself.
    broker = build_broker(
        settings.kafka, logger=logging.getLogger("job_api.broker"), log_level=logging.DEBUG
    )
    mongo = settings.mongo.client()
    db = mongo[settings.mongo.database]
    return JobApiServices(
        settings=settings,
        broker=broker,
        mongo=mongo,
        db=db,
        definitions=DefinitionRepository(db),
        job_instances=JobInstanceStore(db),
        request_ledger=RequestLedger(db),
        api_keys=ApiKeyStore(db),
        sessions=SessionStore(db),
        audit=AuditLog(db),
        commands=CommandPublisher(broker, settings.kafka),
        job_events=KafkaJobEvents(broker, settings.kafka),
    )
