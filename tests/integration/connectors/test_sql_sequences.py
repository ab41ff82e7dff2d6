"""SQL sequences through the whole runner (processes, Kafka, MongoDB, PostgreSQL): a threshold
stop writes nothing to the table (checked with psql), validate -> restart writes it, a refused
row fails the sequence naming its key, and a wrong password fails with a reason that never
holds it."""

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
    SequencePlanned,
    ThresholdValidated,
)

from tests.integration.connectors.sql_engine import WRONG_PG_PASSWORD, SqlEngineRig
from tests.integration.connectors.sql_rig import Postgres
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

SOURCE = "/provisioning/job-api"


def accounts_definition(
    table: str, thresholds: dict[str, Any], connection: str = "app-db"
) -> dict[str, Any]:
    return {
        "id": "sql-accounts",
        "name": "People into the application's accounts table",
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {
                    "type": "sql",
                    "connection": connection,
                    "table": table,
                    "key_column": "uid",
                },
                "key": "uid",
                "mapping": {"uid": "id", "cn": "name", "age": "age"},
                "delete_missing": True,
                "thresholds": {"delete": {"count": 100}, **thresholds},
            }
        ],
    }


def people(count: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "people": [{"id": f"p{i:03}", "name": f"P {i}", "age": str(20 + i)} for i in range(count)]
    }


def held(postgres: Postgres, table: str) -> list[list[str]]:
    return postgres.psql(f"select uid, age from {table} order by uid")


async def status(rig: SqlEngineRig, job_id: str, wanted: str) -> None:
    async def reached() -> bool | None:
        run = await rig.run(job_id)
        return True if run["status"] == wanted else None

    await eventually(reached, what=f"job {job_id} at {wanted}")


def command_data() -> CommandData:
    return CommandData(command_id=str(uuid.uuid4()), requested_by="alice")


async def test_a_threshold_stop_writes_nothing_then_validate_and_restart_write_it(
    sql_engine: SqlEngineRig, postgres: Postgres, pg_table: str
) -> None:
    job_id = await sql_engine.submit(
        accounts_definition(pg_table, {"create": {"count": 5}}), people(8)
    )
    (blocked,) = await sql_engine.events.wait_for(job_id, SequenceBlocked)
    await status(sql_engine, job_id, "THRESHOLD")
    assert held(postgres, pg_table) == []  # psql, the server's own client: nothing written

    await sql_engine.command(
        ValidateThreshold(
            source=SOURCE,
            subject=job_id,
            data=ValidateThresholdData(
                command_id=str(uuid.uuid4()), requested_by="alice", plan_id=blocked.data.plan_id
            ),
        )
    )
    await sql_engine.events.wait_for(job_id, ThresholdValidated)
    await status(sql_engine, job_id, "VALIDATED")
    assert held(postgres, pg_table) == []
    await sql_engine.command(RestartJob(source=SOURCE, subject=job_id, data=command_data()))
    await sql_engine.events.wait_for(job_id, JobCompleted)
    assert held(postgres, pg_table) == [[f"p{i:03}", str(20 + i)] for i in range(8)]


async def test_an_unchanged_source_plans_no_change_against_typed_columns(
    sql_engine: SqlEngineRig, postgres: Postgres, pg_table: str
) -> None:
    """The source's "20" is the integer column's 20: an import run again with the same
    records changes nothing. (The column types were once learnt only while reading the table,
    after the source had been mapped, so every row of an integer column was an update.)"""
    definition = accounts_definition(pg_table, {"create": {"count": 100}})
    first = await sql_engine.submit(definition, people(8))
    await sql_engine.events.wait_for(first, JobCompleted)

    again = await sql_engine.submit(definition, people(8))
    (planned,) = await sql_engine.events.wait_for(again, SequencePlanned)
    await sql_engine.events.wait_for(again, JobCompleted)
    counts = planned.data.counts
    assert (counts.create, counts.update, counts.delete, counts.unchanged) == (0, 0, 0, 8)
    assert held(postgres, pg_table) == [[f"p{i:03}", str(20 + i)] for i in range(8)]


async def test_a_refused_row_fails_the_sequence_naming_its_key(
    sql_engine: SqlEngineRig, postgres: Postgres, pg_table: str
) -> None:
    inputs = people(3)
    inputs["people"][1]["age"] = "twenty"
    job_id = await sql_engine.submit(
        accounts_definition(pg_table, {"create": {"count": 100}}), inputs
    )
    (failed,) = await sql_engine.events.wait_for(job_id, SequenceFailed)
    assert "the create of uid='p001'" in failed.data.reason
    assert "invalid input syntax for type integer" in failed.data.reason
    assert held(postgres, pg_table) == []  # the batch was one transaction


async def test_a_wrong_password_fails_the_sequence_and_is_never_shown(
    sql_engine: SqlEngineRig, postgres: Postgres, pg_table: str
) -> None:
    job_id = await sql_engine.submit(
        accounts_definition(pg_table, {"create": {"count": 5}}, connection="wrong-password"),
        people(1),
    )
    (failed,) = await sql_engine.events.wait_for(job_id, SequenceFailed)
    await sql_engine.events.wait_for(job_id, JobFailed)
    reason = failed.data.reason
    assert "connection 'wrong-password'" in reason
    assert "password authentication failed" in reason
    everything = "".join(e.model_dump_json() for e in sql_engine.events.events(job_id))
    assert WRONG_PG_PASSWORD not in everything
    assert postgres.password not in everything
    log = sql_engine.runner.log_path.read_text(encoding="utf-8")
    assert "password authentication failed" in log  # the failure is logged...
    assert WRONG_PG_PASSWORD not in log  # ...without the password
    assert postgres.password not in log
