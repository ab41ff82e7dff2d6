"""`make run`: the infrastructure, every service, a demo to look at; Ctrl-C stops all it started.

Infrastructure comes from KAFKA_BOOTSTRAP_SERVERS / MONGO_URI when both are set, from
`docker compose` when a Docker engine answers, and otherwise from scripts/infra.sh. The demo's
three connections — the directory (slapd), the HR database (PostgreSQL) and the SaaS app
(scim2-server) — are started here too, unless LDAP_URI, PG_URL and APP_SCIM_URL name existing ones.

The services are supervised as compose's `restart: unless-stopped` would: one that dies is
started again after a back-off (1 s, doubling to 30 s, back to 1 s once it stayed up 30 s), the
restart is logged, and everything else keeps running. Ctrl-C or SIGTERM stops it all.
"""

import asyncio
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

if not __package__:
    # `python scripts/run.py`: make the repository importable, as `python -m scripts.run` would.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
from provisioning_common.redaction import redacted_uri
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import ensure_topics

from scripts.scim_app import DEMO_TOKEN, scim_app_answers, scim_app_argv

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
# The administrator of the demo's directory (infra/ldap/config.ldif); the password is
# LDAP_ADMIN_PASSWORD's, `admin-password` unless set.
ADMIN_DN = "cn=admin,dc=example,dc=org"
# The demo's HR database (scripts/infra.sh's cluster: role and database `provisioning`); the
# password is PG_PASSWORD's, `pg-password` unless set.
PG_USER_DB = "provisioning"
DEFAULT_PG_PASSWORD = "pg-password"
# Started in this order, stopped in the reverse one; each is a console script of .venv/bin.
SERVICES = (
    "threshold-guard",
    "sequence-runner",
    "job-api-projector",
    "job-api-notifier",
    "job-api-scheduler",
    "job-api",
)
# The demo HR database's table: what an HR system exposes to the provisioning account.
HR_TABLE = """
create table if not exists employees (
    employee_id text primary key,
    first_name text not null,
    last_name text not null,
    email text not null unique,
    department text not null,
    active boolean not null default true
)"""
# scripts/infra.sh components, each with the variable that names an existing one instead.
INFRASTRUCTURE = (("kafka", "KAFKA_BOOTSTRAP_SERVERS"), ("mongo", "MONGO_URI"))

# compose restarts after 100 ms doubling to a minute; a Python service needs a few seconds to
# start, so the first pause is 1 s and the longest 30 s.
FIRST_RESTART_DELAY = 1.0
LONGEST_RESTART_DELAY = 30.0
# A service that stayed up this long before dying is restarted after the first pause again.
STABLE_AFTER_SECONDS = 30.0


def say(message: str) -> None:
    print(f"make run: {message}", flush=True)


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class RestartBackoff:
    """How long to wait before starting a dead service again: doubling while it keeps dying
    soon after each start, back to the first pause once it stayed up a while."""

    first: float = FIRST_RESTART_DELAY
    longest: float = LONGEST_RESTART_DELAY
    stable_after: float = STABLE_AFTER_SECONDS
    previous: float | None = None

    def next_delay(self, uptime: float) -> float:
        if self.previous is None or uptime >= self.stable_after:
            delay = self.first
        else:
            delay = min(self.previous * 2, self.longest)
        self.previous = delay
        return delay


@dataclass
class SupervisedService:
    """One service process `make run` keeps running, and when it may start again."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None
    backoff: RestartBackoff = field(default_factory=RestartBackoff)

    def start(self, env: dict[str, str]) -> None:
        with self.log_path.open("ab") as log:
            # Own process group: Ctrl-C in the terminal reaches us, and we stop them in order.
            self.process = subprocess.Popen(
                self.argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.restart_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class Launcher:
    def __init__(self) -> None:
        self.infra_dir = Path(os.environ.get("INFRA_DIR", REPO / ".infra" / "run"))
        self.logs = self.infra_dir / "logs"
        self.host = os.environ.get("JOB_API_HOST", "127.0.0.1")
        self.port = int(os.environ.get("JOB_API_PORT", "8000"))
        self.admin_key = os.environ.get("PROVISIONING_ADMIN_API_KEY") or "demo-admin-key"
        self.data_dir = Path(os.environ.get("PROVISIONING_DATA_DIR", REPO / "demo" / "data"))
        self.services: dict[str, SupervisedService] = {}
        self.stop_infra: list[list[str]] = []
        self.env: dict[str, str] = {}
        # The connections file's entries (secrets as ${VARIABLE} references) and the variables
        # the runner needs to resolve them.
        self.connections: dict[str, dict[str, Any]] = {}
        self.connection_env: dict[str, str] = {}
        self.scim_app: subprocess.Popen[bytes] | None = None

    # ---- infrastructure -----------------------------------------------------------------

    def start_infrastructure(self) -> tuple[str, str]:
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        mongo = os.environ.get("MONGO_URI")
        if kafka and mongo:
            say(f"using the Kafka at {kafka} and the MongoDB at {mongo} from the environment")
            return kafka, mongo
        if docker_engine_answers():
            say("a Docker engine answers: starting Kafka and MongoDB with docker compose")
            subprocess.run(
                ["docker", "compose", "up", "-d", "--wait", "kafka", "mongo"], cwd=REPO, check=True
            )
            self.stop_infra.append(["docker", "compose", "stop", "kafka", "mongo"])
            # directConnection: the replica set names its member "mongo:27017", which only
            # resolves inside compose's network; from the host we talk to it directly.
            return (
                kafka or "127.0.0.1:9092",
                mongo or "mongodb://127.0.0.1:27017/?directConnection=true",
            )
        say("no Docker engine: starting the local Kafka broker and MongoDB server")
        env = {**os.environ, "INFRA_DIR": str(self.infra_dir)}
        script = str(REPO / "scripts" / "infra.sh")
        components = [c for c, variable in INFRASTRUCTURE if not os.environ.get(variable)]
        for component in components:
            subprocess.run([script, "up", component], env=env, check=True)
            self.stop_infra.append([script, "down", component])
        kafka_port = os.environ.get("KAFKA_PORT", "9092")
        mongo_port = os.environ.get("MONGO_PORT", "27017")
        return (
            kafka or f"127.0.0.1:{kafka_port}",
            mongo or f"mongodb://127.0.0.1:{mongo_port}",
        )

    def infra_component(self, component: str) -> None:
        """Start one scripts/infra.sh component in our INFRA_DIR; stopped again by stop()."""
        env = {**os.environ, "INFRA_DIR": str(self.infra_dir)}
        script = str(REPO / "scripts" / "infra.sh")
        subprocess.run([script, "up", component], env=env, check=True)
        self.stop_infra.append([script, "down", component])

    def start_directory(self) -> str:
        """The demo's directory: LDAP_URI's, or slapd from scripts/infra.sh (Debian's package,
        `make ldap-server`), named `directory` in the connections file."""
        uri = os.environ.get("LDAP_URI")
        if uri:
            say(f"using the directory at {uri} from the environment")
        else:
            self.infra_component("ldap")
            uri = f"ldap://127.0.0.1:{os.environ.get('LDAP_PORT', '3389')}"
        # The password stays a reference: the file holds no secret, the runner's environment does.
        bind_dn = os.environ.get("LDAP_BIND_DN", ADMIN_DN)
        self.connections["directory"] = {
            "url": uri,
            "bind_dn": bind_dn,
            "password": "${LDAP_ADMIN_PASSWORD}",
        }
        self.connection_env["LDAP_ADMIN_PASSWORD"] = os.environ.get(
            "LDAP_ADMIN_PASSWORD", "admin-password"
        )
        return uri

    def start_hr_database(self) -> str:
        """The demo's HR database: PG_URL's, or a PostgreSQL cluster from scripts/infra.sh
        (Debian's package, `make postgres-server`), named `hr-db` in the connections file."""
        url = os.environ.get("PG_URL")
        if url:
            if redacted_uri(url) != url:
                # The runner refuses it too: the URL is shown in reasons and logs.
                raise RuntimeError("PG_URL holds a password: give it in PG_PASSWORD instead")
            say(f"using the PostgreSQL at {url} from the environment")
        else:
            self.infra_component("postgres")
            port = os.environ.get("PG_PORT", "5433")
            url = f"postgresql://{PG_USER_DB}@127.0.0.1:{port}/{PG_USER_DB}"
        self.connections["hr-db"] = {"type": "sql", "url": url, "password": "${PG_PASSWORD}"}
        self.connection_env["PG_PASSWORD"] = os.environ.get("PG_PASSWORD", DEFAULT_PG_PASSWORD)
        return url

    def start_scim_app(self) -> str:
        """The demo's SaaS app: APP_SCIM_URL's, or scim2-server on APP_SCIM_PORT, accepting
        only APP_SCIM_TOKEN; named `app` in the connections file. Its users live in memory:
        every `make run` starts with an empty app."""
        token = os.environ.get("APP_SCIM_TOKEN") or DEMO_TOKEN
        url = os.environ.get("APP_SCIM_URL")
        if url:
            say(f"using the SCIM app at {redacted_uri(url)} from the environment")
        else:
            port = int(os.environ.get("APP_SCIM_PORT", "8090"))
            url = f"http://127.0.0.1:{port}/v2"
            self.logs.mkdir(parents=True, exist_ok=True)
            log_path = self.logs / "scim-app.log"
            with log_path.open("ab") as log:
                self.scim_app = subprocess.Popen(
                    scim_app_argv(VENV_BIN, port, token),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    start_new_session=True,
                )
            say(f"started scim2-server as the SaaS app (pid {self.scim_app.pid}, log {log_path})")
            deadline = time.monotonic() + 30
            while not scim_app_answers(url, token):
                if self.scim_app.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace").splitlines()[-20:]
                    raise RuntimeError(f"scim2-server did not answer at {url}:\n" + "\n".join(tail))
                time.sleep(0.2)
        self.connections["app"] = {"type": "scim", "base_url": url, "token": "${APP_SCIM_TOKEN}"}
        self.connection_env["APP_SCIM_TOKEN"] = token
        return url

    def write_connections(self) -> None:
        connections = self.infra_dir / "connections.json"
        connections.parent.mkdir(parents=True, exist_ok=True)
        connections.write_text(json.dumps(self.connections, indent=2) + "\n")
        self.connection_env["PROVISIONING_CONNECTIONS_FILE"] = str(connections)

    # ---- services -------------------------------------------------------------------------

    def start_services(self, kafka: str, mongo: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **self.connection_env,
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "MONGO_URI": mongo,
            "PROVISIONING_DATA_DIR": str(self.data_dir),
            "PROVISIONING_ADMIN_API_KEY": self.admin_key,
            "JOB_API_HOST": self.host,
            "JOB_API_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=kafka)))
        for name in SERVICES:
            service = SupervisedService(
                name=name, argv=[str(VENV_BIN / name)], log_path=self.logs / f"{name}.log"
            )
            service.start(self.env)
            self.services[name] = service
            assert service.process is not None
            say(f"started {name} (pid {service.process.pid}, log {service.log_path})")

    def supervise(self) -> None:
        """Restart every service that died, once its back-off has passed; the rest run on."""
        now = time.monotonic()
        for service in self.services.values():
            if service.alive():
                continue
            if service.restart_at is None:
                assert service.process is not None
                uptime = now - service.started_at
                delay = service.backoff.next_delay(uptime)
                service.restart_at = now + delay
                say(
                    f"{service.name} exited with code {service.process.returncode} after "
                    f"{uptime:.0f}s; restarting it in {delay:.0f}s (log {service.log_path})"
                )
            elif now >= service.restart_at:
                service.start(self.env)
                service.restarts += 1
                assert service.process is not None
                say(
                    f"restarted {service.name} (pid {service.process.pid}, "
                    f"restart {service.restarts})"
                )

    def wait_healthy(self, timeout: float = 90.0) -> None:
        url = f"{self.api_url}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        tail = self.services["job-api"].log_tail()
        raise RuntimeError(f"job-api did not answer {url} within {timeout:.0f}s:\n{tail}")

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- demo ---------------------------------------------------------------------------

    def seed_hr_database(self) -> int:
        """The HR database's `employees` table, from the same 40 people as the HR feed's CSV:
        made if missing, its rows brought back to the file's (a second start changes nothing)."""
        with (self.data_dir / "hr" / "employees.csv").open(newline="") as file:
            rows = [
                (r["employee_id"], r["first_name"], r["last_name"], r["email"], r["department"])
                for r in csv.DictReader(file)
            ]
        password = self.connection_env["PG_PASSWORD"]
        with psycopg.connect(self.connections["hr-db"]["url"], password=password) as db:
            db.execute(HR_TABLE)
            with db.cursor() as cursor:
                cursor.executemany(
                    "insert into employees (employee_id, first_name, last_name, email, department)"
                    " values (%s, %s, %s, %s, %s) on conflict (employee_id) do update set"
                    " first_name = excluded.first_name, last_name = excluded.last_name,"
                    " email = excluded.email, department = excluded.department, active = true",
                    rows,
                )
        return len(rows)

    def load_demo(self) -> None:
        if os.environ.get("PROVISIONING_DEMO", "1") == "0":
            return
        seeded = self.seed_hr_database()
        say(f"seeded the HR database: {seeded} rows in employees")
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        definitions: list[dict[str, Any]] = json.loads(
            (REPO / "demo" / "definitions.json").read_text()
        )
        with httpx.Client(base_url=f"{self.api_url}/api/v1", headers=headers, timeout=10) as api:
            for definition in definitions:
                answer = api.post("/job-definitions", json=definition)
                if answer.status_code == 409:
                    answer = api.put(f"/job-definitions/{definition['id']}", json=definition)
                answer.raise_for_status()
            # The same request ids every start: a second `make run` finds the same jobs. Not for
            # the SaaS app, which starts empty every time: each start provisions it again.
            started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            for request_id, definition_id in (
                ("demo-hr-import-1", "hr-import"),
                ("demo-contractors-1", "contractors-import"),
                (f"demo-hr-db-to-app-{started}", "hr-db-to-app"),
            ):
                api.post(
                    "/jobs",
                    json={
                        "request_id": request_id,
                        "definition_id": definition_id,
                        "requested_by": "make-run-demo",
                    },
                ).raise_for_status()
        say(
            "loaded the demo: definitions hr-import, contractors-import and hr-db-to-app, "
            "one job of each"
        )
        say(
            "  (contractors-import plans 30 creations against a limit of 20: it waits at THRESHOLD)"
        )

    def shown_secret(self, variable: str) -> str:
        """How a printed command line gives a secret: `$VARIABLE` when the environment set it,
        the documented local default otherwise."""
        if os.environ.get(variable):
            return f"${variable}"
        return self.connection_env[variable]

    # ---- stop ---------------------------------------------------------------------------

    def stop(self) -> None:
        running = [self.services[n] for n in reversed(SERVICES) if n in self.services]
        for service in running:
            if service.alive():
                assert service.process is not None
                service.process.send_signal(signal.SIGTERM)
        for service in running:
            if service.process is None:
                continue
            try:
                service.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                say(f"{service.name} did not stop within 20s; killing it")
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=10)
        if self.scim_app is not None and self.scim_app.poll() is None:
            self.scim_app.send_signal(signal.SIGTERM)
            try:
                self.scim_app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.scim_app.pid, signal.SIGKILL)
                self.scim_app.wait(timeout=10)
        for command in reversed(self.stop_infra):
            subprocess.run(command, cwd=REPO, check=False)
        say("stopped everything it started")


def main() -> int:
    launcher = Launcher()
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
    # Explicitly, not by Python's default: a shell that starts us in the background hands us
    # SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
    signal.signal(signal.SIGINT, request_stop)
    try:
        kafka, mongo = launcher.start_infrastructure()
        ldap_uri = launcher.start_directory()
        pg_url = launcher.start_hr_database()
        app_url = launcher.start_scim_app()
        launcher.write_connections()
        launcher.start_services(kafka, mongo)
        launcher.wait_healthy()
        launcher.load_demo()
        say(f"console: {launcher.api_url}/  (sign in with the API key {launcher.admin_key})")
        say(f"API:     {launcher.api_url}/api/v1  (docs {launcher.api_url}/docs)")
        # Secrets set in the environment are shown as their variable; only the documented
        # local defaults are printed as they are.
        shown = launcher.shown_secret
        say(
            f"directory: ldapsearch -x -H {ldap_uri} -D {ADMIN_DN} "
            f"-w {shown('LDAP_ADMIN_PASSWORD')} -b ou=people,dc=example,dc=org uid cn mail"
        )
        say(
            f"hr-db:     PGPASSWORD={shown('PG_PASSWORD')} psql {pg_url} "
            "-c 'select * from employees order by employee_id'"
        )
        say(
            # Double quotes: a shell expands $APP_SCIM_TOKEN in them.
            f'app:       curl -s -H "Authorization: Bearer {shown("APP_SCIM_TOKEN")}" '
            f"'{app_url}/Users?count=100'"
        )
        say("Ctrl-C stops everything")
        while True:
            launcher.supervise()
            time.sleep(0.5)
    except KeyboardInterrupt:
        if not stopping:
            print()
        return 0
    except Exception as error:
        say(f"error: {error}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        launcher.stop()


if __name__ == "__main__":
    sys.exit(main())
