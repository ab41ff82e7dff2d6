"""The console tests' seeding through the real REST API: definitions, CSV sources, jobs, keys,
and waiting for a job instance to reach a status or an operator command to take effect."""

import csv
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.waiting import eventually

if TYPE_CHECKING:  # the e2e conftest builds a Seeder in its fixture: no import cycle at run time
    from tests.e2e.conftest import System

# A job moves through four processes and a 2-core machine; generous, polled, never slept.
JOB_TIMEOUT = 90.0
FINISHED = {"COMPLETED", "FAILED", "CANCELED"}


class Seeder:
    """Creates what a test needs through the real REST API, as an admin."""

    def __init__(self, system: "System", client: httpx.AsyncClient) -> None:
        self.system = system
        self.client = client

    async def api_key(self, role: str) -> str:
        name = f"console-{role}-{secrets.token_hex(3)}"
        answer = await self.client.post("/api/v1/api-keys", json={"name": name, "role": role})
        assert answer.status_code == 201, answer.text
        key: str = answer.json()["key"]
        return key

    def write_csv(self, path: str, rows: Iterable[dict[str, Any]]) -> str:
        rows = list(rows)
        file = self.system.data_dir / path
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    async def definition(self, name: str, sequences: list[dict[str, Any]]) -> str:
        definition_id = f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}-"
        definition_id += secrets.token_hex(3)
        body = {"id": definition_id, "name": name, "sequences": sequences}
        answer = await self.client.post("/api/v1/job-definitions", json=body)
        assert answer.status_code == 201, answer.text
        return definition_id

    async def submit(self, definition_id: str, inputs: dict[str, Any] | None = None) -> str:
        body = {
            "request_id": f"console-{secrets.token_hex(8)}",
            "definition_id": definition_id,
            "inputs": inputs or {},
        }
        answer = await self.client.post("/api/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["id"]
        return job_id

    async def job(self, job_id: str, key: str | None = None) -> dict[str, Any]:
        """The job instance as the admin (or the holder of `key`) reads it."""
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        answer = await self.client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    async def wait_status(self, job_id: str, *statuses: str) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def reached() -> dict[str, Any] | None:
            job = await self.job(job_id)
            last.update(job)
            if job["status"] in statuses:
                return job
            assert job["status"] not in FINISHED, f"job {job_id} ended {job['status']}: {job}"
            return None

        try:
            return await eventually(
                reached, timeout=JOB_TIMEOUT, interval=0.3, what=f"job {job_id} to be {statuses}"
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {last}") from None

    async def decide(self, job_id: str, path: str, until: str, attempts: int = 5) -> None:
        """Send an operator command and wait for `until`; resent if the runner refused it.

        The API accepts a command on the projection's status, which can run ahead of the
        sequence runner's own state by a moment: setup steps resend instead of failing.
        """
        reasons: list[str] = []
        for _ in range(attempts):
            body: dict[str, Any] = {}
            if path.endswith("validate"):
                # A validate names the plan it approves, as the console does.
                shown = await self.job(job_id)
                blocked = [s for s in shown["sequences"] if s["status"] == "THRESHOLD"]
                body = {"json": {"plan_id": blocked[0]["plan_id"]}} if blocked else {}
            answer = await self.client.post(f"/api/v1/jobs/{job_id}/{path}", **body)
            assert answer.status_code == 202, answer.text
            command_id = answer.json()["command_id"]

            async def settled(command_id: str = command_id) -> dict[str, Any] | None:
                job = await self.job(job_id)
                refused = job.get("last_rejected_command") or {}
                if job["status"] == until or refused.get("command_id") == command_id:
                    return job
                return None

            job = await eventually(settled, timeout=JOB_TIMEOUT, what=f"{path} of {job_id}")
            if job["status"] == until:
                return
            reasons.append(job["last_rejected_command"]["reason"])
        raise AssertionError(f"{path} of job {job_id} refused {attempts} times: {reasons}")


def csv_sequence(
    name: str, path: str, collection: str, thresholds: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "csv", "path": path},
        "target": {"type": "mongo", "collection": collection},
        "key": "uid",
        "mapping": {"uid": "uid", "mail": "mail", "sn": "sn"},
        "delete_missing": False,
        "thresholds": thresholds,
    }


def people(prefix: str, count: int) -> list[dict[str, str]]:
    return [
        {"uid": f"{prefix}{n:03d}", "mail": f"{prefix}{n:03d}@example.org", "sn": f"Name{n}"}
        for n in range(count)
    ]
