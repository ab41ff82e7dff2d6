"""The port the guard's handlers publish their decisions through."""

from typing import Protocol

from provisioning_common.envelope import Envelope


class EventPublisher(Protocol):
    async def publish(self, event: Envelope) -> None: ...
