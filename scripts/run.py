"""`make run`: the infrastructure, every service, a demo to look at; Ctrl-C stops all it started.

Infrastructure comes from KAFKA_BOOTSTRAP_SERVERS / MONGO_URI when both are set, from
`docker compose` when a Docker engine answers, and otherwise from scripts/infra.sh.

The services are supervised as compose's `restart: unless-stopped` would: one that dies is
started again after a back-off (1 s, doubling to 30 s, back to 1 s once it stayed up 30 s), the
restart is logged, and everything else keeps running. Ctrl-C or SIGTERM stops it all.
"""

import asyncio
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

import httpx
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import ensure_topics

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
# The administrator of the demo's directory (infra/ldap/config.ldif); the password is
# LDAP_ADMIN_PASSWORD's, `admin-password` unless set.
ADMIN_DN = "cn=admin,dc=example,dc=org"
# Started in this order, stopped in the reverse one; each is a console script of .venv/bin.
SERVICES = (
    "threshold-guard",
    "sequence-runner",
    "job-api-projector",
    "job-api-notifier",
    "job-api-scheduler",
    "job-api",
)
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
        self.directory_env: dict[str, str] = {}

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

    def start_directory(self) -> str:
        """The demo's directory: LDAP_URI's, or slapd from scripts/infra.sh (Debian's package,
        `make ldap-server`), and the connections file that names it `directory`."""
        uri = os.environ.get("LDAP_URI")
        if uri:
            say(f"using the directory at {uri} from the environment")
        else:
            env = {**os.environ, "INFRA_DIR": str(self.infra_dir)}
            script = str(REPO / "scripts" / "infra.sh")
            subprocess.run([script, "up", "ldap"], env=env, check=True)
            self.stop_infra.append([script, "down", "ldap"])
            uri = f"ldap://127.0.0.1:{os.environ.get('LDAP_PORT', '3389')}"
        connections = self.infra_dir / "connections.json"
        connections.parent.mkdir(parents=True, exist_ok=True)
        # The password stays a reference: the file holds no secret, the runner's environment does.
        bind_dn = os.environ.get("LDAP_BIND_DN", ADMIN_DN)
        connection = {"url": uri, "bind_dn": bind_dn, "password": "${LDAP_ADMIN_PASSWORD}"}
        connections.write_text(json.dumps({"directory": connection}, indent=2) + "\n")
        self.directory_env = {
            "PROVISIONING_CONNECTIONS_FILE": str(connections),
            "LDAP_ADMIN_PASSWORD": os.environ.get("LDAP_ADMIN_PASSWORD", "admin-password"),
        }
        return uri

    # ---- services -------------------------------------------------------------------------

    def start_services(self, kafka: str, mongo: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **self.directory_env,
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

    def load_demo(self) -> None:
        if os.environ.get("PROVISIONING_DEMO", "1") == "0":
            return
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
            # The same request ids every start: a second `make run` finds the same jobs.
            for request_id, definition_id in (
                ("demo-hr-import-1", "hr-import"),
                ("demo-contractors-1", "contractors-import"),
            ):
                api.post(
                    "/jobs",
                    json={
                        "request_id": request_id,
                        "definition_id": definition_id,
                        "requested_by": "make-run-demo",
                    },
                ).raise_for_status()
        say("loaded the demo: definitions hr-import and contractors-import, one job of each")
        say(
            "  (contractors-import plans 30 creations against a limit of 20: it waits at THRESHOLD)"
        )

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
        launcher.start_services(kafka, mongo)
        launcher.wait_healthy()
        launcher.load_demo()
        say(f"console: {launcher.api_url}/  (sign in with the API key {launcher.admin_key})")
        say(f"API:     {launcher.api_url}/api/v1  (docs {launcher.api_url}/docs)")
        password = launcher.directory_env["LDAP_ADMIN_PASSWORD"]
        shown = "$LDAP_ADMIN_PASSWORD" if "LDAP_ADMIN_PASSWORD" in os.environ else password
        say(
            f"directory: ldapsearch -x -H {ldap_uri} -D {ADMIN_DN} -w {shown} "
            "-b ou=people,dc=example,dc=org uid cn mail"
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
