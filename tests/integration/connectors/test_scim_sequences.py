"""SCIM sequences through the whole runner (processes, Kafka, MongoDB, scim2-server): a
threshold stop writes nothing to the app (checked with a plain HTTP GET), validate -> restart
writes, and a wrong bearer token fails the sequence with a reason that never holds it."""

import uuid
from typing import Any

import pytest
from provisioning_common.commands import (
    CommandData,
    RestartJob,
    ValidateThreshold,
    ValidateThresholdData,
)
from provisioning_common.events import (
    JobCompleted,
    JobFailed,
    SequenceBlocked,
    SequenceFailed,
    ThresholdValidated,
)

from tests.integration.connectors.scim_engine import WRONG_TOKEN, ScimEngineRig
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

SOURCE = "/provisioning/job-api"


def people_definition(connection: str, thresholds: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "scim-people",
        "name": "People into the SaaS app",
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {
                    "type": "scim",
                    "connection": connection,
                    "resource": "User",
                    "attributes": {"uid": "userName", "cn": "displayName"},
                    **extra,
                },
                "key": "uid",
                "mapping": {"uid": "id", "cn": "name", "familyName": "last"},
                "delete_missing": True,
                "thresholds": {"delete": {"count": 100}, **thresholds},
            }
        ],
    }


def people(count: int) -> dict[str, list[dict[str, Any]]]:
    return {"people": [{"id": f"p{i:03}", "name": f"P {i}", "last": "P"} for i in range(count)]}


async def status(rig: ScimEngineRig, job_id: str, wanted: str) -> None:
    async def reached() -> bool | None:
        run = await rig.run(job_id)
        return True if run["status"] == wanted else None

    await eventually(reached, what=f"job {job_id} at {wanted}")


def user_names(rig: ScimEngineRig, connection: str) -> list[str]:
    return sorted(u["userName"] for u in rig.apps[connection].all("Users"))


async def test_a_threshold_stop_writes_nothing_then_validate_and_restart_write_it(
    scim_engine: ScimEngineRig,
) -> None:
    job_id = await scim_engine.submit(
        people_definition("app-1", {"create": {"count": 5}}), people(8)
    )
    (blocked,) = await scim_engine.events.wait_for(job_id, SequenceBlocked)
    await status(scim_engine, job_id, "THRESHOLD")
    assert user_names(scim_engine, "app-1") == []  # a plain GET: nothing written

    await scim_engine.command(
        ValidateThreshold(
            source=SOURCE,
            subject=job_id,
            data=ValidateThresholdData(
                command_id=str(uuid.uuid4()), requested_by="alice", plan_id=blocked.data.plan_id
            ),
        )
    )
    await scim_engine.events.wait_for(job_id, ThresholdValidated)
    assert user_names(scim_engine, "app-1") == []
    await scim_engine.command(
        RestartJob(
            source=SOURCE,
            subject=job_id,
            data=CommandData(command_id=str(uuid.uuid4()), requested_by="alice"),
        )
    )
    await scim_engine.events.wait_for(job_id, JobCompleted)
    assert user_names(scim_engine, "app-1") == [f"p{i:03}" for i in range(8)]
    (user,) = [u for u in scim_engine.apps["app-1"].all("Users") if u["userName"] == "p003"]
    assert (user["displayName"], user["name"]["familyName"]) == ("P 3", "P")


async def test_disables_stop_at_the_delete_threshold_and_nothing_is_disabled_before(
    scim_engine: ScimEngineRig,
) -> None:
    definition = people_definition(
        "app-2", {"create": {"count": 100}, "delete": {"count": 2}}, deprovision="disable"
    )
    first = await scim_engine.submit(definition, people(5))
    await scim_engine.events.wait_for(first, JobCompleted)
    second = await scim_engine.submit(definition, people(2))
    (blocked,) = await scim_engine.events.wait_for(second, SequenceBlocked)
    await status(scim_engine, second, "THRESHOLD")
    assert (blocked.data.threshold.action, blocked.data.threshold.actual) == ("delete", 3)
    assert all(u["active"] for u in scim_engine.apps["app-2"].all("Users"))


async def test_a_wrong_token_fails_the_sequence_and_is_never_shown(
    scim_engine: ScimEngineRig,
) -> None:
    job_id = await scim_engine.submit(
        people_definition("wrong-token", {"create": {"count": 5}}), people(1)
    )
    (failed,) = await scim_engine.events.wait_for(job_id, SequenceFailed)
    await scim_engine.events.wait_for(job_id, JobFailed)
    reason = failed.data.reason
    assert "connection 'wrong-token'" in reason
    assert "401" in reason
    everything = "".join(e.model_dump_json() for e in scim_engine.events.events(job_id))
    assert WRONG_TOKEN not in everything
    log = scim_engine.runner.log_path.read_text(encoding="utf-8")
    assert "401" in log  # the failure is logged...
    assert WRONG_TOKEN not in log  # ...without the token
    assert scim_engine.runner.env["TEST_SCIM_TOKEN"] not in log
