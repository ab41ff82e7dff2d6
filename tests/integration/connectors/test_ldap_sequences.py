"""LDAP sequences through the whole runner (processes, Kafka, MongoDB, slapd): a threshold stop
writes nothing to the directory (checked with ldapsearch), validate -> restart writes, cancel
writes nothing, and a wrong bind password fails with a reason that never holds it."""

import uuid
from typing import Any

import ldap
import pytest
from provisioning_common.commands import (
    CancelJob,
    CommandData,
    RestartJob,
    ValidateThreshold,
    ValidateThresholdData,
)
from provisioning_common.events import (
    JobCanceled,
    JobCompleted,
    JobFailed,
    SequenceBlocked,
    SequenceCompleted,
    SequenceFailed,
    SequencePlanned,
    ThresholdValidated,
)
from sequence_runner.adapters.mongo_plans import MongoPlanRepository

from tests.integration.connectors.conftest import WRONG_PASSWORD, Directory, LdapEngineRig
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

SOURCE = "/provisioning/job-api"


def people_definition(
    base_dn: str, thresholds: dict[str, Any], connection: str = "directory", **extra: Any
) -> dict[str, Any]:
    return {
        "id": "ldap-people",
        "name": "People into the directory",
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {
                    "type": "ldap",
                    "connection": connection,
                    "base_dn": base_dn,
                    "rdn_attribute": "uid",
                    "object_classes": ["inetOrgPerson"],
                    **extra,
                },
                "key": "uid",
                "mapping": {"uid": "id", "cn": "name", "sn": "last"},
                "delete_missing": True,
                "thresholds": {"delete": {"count": 100}, **thresholds},
            }
        ],
    }


def people(count: int) -> dict[str, list[dict[str, Any]]]:
    return {"people": [{"id": f"p{i:03}", "name": f"P {i}", "last": "P"} for i in range(count)]}


def uids(directory: Directory, base_dn: str) -> list[str]:
    listing = directory.ldapsearch(base_dn, "(objectClass=inetOrgPerson)", "uid")
    return sorted(
        line.split(": ", 1)[1] for line in listing.splitlines() if line.startswith("uid:")
    )


def binds(directory: Directory, dn: str, password: str) -> bool:
    conn = ldap.initialize(directory.url)
    try:
        conn.simple_bind_s(dn, password)
    except ldap.INVALID_CREDENTIALS:
        return False
    conn.unbind_s()
    return True


def command_data() -> CommandData:
    return CommandData(command_id=str(uuid.uuid4()), requested_by="alice")


async def status(rig: LdapEngineRig, job_id: str, wanted: str) -> None:
    async def reached() -> bool | None:
        run = await rig.run(job_id)
        return True if run["status"] == wanted else None

    await eventually(reached, what=f"job {job_id} at {wanted}")


async def test_a_threshold_stop_writes_nothing_then_validate_and_restart_write_it(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    job_id = await ldap_engine.submit(
        people_definition(base_dn, {"create": {"count": 5}}), people(8)
    )
    (blocked,) = await ldap_engine.events.wait_for(job_id, SequenceBlocked)
    await status(ldap_engine, job_id, "THRESHOLD")
    assert uids(directory, base_dn) == []  # the server's own client: nothing written

    await ldap_engine.command(
        ValidateThreshold(
            source=SOURCE,
            subject=job_id,
            data=ValidateThresholdData(
                command_id=str(uuid.uuid4()), requested_by="alice", plan_id=blocked.data.plan_id
            ),
        )
    )
    await ldap_engine.events.wait_for(job_id, ThresholdValidated)
    await status(ldap_engine, job_id, "VALIDATED")
    assert uids(directory, base_dn) == []
    await ldap_engine.command(RestartJob(source=SOURCE, subject=job_id, data=command_data()))
    await ldap_engine.events.wait_for(job_id, JobCompleted)
    assert uids(directory, base_dn) == [f"p{i:03}" for i in range(8)]


async def test_a_canceled_job_leaves_the_directory_as_it_was(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    job_id = await ldap_engine.submit(
        people_definition(base_dn, {"create": {"count": 3}}), people(4)
    )
    await ldap_engine.events.wait_for(job_id, SequenceBlocked)
    await status(ldap_engine, job_id, "THRESHOLD")  # the runner took the block in
    await ldap_engine.command(CancelJob(source=SOURCE, subject=job_id, data=command_data()))
    await ldap_engine.events.wait_for(job_id, JobCanceled)
    assert uids(directory, base_dn) == []


async def test_disables_stop_at_the_delete_threshold_and_are_written_once_approved(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    definition = people_definition(
        base_dn, {"create": {"count": 100}, "delete": {"count": 2}}, deprovision="disable"
    )
    first = await ldap_engine.submit(definition, people(5))
    await ldap_engine.events.wait_for(first, JobCompleted)
    leaver = f"uid=p004,{base_dn}"
    directory.admin().modify_s(leaver, [(ldap.MOD_REPLACE, "userPassword", [b"s3cret-P4"])])
    assert binds(directory, leaver, "s3cret-P4")
    before = directory.ldapsearch(base_dn, "(objectClass=*)", "*", "pwdAccountLockedTime")

    second = await ldap_engine.submit(definition, people(2))
    (planned,) = await ldap_engine.events.wait_for(second, SequencePlanned)
    (blocked,) = await ldap_engine.events.wait_for(second, SequenceBlocked)
    await status(ldap_engine, second, "THRESHOLD")
    # Disables are their own count, and the delete threshold is held against them.
    counts = planned.data.counts
    assert (counts.delete, counts.disable) == (0, 3)
    assert (blocked.data.threshold.action, blocked.data.threshold.actual) == ("delete", 3)
    stored = [
        change
        async for batch in MongoPlanRepository(ldap_engine.database).changes(
            blocked.data.plan_id, 1000
        )
        for change in batch
    ]
    assert sorted((c.action, c.dn) for c in stored) == [
        ("disable", f"uid=p00{i},{base_dn}") for i in (2, 3, 4)
    ]
    # Nothing disabled before an operator approved: the directory is as it was.
    assert directory.ldapsearch(base_dn, "(objectClass=*)", "*", "pwdAccountLockedTime") == before
    assert binds(directory, leaver, "s3cret-P4")

    await ldap_engine.command(
        ValidateThreshold(
            source=SOURCE,
            subject=second,
            data=ValidateThresholdData(
                command_id=str(uuid.uuid4()), requested_by="alice", plan_id=blocked.data.plan_id
            ),
        )
    )
    (validated,) = await ldap_engine.events.wait_for(second, ThresholdValidated)
    assert (validated.data.approval.delete, validated.data.approval.disable) == (0, 3)
    await status(ldap_engine, second, "VALIDATED")
    await ldap_engine.command(RestartJob(source=SOURCE, subject=second, data=command_data()))
    (completed,) = await ldap_engine.events.wait_for(second, SequenceCompleted)
    await ldap_engine.events.wait_for(second, JobCompleted)
    assert (completed.data.applied.delete, completed.data.applied.disable) == (0, 3)
    locked = directory.ldapsearch(base_dn, "(pwdAccountLockedTime=*)", "uid")
    assert sorted(line[5:] for line in locked.splitlines() if line.startswith("uid:")) == [
        "p002",
        "p003",
        "p004",
    ]
    assert len(uids(directory, base_dn)) == 5  # disabled, not deleted
    assert not binds(directory, leaver, "s3cret-P4")  # the lock is real: the account is locked


async def test_a_wrong_bind_password_fails_the_sequence_and_is_never_shown(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    job_id = await ldap_engine.submit(
        people_definition(base_dn, {"create": {"count": 5}}, connection="wrong-password"),
        people(1),
    )
    (failed,) = await ldap_engine.events.wait_for(job_id, SequenceFailed)
    await ldap_engine.events.wait_for(job_id, JobFailed)
    reason = failed.data.reason
    assert "connection 'wrong-password'" in reason
    assert "Invalid credentials" in reason
    everything = "".join(e.model_dump_json() for e in ldap_engine.events.events(job_id))
    assert WRONG_PASSWORD not in everything
    assert directory.password not in everything
    log = ldap_engine.runner.log_path.read_text(encoding="utf-8")
    assert "Invalid credentials" in log  # the failure is logged...
    assert WRONG_PASSWORD not in log  # ...without the password
    assert directory.password not in log


async def test_a_refused_entry_fails_with_its_dn_and_a_restart_finishes_without_doubles(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    name = base_dn.split(",", 1)[0].removeprefix("ou=")
    path = ldap_engine.data_dir / f"{name}.csv"
    # p001 has no surname: inetOrgPerson requires one, so the server refuses the entry.
    path.write_text("id,name,last\np000,P 0,P\np001,P 1,\np002,P 2,P\n", encoding="utf-8")
    definition = people_definition(base_dn, {"create": {"count": 100}})
    definition["sequences"][0]["source"] = {"type": "csv", "path": f"{name}.csv"}
    job_id = await ldap_engine.submit(definition, {})
    (failed,) = await ldap_engine.events.wait_for(job_id, SequenceFailed)
    assert f"uid=p001,{base_dn}" in failed.data.reason
    assert "Object class violation" in failed.data.reason
    assert uids(directory, base_dn) == ["p000", "p002"]  # what was written, exactly

    path.write_text("id,name,last\np000,P 0,P\np001,P 1,P\np002,P 2,P\n", encoding="utf-8")
    await status(ldap_engine, job_id, "FAILED")
    await ldap_engine.command(RestartJob(source=SOURCE, subject=job_id, data=command_data()))
    await ldap_engine.events.wait_for(job_id, JobCompleted)
    assert uids(directory, base_dn) == ["p000", "p001", "p002"]
    run = await ldap_engine.run(job_id)
    assert run["sequences"][0]["planned"]["create"] == 1  # planned again against the directory


async def test_a_search_cut_short_by_the_server_plans_nothing(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    filled = await ldap_engine.submit(
        people_definition(base_dn, {"create": {"count": 100}}), people(5)
    )
    await ldap_engine.events.wait_for(filled, JobCompleted)
    # The same sequence, with a source that lost everyone, read by an account the server cuts
    # at 3 entries: planned on that read, it would delete 3 people and miss 2.
    job_id = await ldap_engine.submit(
        people_definition(base_dn, {"create": {"count": 100}}, connection="size-limited"),
        people(0),
    )
    (failed,) = await ldap_engine.events.wait_for(job_id, SequenceFailed)
    assert "cut the search short" in failed.data.reason
    assert "Size limit exceeded" in failed.data.reason
    assert ldap_engine.events.events(job_id, SequenceBlocked) == []
    assert len(uids(directory, base_dn)) == 5
