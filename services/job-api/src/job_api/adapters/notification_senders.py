"""The two ways a recipient is told: an HTTP POST signed with its secret, and an email."""

import asyncio
import smtplib
from email.message import EmailMessage

import httpx
from pydantic import SecretStr

from job_api.domain.notifications import (
    DELIVERY_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    signature,
)


class NotConfiguredError(Exception):
    """The system lacks what a delivery needs (a secret, an SMTP server): retrying won't help."""


class DeliveryRefusedError(Exception):
    """The receiver answered, but not with success."""


class WebhookSender:
    def __init__(self, secrets: dict[str, SecretStr], timeout_seconds: float = 10.0) -> None:
        self._secrets = secrets
        self._timeout = timeout_seconds

    async def send(
        self, url: str, recipient: str, payload: bytes, *, event_id: str, delivery_id: str
    ) -> str:
        secret = self._secrets.get(recipient)
        if secret is None:
            # Unsigned bodies would teach receivers to accept anything: we send none.
            raise NotConfiguredError(
                f"no webhook secret for recipient {recipient!r} (PROVISIONING_WEBHOOK_SECRETS)"
            )
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret.get_secret_value(), payload),
            EVENT_ID_HEADER: event_id,
            DELIVERY_HEADER: delivery_id,
        }
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            answer = await client.post(url, content=payload, headers=headers)
        if not answer.is_success:
            raise DeliveryRefusedError(f"{url} answered {answer.status_code}")
        return f"{url} answered {answer.status_code}"


class EmailSender:
    def __init__(self, host: str | None, port: int, timeout_seconds: float = 10.0) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout_seconds

    async def send(self, message: EmailMessage) -> str:
        if not self._host:
            raise NotConfiguredError("no SMTP server configured (PROVISIONING_SMTP_HOST)")
        await asyncio.to_thread(self._send, message)
        return f"accepted by {self._host}:{self._port}"

    def _send(self, message: EmailMessage) -> None:
        assert self._host
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            smtp.send_message(message)
