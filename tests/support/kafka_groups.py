"""Readiness of a Kafka consumer service: its consumer group is stable with members."""

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from provisioning_common.settings import KafkaSettings


async def group_has_members(settings: KafkaSettings, group_id: str) -> bool:
    admin = AIOKafkaAdminClient(**settings.to_aiokafka_params())
    await admin.start()
    try:
        described: list[Any] = await admin.describe_consumer_groups([group_id])
    except KafkaError:
        # A brand-new broker has no group coordinator until its offsets topic exists.
        return False
    finally:
        await admin.close()
    for group in described:
        # aiokafka answers with the raw DescribeGroups response: groups of
        # (error_code, group_id, state, protocol_type, protocol, members, ...).
        for entry in getattr(group, "groups", []):
            state, members = entry[2], entry[5]
            if state == "Stable" and len(members) > 0:
                return True
    return False
