"""Reverting an applied sequence on the LDAP target (slapd), through the whole runner: the
directory comes back entry by entry as it was before the sequence, read with python-ldap's
own search; an entry changed since is a conflict left alone."""

import uuid
from typing import Any

import ldap
import pytest
from provisioning_common.definitions import JobDefinition
from provisioning_common.events import (
    JobCompleted,
    JobCreated,
    JobCreatedData,
    RevertOf,
    SequencePlanned,
)
from provisioning_common.kafka import publish_envelope
from provisioning_common.topics import JOB_EVENTS

from tests.integration.connectors.conftest import Directory, LdapEngineRig
from tests.integration.connectors.test_ldap_sequences import people_definition

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

BEFORE = [
    {"id": "p000", "name": "Ada", "last": "Lovelace"},
    {"id": "p001", "name": "Alan", "last": "Turing"},
    {"id": "p002", "name": "Grace", "last": "Hopper"},
]
# p000 renamed (cn), p002 deleted (it left the source), p003 created.
AFTER = [
    {"id": "p000", "name": "Ada King", "last": "Lovelace"},
    {"id": "p001", "name": "Alan", "last": "Turing"},
    {"id": "p003", "name": "Edsger", "last": "Dijkstra"},
]


def entries(directory: Directory, base_dn: str) -> dict[str, dict[str, list[bytes]]]:
    """Every entry under the base, each attribute's values sorted: the directory's state."""
    conn = directory.admin()
    try:
        found = conn.search_s(base_dn, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["*"])
    finally:
        conn.unbind_s()
    return {dn.lower(): {a: sorted(v) for a, v in attrs.items()} for dn, attrs in found}


async def run(rig: LdapEngineRig, definition: dict[str, Any], rows: list[Any]) -> str:
    job_id = await rig.submit(definition, {"people": rows})
    await rig.events.wait_for(job_id, JobCompleted)
    return job_id


async def revert(
    rig: LdapEngineRig, definition: dict[str, Any], job_id: str, include_conflicts: bool = False
) -> tuple[str, SequencePlanned]:
    (planned,) = rig.events.events(job_id, SequencePlanned)
    revert_id = str(uuid.uuid4())
    created = JobCreated(
        source="/provisioning/job-api",
        subject=revert_id,
        data=JobCreatedData(
            request_id=f"revert-{revert_id}",
            definition=JobDefinition.model_validate(definition),
            origin="api",
            requested_by="admin",
            reverts=RevertOf(
                job_id=job_id,
                sequence_index=0,
                plan_id=planned.data.plan_id,
                include_conflicts=include_conflicts,
            ),
        ),
    )
    await publish_envelope(rig.broker, rig.kafka.topic(JOB_EVENTS), created)
    (revert_planned,) = await rig.events.wait_for(revert_id, SequencePlanned)
    await rig.events.wait_for(revert_id, JobCompleted)
    return revert_id, revert_planned


async def test_a_revert_restores_the_directory_entry_by_entry(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    definition = people_definition(base_dn, {"create": {"count": 100}})
    await run(ldap_engine, definition, BEFORE)
    before = entries(directory, base_dn)
    job_id = await run(ldap_engine, definition, AFTER)
    assert entries(directory, base_dn) != before

    _, planned = await revert(ldap_engine, definition, job_id)

    counts = planned.data.counts
    assert (counts.create, counts.update, counts.delete, counts.conflicts) == (1, 1, 1, 0)
    assert entries(directory, base_dn) == before


async def test_an_entry_changed_since_is_left_alone_and_forced_back_when_included(
    ldap_engine: LdapEngineRig, directory: Directory, base_dn: str
) -> None:
    definition = people_definition(base_dn, {"create": {"count": 100}})
    await run(ldap_engine, definition, BEFORE)
    before = entries(directory, base_dn)
    job_id = await run(ldap_engine, definition, AFTER)
    conn = directory.admin()
    conn.modify_s(f"uid=p000,{base_dn}", [(ldap.MOD_REPLACE, "cn", [b"Ada by hand"])])
    conn.unbind_s()

    _, planned = await revert(ldap_engine, definition, job_id)
    assert planned.data.counts.conflicts == 1
    now = entries(directory, base_dn)
    assert now[f"uid=p000,{base_dn}".lower()]["cn"] == [b"Ada by hand"]
    assert {dn: e for dn, e in now.items() if not dn.startswith("uid=p000,")} == {
        dn: e for dn, e in before.items() if not dn.startswith("uid=p000,")
    }

    # The same sequence reverted again, conflicts included: p000's cn goes back too. The
    # first revert's work shows as conflicts now (p003 gone, p002 back), with nothing to write.
    _, forced = await revert(ldap_engine, definition, job_id, include_conflicts=True)
    counts = forced.data.counts
    assert (counts.create, counts.update, counts.delete, counts.conflicts) == (0, 1, 0, 3)
    assert entries(directory, base_dn) == before
