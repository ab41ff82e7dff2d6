"""`make run`: the infrastructure, every service, a demo to look at; Ctrl-C stops all it started.

Infrastructure comes from KAFKA_BOOTSTRAP_SERVERS / MONGO_URI when both are set, from
`docker compose` when a Docker engine answers, and otherwise from scripts/infra.sh.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import ensure_topics

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
SERVICES = (
    "threshold-guard",
    "sequence-runner",
    "job-api-projector",
    "job-api-notifier",
    "job-api-scheduler",
    "job-api",
)


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


class Launcher:
    def __init__(self) -> None:
        self.infra_dir = Path(os.environ.get("INFRA_DIR", REPO / ".infra" / "run"))
        self.logs = self.infra_dir / "logs"
        self.host = os.environ.get("JOB_API_HOST", "127.0.0.1")
        self.port = int(os.environ.get("JOB_API_PORT", "8000"))
        self.admin_key = os.environ.get("PROVISIONING_ADMIN_API_KEY") or "demo-admin-key"
        self.data_dir = Path(os.environ.get("PROVISIONING_DATA_DIR", REPO / "demo" / "data"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_infra: list[list[str]] = []
        self.env: dict[str, str] = {}

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
        components = [c for c, given in (("kafka", kafka), ("mongo", mongo)) if not given]
        for component in components:
            subprocess.run([script, "up", component], env=env, check=True)
            self.stop_infra.append([script, "down", component])
        kafka_port = os.environ.get("KAFKA_PORT", "9092")
        mongo_port = os.environ.get("MONGO_PORT", "27017")
        return (
            kafka or f"127.0.0.1:{kafka_port}",
            mongo or f"mongodb://127.0.0.1:{mongo_port}",
        )

    # ---- services -------------------------------------------------------------------------

    def start_services(self, kafka: str, mongo: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
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
            log = (self.logs / f"{name}.log").open("ab")
            # Own process group: Ctrl-C in the terminal reaches us, and we stop them in order.
            self.processes[name] = subprocess.Popen(
                [str(VENV_BIN / name)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )
            log.close()
            say(f"started {name} (pid {self.processes[name].pid}, log {self.logs / name}.log)")

    def wait_healthy(self, timeout: float = 90.0) -> None:
        url = f"{self.api_url}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"job-api did not answer {url} within {timeout:.0f}s")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-30:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n" + "\n".join(tail))

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
        for name in reversed(SERVICES):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within 20s; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
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
        launcher.start_services(kafka, mongo)
        launcher.wait_healthy()
        launcher.load_demo()
        say(f"console: {launcher.api_url}/  (sign in with the API key {launcher.admin_key})")
        say(f"API:     {launcher.api_url}/api/v1  (docs {launcher.api_url}/docs)")
        say("Ctrl-C stops everything")
        while True:
            launcher.check_alive()
            time.sleep(1)
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
