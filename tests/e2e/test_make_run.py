"""`make run` as a new user types it: everything starts, the demo loads, a service that dies
comes back while the rest runs on, and Ctrl-C stops it all."""

import csv
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.processes import REPO, free_port, port_answers

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

DEMO_JOBS = {
    "hr-import": "COMPLETED",
    "contractors-import": "THRESHOLD",
    "hr-db-to-app": "COMPLETED",
}
# Secrets of this test's own: `make run` must print their variables, never them.
PG_PASSWORD = f"pg-{uuid.uuid4().hex}"
APP_SCIM_TOKEN = f"scim-{uuid.uuid4().hex}"


def processes_mentioning(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text:
            found.append(text)
    return found


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (this machine's PID 1 may never reap exited children)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def demo_jobs(api: str, key: str) -> dict[str, str] | None:
    try:
        answer = httpx.get(
            f"{api}/api/v1/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=5
        )
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    return {job["definition_id"]: job["status"] for job in answer.json()["items"]}


def directory_search(argv: list[str]) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={**os.environ, "LDAPNOINIT": "1"}
    )
    return done.stdout


def printed_line(output: str, label: str) -> str:
    """The command `make run` printed after `<label>:`, as a user would copy it."""
    line = next(x for x in output.splitlines() if f" {label}: " in x)
    return line.split(f"{label}: ", 1)[1].strip()


def run_in_shell(line: str) -> str:
    """A printed command line run by a shell whose environment holds the secrets it names."""
    env = {**os.environ, "PG_PASSWORD": PG_PASSWORD, "APP_SCIM_TOKEN": APP_SCIM_TOKEN}
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Launched:
    """scripts/run.py as a process, on its own ports and folder."""

    process: subprocess.Popen[bytes]
    api: str
    key: str
    ports: dict[str, int]
    infra_dir: Path
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def service_pids(self) -> list[tuple[str, int]]:
        """Every service process it started or restarted, in order."""
        found = re.findall(r"(?:re)?started ([\w-]+) \(pid (\d+)", self.output())
        return [(name, int(pid)) for name, pid in found]

    def scim_app_pids(self) -> list[int]:
        found = re.findall(r"started scim2-server as the SaaS app \(pid (\d+)", self.output())
        return [int(pid) for pid in found]

    def wait_for_demo(self) -> None:
        deadline = time.monotonic() + 240
        statuses: dict[str, str] | None = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run exited early:\n{self.output()}"
            statuses = demo_jobs(self.api, self.key)
            if statuses == DEMO_JOBS:
                return
            time.sleep(1)
        raise AssertionError(f"demo jobs ended as {statuses}:\n{self.output()}")


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    """make run's launcher; at the end, Ctrl-C must stop everything it started."""
    ports = {
        "KAFKA_PORT": free_port(),
        "KAFKA_CONTROLLER_PORT": free_port(),
        "MONGO_PORT": free_port(),
        "LDAP_PORT": free_port(),
        "PG_PORT": free_port(),
        "APP_SCIM_PORT": free_port(),
        "JOB_API_PORT": free_port(),
    }
    # In the repository, not under pytest's tmp_path: pytest makes that 0700, and PostgreSQL
    # runs as the `postgres` user when we are root, which could not reach its data there.
    infra_dir = REPO / ".infra" / f"make-run-test-{uuid.uuid4().hex[:8]}"
    given = (
        "KAFKA_BOOTSTRAP_SERVERS",
        "MONGO_URI",
        "LDAP_URI",
        "LDAP_ADMIN_PASSWORD",
        "PG_URL",
        "APP_SCIM_URL",
    )
    env = {k: v for k, v in os.environ.items() if k not in given}
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"INFRA_DIR": str(infra_dir), "PROVISIONING_ADMIN_API_KEY": "make-run-test-key"}
    env |= {"PG_PASSWORD": PG_PASSWORD, "APP_SCIM_TOKEN": APP_SCIM_TOKEN}
    log_path = tmp_path / "make-run.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run.py")],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    run = Launched(
        process=process,
        api=f"http://127.0.0.1:{ports['JOB_API_PORT']}",
        key="make-run-test-key",
        ports=ports,
        infra_dir=infra_dir,
        log_path=log_path,
    )
    try:
        yield run
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = process.wait(timeout=90)
        log.close()

    assert code == 0, run.output()
    for name, port in ports.items():
        assert not port_answers("127.0.0.1", port), f"{name} {port} still answers after Ctrl-C"
    left = [p for p in processes_mentioning(str(infra_dir)) if "pytest" not in p]
    assert not left, f"processes left behind: {left}"
    alive = [(name, pid) for name, pid in run.service_pids() if pid_alive(pid)]
    assert not alive, f"service processes left behind: {alive}"
    assert len(run.scim_app_pids()) == 1, run.output()
    assert not any(pid_alive(pid) for pid in run.scim_app_pids()), "scim2-server left behind"
    # Its PostgreSQL cluster, kept under /var/tmp when the postgres user cannot enter the clone
    # (`make clean` does the same for the clone's own infra folders), then the folder.
    forget = [str(REPO / "scripts" / "infra.sh"), "forget", "postgres"]
    subprocess.run(forget, env={**os.environ, "INFRA_DIR": str(infra_dir)}, check=True)
    shutil.rmtree(infra_dir)  # kept when something above failed, to read its logs


def test_make_run_starts_everything_loads_the_demo_and_stops_clean(launched: Launched) -> None:
    launched.wait_for_demo()
    assert httpx.get(f"{launched.api}/healthz", timeout=5).status_code == 200
    assert f"console: {launched.api}/" in launched.output()
    # guard, runner, projector, notifier, scheduler, job-api
    assert len(launched.service_pids()) == 6, launched.output()
    # The demo's people and departments are in the directory, as its own client shows them
    # with the line `make run` prints; the contractors stopped at the threshold are not.
    line = next(x for x in launched.output().splitlines() if "ldapsearch" in x)
    argv = shlex.split(line.split("directory: ", 1)[1])
    people = directory_search(argv)
    assert people.count("dn: uid=") == 40, people
    assert "mail: alan.ritchie1@example.org" in people
    base = argv.index("-b") + 1
    groups = directory_search([*argv[:base], "ou=groups,dc=example,dc=org", "member"])
    assert groups.count("member: uid=") == 40, groups
    contractors = directory_search([*argv[:base], "ou=contractors,dc=example,dc=org"])
    assert "dn: uid=" not in contractors


def test_make_run_provisions_the_hr_database_into_the_saas_app(launched: Launched) -> None:
    launched.wait_for_demo()
    output = launched.output()
    # Secrets from the environment are printed as their variable, never as their value.
    assert PG_PASSWORD not in output
    assert APP_SCIM_TOKEN not in output
    with (REPO / "demo" / "data" / "hr" / "employees.csv").open(newline="") as file:
        employees = {row["employee_id"]: row for row in csv.DictReader(file)}

    # The HR database holds the demo's employees, as psql shows them with the printed line.
    psql = printed_line(output, "hr-db")
    assert psql.startswith("PGPASSWORD=$PG_PASSWORD psql postgresql://"), psql
    rows = run_in_shell(f"{psql} --tuples-only --no-align")
    assert len(rows.splitlines()) == len(employees) == 40, rows

    # The app holds one User per employee, as a plain HTTP GET (the printed curl line) shows.
    curl = printed_line(output, "app")
    assert "Bearer $APP_SCIM_TOKEN" in curl, curl
    users: dict[str, Any] = json.loads(run_in_shell(curl))
    assert users["totalResults"] == 40, users
    by_external_id = {user["externalId"]: user for user in users["Resources"]}
    assert set(by_external_id) == set(employees)
    alan = by_external_id["E0001"]
    assert alan["userName"] == "alan.ritchie1@example.org"
    assert alan["name"] == {"givenName": "Alan", "familyName": "Ritchie"}
    assert alan["active"] is True
    # ...and one Group per department, whose members are those users.
    groups: dict[str, Any] = json.loads(run_in_shell(curl.replace("/Users?", "/Groups?")))
    departments = {row["department"] for row in employees.values()}
    assert {group["displayName"] for group in groups["Resources"]} == departments
    user_ids = {user["id"]: external_id for external_id, user in by_external_id.items()}
    finance = next(g for g in groups["Resources"] if g["displayName"] == "Finance")
    assert {user_ids[m["value"]] for m in finance["members"]} == {
        key for key, row in employees.items() if row["department"] == "Finance"
    }


def test_a_service_killed_under_make_run_comes_back_and_the_system_still_completes_jobs(
    launched: Launched,
) -> None:
    launched.wait_for_demo()
    runner = [pid for name, pid in launched.service_pids() if name == "sequence-runner"]
    assert len(runner) == 1, launched.output()
    others = [(n, pid) for n, pid in launched.service_pids() if n != "sequence-runner"]

    os.kill(runner[0], signal.SIGKILL)

    def restarted() -> list[int]:
        return [
            pid
            for name, pid in launched.service_pids()
            if name == "sequence-runner" and pid != runner[0]
        ]

    deadline = time.monotonic() + 30
    while not restarted() and time.monotonic() < deadline:
        assert launched.process.poll() is None, f"make run exited:\n{launched.output()}"
        time.sleep(0.5)
    assert restarted(), f"the runner was not restarted:\n{launched.output()}"
    assert re.search(
        r"sequence-runner exited with code -9 after \d+s; restarting it in 1s", launched.output()
    )
    assert pid_alive(restarted()[0])
    # The rest ran on: the broker, the database and every other service kept their process.
    assert all(pid_alive(pid) for _, pid in others), launched.output()
    assert port_answers("127.0.0.1", launched.ports["KAFKA_PORT"])
    assert port_answers("127.0.0.1", launched.ports["MONGO_PORT"])

    # The restarted runner does the work: a new job of the demo's definition completes.
    headers = {"Authorization": f"Bearer {launched.key}"}
    submitted = httpx.post(
        f"{launched.api}/api/v1/jobs",
        json={"request_id": f"after-restart-{uuid.uuid4().hex}", "definition_id": "hr-import"},
        headers=headers,
        timeout=10,
    )
    assert submitted.status_code == 202, submitted.text
    job_url = f"{launched.api}/api/v1/jobs/{submitted.json()['id']}"
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline:
        status = httpx.get(job_url, headers=headers, timeout=10).json()["status"]
        if status == "COMPLETED":
            break
        time.sleep(1)
    assert status == "COMPLETED", launched.output()


def load_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_run", REPO / "scripts" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_restarts_back_off_doubling_to_a_limit_and_start_over_once_stable() -> None:
    backoff = load_launcher().RestartBackoff(first=1.0, longest=30.0, stable_after=30.0)
    quick_deaths = [backoff.next_delay(uptime=2.0) for _ in range(7)]
    assert quick_deaths == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.next_delay(uptime=45.0) == 1.0
    assert backoff.next_delay(uptime=1.0) == 2.0


def test_the_connections_file_names_existing_servers_and_holds_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """LDAP_URI, PG_URL and APP_SCIM_URL name servers `make run` then does not start; the
    file refers to the secrets, which only the runner's environment holds."""
    monkeypatch.setenv("INFRA_DIR", str(tmp_path))
    monkeypatch.setenv("LDAP_URI", "ldap://directory.example:389")
    monkeypatch.setenv("PG_URL", "postgresql://provisioning@hr.example:5432/hr")
    monkeypatch.setenv("APP_SCIM_URL", "https://app.example/scim/v2")
    monkeypatch.setenv("PG_PASSWORD", PG_PASSWORD)
    monkeypatch.setenv("APP_SCIM_TOKEN", APP_SCIM_TOKEN)
    launcher = load_launcher().Launcher()
    launcher.start_directory()
    launcher.start_hr_database()
    launcher.start_scim_app()
    launcher.write_connections()

    assert launcher.stop_infra == []  # nothing started
    text = (tmp_path / "connections.json").read_text()
    assert json.loads(text) == {
        "directory": {
            "url": "ldap://directory.example:389",
            "bind_dn": "cn=admin,dc=example,dc=org",
            "password": "${LDAP_ADMIN_PASSWORD}",
        },
        "hr-db": {
            "type": "sql",
            "url": "postgresql://provisioning@hr.example:5432/hr",
            "password": "${PG_PASSWORD}",
        },
        "app": {
            "type": "scim",
            "base_url": "https://app.example/scim/v2",
            "token": "${APP_SCIM_TOKEN}",
        },
    }
    assert launcher.connection_env["PG_PASSWORD"] == PG_PASSWORD
    assert launcher.connection_env["APP_SCIM_TOKEN"] == APP_SCIM_TOKEN
    assert launcher.shown_secret("APP_SCIM_TOKEN") == "$APP_SCIM_TOKEN"


def test_a_pg_url_holding_a_password_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PG_URL", "postgresql://provisioning:s3cret@hr.example/hr")
    with pytest.raises(RuntimeError, match="give it in PG_PASSWORD") as refused:
        load_launcher().Launcher().start_hr_database()
    assert "s3cret" not in str(refused.value)
