"""Every service as several replicas on one machine: 3 runners, 3 guards, 2 projectors and
2 job-apis as real processes on one broker with 6-partition topics. Jobs of several kinds are
submitted through both APIs, some stop at thresholds and are released or canceled by operators,
one runner is killed with kill -9 while it works and another is started. Then: every job in its
right terminal state, the target holding exactly what was planned, nothing written for a blocked
sequence, the read model at each job's last event, and which replica did what (from their logs).

The replicas share the session's broker but not its database: the test starts a SecantusDB of
its own (scripts/infra.sh, a fresh folder) and stops it after, because a SecantusDB that has
served the rest of the suite is many times slower (docs/scale.md).

The figures (times, work per replica, CPU and memory of each process) go to
test-results/scale/. `make test-scale` runs this alone; SCALE_JOBS (default 200, the issue's
count) sets the number of jobs, SCALE_RECORDS (default 10) the records of a people sequence, and
TEST_SCALE_PORTS ("first-last") the range the replicas' HTTP ports and the database's port are
taken from (default: free ports the OS picks).
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from provisioning_common.partitions import partition_of
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.support.own_infrastructure import OwnInfrastructure
from tests.support.processes import REPO, ServiceProcess, free_port, service_argv, spawn
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.mongo,
    pytest.mark.scale,
    # Ten processes starting at once and 200 jobs: about 3 minutes on a quiet 2-core machine,
    # more while other work loads it; beyond the suite's 300 s only when something is wrong.
    pytest.mark.timeout(600),
]

JOBS = int(os.environ.get("SCALE_JOBS", "200"))
# A few records per sequence: what is checked (states, counts at the target, ownership) does
# not grow with them, while each record costs every job database writes.
RECORDS = int(os.environ.get("SCALE_RECORDS", "10"))
GROUPS = 3
# Two apply batches per people sequence, so a runner killed while applying can stop between
# them; each batch more costs every job a read and a write of its run.
APPLY_BATCH = max(1, (RECORDS + 1) // 2)
# Requests the test has in flight at once while it creates definitions and submits jobs.
SUBMITTING = 8
SUBMIT_ATTEMPTS = 5
PARTITIONS = 6
REPLICAS = {"sequence-runner": 3, "threshold-guard": 3, "job-api-projector": 2, "job-api": 2}
RESULTS = REPO / "test-results" / "scale"
# What each kind of job is, by its number modulo 10, and the state it must end in.
KINDS = ["plain"] * 5 + ["released"] * 2 + ["canceled"] * 2 + ["failing"]
EXPECTED = {
    "plain": "COMPLETED",
    "released": "COMPLETED",
    "canceled": "CANCELED",
    "failing": "FAILED",
}
TERMINAL = {"COMPLETED", "CANCELED", "FAILED"}
# An operator sends a command again when the read model still shows the job where it was this
# long after: the runner waits as long for a decision a command overtook. Sooner, each resend
# is one more command for a runner that is only behind, on a loaded machine many more.
RESEND = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process so far."""
    # Fields 14 and 15 of /proc/<pid>/stat, after the command name in parentheses.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Replica:
    service: str
    number: int
    process: ServiceProcess
    port: int
    peak_rss_kib: int = 0
    cpu_seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.service}-{self.number}"

    def sample_usage(self) -> None:
        """Peak resident memory (VmHWM) and CPU time (user + system) so far, read while the
        process lives: where the test's wall time goes, and the manifests' resources."""
        pid = self.process.process.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        self.cpu_seconds = cpu_seconds(pid)

    def log(self) -> list[dict[str, Any]]:
        lines = self.process.log_path.read_text(errors="replace").splitlines()
        return [json.loads(text) for text in lines if text.startswith("{")]


@dataclass
class Stack:
    kafka: KafkaSettings
    env: dict[str, str]
    data_dir: Path
    logs: Path
    admin_key: str
    ports: "ScalePorts"
    replicas: list[Replica] = field(default_factory=list)
    seconds_starting: float = 0.0

    def start(self, service: str) -> Replica:
        number = 1 + sum(1 for r in self.replicas if r.service == service)
        env = dict(self.env)
        # The API's HTTP port, or the consumer's /livez, /readyz and /metrics port.
        port = self.ports.take()
        env["JOB_API_PORT" if service == "job-api" else "HEALTH_PORT"] = str(port)
        log = self.logs / f"{service}-{number}.log"
        replica = Replica(service, number, spawn(service, service_argv(service), env, log), port)
        self.replicas.append(replica)
        return replica

    def of(self, service: str) -> list[Replica]:
        return [r for r in self.replicas if r.service == service]

    def alive(self) -> None:
        for replica in self.replicas:
            if replica.process.alive():
                # It may die between the two looks; the next call reports it.
                with contextlib.suppress(FileNotFoundError):
                    replica.sample_usage()
            elif replica.process.process.returncode != -9:
                raise AssertionError(f"{replica.name} exited:\n{replica.process.log_tail()}")


class ScalePorts:
    """The replicas' HTTP ports and the database's: from TEST_SCALE_PORTS ("first-last"), a range
    of one's own when several test runs share a machine, each port checked free; otherwise free
    ports the OS picks."""

    def __init__(self, spec: str | None) -> None:
        self._range: Iterator[int] | None = None
        if spec:
            first, _, last = spec.partition("-")
            self._range = iter(range(int(first), int(last or first) + 1))
            self._spec = spec

    def take(self) -> int:
        if self._range is None:
            return free_port()
        for port in self._range:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use by something else: the next one
                return port
        raise AssertionError(f"no free port left in TEST_SCALE_PORTS={self._spec}")


async def stable_members(kafka: KafkaSettings, service: str) -> int:
    admin = AIOKafkaAdminClient(**kafka.to_aiokafka_params())
    await admin.start()
    try:
        described: list[Any] = await admin.describe_consumer_groups([kafka.group_id(service)])
    except Exception:  # no coordinator yet on a fresh broker: not ready
        return 0
    finally:
        await admin.close()
    for group in described:
        for entry in getattr(group, "groups", []):
            if entry[2] == "Stable":
                return len(entry[5])
    return 0


@pytest.fixture(scope="module")
def ports() -> ScalePorts:
    return ScalePorts(os.environ.get("TEST_SCALE_PORTS"))


@pytest.fixture(scope="module")
def own_database(
    ports: ScalePorts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnInfrastructure]:
    """A fresh SecantusDB for this test alone, stopped after it: the time the test takes is
    then its own, not that of whatever the session ran before it."""
    folder = tmp_path_factory.mktemp("scale-infra")
    with OwnInfrastructure(folder, ("mongo",), ports.take).started() as database:
        yield database


@pytest.fixture
async def database_client(
    own_database: OwnInfrastructure,
) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_database.mongo)
    yield client
    await client.close()


@pytest.fixture
def stack(infra: Infra, own_database: OwnInfrastructure, ports: ScalePorts) -> Iterator[Stack]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"scale-{run_id}.",
        consumer_group_suffix=f"-scale-{run_id}",
        topic_partitions=PARTITIONS,
    )
    asyncio.run(ensure_topics(kafka))
    data_dir = RESULTS / f"data-{run_id}"
    data_dir.mkdir(parents=True)
    admin_key = f"scale-admin-{secrets.token_urlsafe(16)}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        # A killed runner's partitions move after this long without its heartbeat.
        "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "MONGO_URI": own_database.mongo,
        "MONGO_DATABASE": f"scale_{run_id}",
        "PROVISIONING_TARGET_DB": f"scale_identity_{run_id}",
        "PROVISIONING_DATA_DIR": str(data_dir),
        "PROVISIONING_ADMIN_API_KEY": admin_key,
        "JOB_API_HOST": "127.0.0.1",
        "PROVISIONING_APPLY_BATCH_SIZE": str(APPLY_BATCH),
        # No progress events for sequences of a few records, even on a loaded machine: each
        # would be one more event for the projectors to fold, and none is checked here.
        "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "60",
    }
    built = Stack(kafka, env, data_dir, RESULTS / f"logs-{run_id}", admin_key, ports)
    began = time.monotonic()
    try:
        for service, count in REPLICAS.items():
            for _ in range(count):
                built.start(service)

        def ready() -> bool:
            built.alive()
            for service in ("sequence-runner", "threshold-guard", "job-api-projector"):
                if asyncio.run(stable_members(kafka, service)) != REPLICAS[service]:
                    return False
            return all(_healthy(r) for r in built.of("job-api"))

        # A bound for a loaded machine: ten Python processes start at once.
        wait_until(ready, timeout=240, interval=1.0, what="every replica up, groups stable")
        built.seconds_starting = time.monotonic() - began
        yield built
    finally:
        # SIGTERM to all at once, then wait for each: they stop side by side, not in a row.
        alive = [r for r in built.replicas if r.process.alive()]
        for replica in alive:
            replica.process.process.send_signal(signal.SIGTERM)
        problems = []
        for replica in alive:
            try:
                code = replica.process.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                replica.process.kill_hard()
                problems.append(f"{replica.name} did not stop within 20 s of SIGTERM:\n")
                problems.append(replica.process.log_tail())
                continue
            # uvicorn (job-api) may end by the signal itself, as start_service allows.
            if code not in (0, -signal.SIGTERM):
                problems.append(f"{replica.name} exited with {code}")
        assert not problems, "\n".join(problems)


def _healthy(replica: Replica) -> bool:
    try:
        url = f"http://127.0.0.1:{replica.port}/healthz"
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    """200 from a replica's /readyz; False while it does not listen yet."""
    try:
        return (await client.get(url)).status_code == 200
    except httpx.ConnectError:
        return False


def sequence(name: str, path: str, collection: str, create_limit: int) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "csv", "path": path},
        "target": {"type": "mongo", "collection": collection},
        "key": "uid",
        "thresholds": {"create": {"count": create_limit}},
    }


def definition_of(run: str, n: int, kind: str) -> dict[str, Any]:
    people = sequence("people", f"people_{n}.csv", f"people_{n}", RECORDS + 1)
    if kind in ("released", "canceled"):
        people["thresholds"] = {"create": {"count": RECORDS // 2}}
    if kind == "failing":
        people["source"]["path"] = f"missing_{n}.csv"
    sequences = [people]
    if kind == "plain":
        sequences.append(sequence("groups", f"groups_{n}.csv", f"groups_{n}", GROUPS + 1))
    return {"id": f"scale-{run}-{n}", "name": f"Scale {kind} {n}", "sequences": sequences}


def write_sources(data_dir: Path, n: int) -> None:
    people = [f"p{n}-{i},p{n}-{i}@example.org" for i in range(RECORDS)]
    (data_dir / f"people_{n}.csv").write_text("\n".join(["uid,mail", *people]) + "\n")
    groups = [f"g{n}-{i},group {i}" for i in range(GROUPS)]
    (data_dir / f"groups_{n}.csv").write_text("\n".join(["uid,name", *groups]) + "\n")


class Operators:
    """Operators acting through either API on what the read model shows: a job at THRESHOLD is
    validated and restarted (released) or canceled, and a refused command is sent again."""

    def __init__(self, clients: list[httpx.AsyncClient], kinds: dict[str, str]) -> None:
        self._clients = clients
        self._kinds = kinds
        self._sent: dict[str, tuple[str, float]] = {}
        self._turn = 0
        self.commands = Counter[str]()

    async def act(self, job_id: str, job: dict[str, Any]) -> None:
        status, kind = job["status"], self._kinds[job_id]
        if status == "THRESHOLD":
            command = "threshold/validate" if kind == "released" else "threshold/cancel"
        elif status == "VALIDATED":
            command = "restart"
        else:
            return
        last = self._sent.get(job_id)
        if last is not None and last[0] == command and time.monotonic() - last[1] < RESEND:
            return  # on its way: the runner may still be catching up
        body = {"plan_id": job["sequences"][0]["plan_id"]} if command.endswith("validate") else None
        client = self._clients[self._turn % len(self._clients)]
        self._turn += 1
        answer = await client.post(f"/api/v1/jobs/{job_id}/{command}", json=body)
        assert answer.status_code in (202, 409), answer.text
        self._sent[job_id] = (command, time.monotonic())
        self.commands[command] += 1


async def last_events(kafka: KafkaSettings) -> dict[str, tuple[int, int, list[str]]]:
    """Per job: partition, offset of its last event, and its event types in topic order."""
    topic = kafka.topic(JOB_EVENTS)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[str, tuple[int, int, list[str]]] = {}

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    event = json.loads(record.value)
                    job = event["subject"]
                    kinds = found.get(job, (0, 0, []))[2]
                    kinds.append(event["type"].removeprefix("provisioning."))
                    found[job] = (tp.partition, record.offset, kinds)
        return found
    finally:
        await consumer.stop()


def worked_by(runners: list[Replica]) -> dict[str, set[str]]:
    """Which runners planned or applied a sequence of each job (their 'sequence N …' lines)."""
    found: dict[str, set[str]] = defaultdict(set)
    for runner in runners:
        for line in runner.log():
            if "job_id" in line and line["message"].startswith("sequence "):
                found[line["job_id"]].add(runner.name)
    return found


def work_outside_ownership(runner: Replica) -> list[str]:
    """The runner's 'sequence N planned/applied' lines about a job whose partition it did not
    own at that moment (by its own ownership lines, in its own log order)."""
    owned: set[int] = set()
    wrong = []
    for line in runner.log():
        message = line["message"]
        if message.startswith("owning partitions ["):
            listed = message.removeprefix("owning partitions [").split("]", 1)[0]
            owned = {int(p) for p in listed.split(",") if p.strip()}
        elif message.startswith("partitions [") and " revoked" in message:
            listed = message.removeprefix("partitions [").split("]", 1)[0]
            owned -= {int(p) for p in listed.split(",") if p.strip()}
        elif (
            "job_id" in line
            and message.startswith("sequence ")
            and partition_of(line["job_id"], PARTITIONS) not in owned
        ):
            wrong.append(f"{line['time']} {line['job_id']}: {message}")
    return wrong


def folded_by(projectors: list[Replica]) -> dict[str, dict[str, Any]]:
    """Events each projector folded ('folded <type> at <partition>:<offset>: …'), and from which
    partitions: the replicas split them."""
    found: dict[str, dict[str, Any]] = {}
    for projector in projectors:
        folded = [
            line["message"].split(" at ", 1)[1].split(":", 1)[0]
            for line in projector.log()
            if line["message"].startswith("folded ")
        ]
        found[projector.name] = {
            "events": len(folded),
            "partitions": sorted({int(p) for p in folded}),
        }
    return found


def consumer_lag(metrics: str) -> float:
    """The sum of a process's provisioning_consumer_lag samples."""
    samples = [
        line for line in metrics.splitlines() if line.startswith("provisioning_consumer_lag{")
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in samples)


def handled_counts(replicas: list[Replica]) -> dict[str, int]:
    """Messages each replica handled (its 'handled …' lines)."""
    counts = {}
    for replica in replicas:
        counts[replica.name] = sum(1 for x in replica.log() if x["message"].startswith("handled "))
    return counts


async def test_replicas_share_the_work_and_survive_a_killed_runner(
    stack: Stack,
    own_database: OwnInfrastructure,
    database_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    started = time.monotonic()
    run = uuid.uuid4().hex[:6]
    kinds: dict[str, str] = {}
    apis = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{r.port}",
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=30,
            # Idle connections let go well before uvicorn closes them (5 s): with several
            # requests in flight, one sent on a connection the server is closing would fail.
            limits=httpx.Limits(keepalive_expiry=1.0),
        )
        for r in stack.of("job-api")
    ]
    database = database_client[stack.env["MONGO_DATABASE"]]
    target = database_client[stack.env["PROVISIONING_TARGET_DB"]]
    try:
        # The replicas share API keys through MongoDB: one made on the first API acts on both.
        made = await apis[0].post(
            "/api/v1/api-keys", json={"name": f"ops-{run}", "role": "operator"}
        )
        assert made.status_code == 201, made.text
        operator_key = {"Authorization": f"Bearer {made.json()['key']}"}
        for n in range(JOBS):
            write_sources(stack.data_dir, n)
        # Several requests in flight, as several upstream systems would send them: each one
        # mostly waits for MongoDB or the broker's acknowledgement.
        in_flight = asyncio.Semaphore(SUBMITTING)
        resent = Counter[int]()

        async def define(n: int) -> None:
            definition = definition_of(run, n, KINDS[n % len(KINDS)])
            async with in_flight:
                created = await apis[n % 2].post("/api/v1/job-definitions", json=definition)
            assert created.status_code == 201, created.text

        async def submit(n: int) -> None:
            request = {"request_id": f"scale-{run}-{n}", "definition_id": f"scale-{run}-{n}"}
            # Past the API's deadline (504) on a loaded machine, sent again after its
            # Retry-After with the same request_id, as docs/api.md tells a client: it never
            # makes a second job.
            for _ in range(SUBMIT_ATTEMPTS):
                async with in_flight:
                    submitted = await apis[n % 2].post("/api/v1/jobs", json=request)
                if submitted.status_code != 504:
                    break
                resent[n] += 1
                await asyncio.sleep(float(submitted.headers.get("Retry-After", "5")))
            assert submitted.status_code == 202, submitted.text
            kinds[submitted.json()["id"]] = KINDS[n % len(KINDS)]

        await asyncio.gather(*(define(n) for n in range(JOBS)))
        await asyncio.gather(*(submit(n) for n in range(JOBS)))
        submitted_at = time.monotonic()

        for api in apis:
            api.headers.update(operator_key)
        operators = Operators(apis, kinds)
        victim, replacement = stack.of("sequence-runner")[0], None
        killed_with: set[str] = set()
        # A bound for a machine loaded by other work, not the time it takes (docs/scale.md).
        deadline = time.monotonic() + 240
        statuses: dict[str, str] = {}
        while True:
            stack.alive()
            # Only the jobs not finished yet: a finished one stays so (nobody restarts it here),
            # and each look costs the database a query over what it asks for.
            unfinished = [job for job in kinds if statuses.get(job) not in TERMINAL]
            documents = database["job_instances"].find(
                {"_id": {"$in": unfinished}}, {"status": 1, "sequences.plan_id": 1}
            )
            jobs = {doc["_id"]: doc async for doc in documents}
            statuses.update({job_id: jobs[job_id]["status"] for job_id in jobs})
            for job_id, job in jobs.items():
                await operators.act(job_id, job)
            finished = sum(1 for s in statuses.values() if s in TERMINAL)
            if replacement is None and finished >= JOBS // 6:
                # kill -9 while it works: jobs it planned or applied and that are not finished.
                in_hand = {
                    job
                    for job, runners in worked_by([victim]).items()
                    if victim.name in runners and statuses.get(job) not in TERMINAL
                }
                if in_hand:
                    victim.process.kill_hard()
                    killed_with = in_hand
                    replacement = stack.start("sequence-runner")
            if finished == JOBS and replacement is not None:
                break
            assert time.monotonic() < deadline, f"not finished: {Counter(statuses.values())}"
            await asyncio.sleep(0.5)
        finished_at = time.monotonic()
        stack.alive()
        # Every replica still running is ready and consumes everything: its lag comes to 0. The
        # runner started after the kill may still be starting when the last job ends (a fast
        # database, a small SCALE_JOBS): up to 60 s, for a process starting on a loaded machine.
        consumers = [r for r in stack.replicas if r.service != "job-api" and r.process.alive()]
        lag: dict[str, float] = {}
        ready: dict[str, bool] = {}
        for _ in range(120):
            for replica in consumers:
                base = f"http://127.0.0.1:{replica.port}"
                ready[replica.name] = await _answers(apis[0], f"{base}/readyz")
                if ready[replica.name]:
                    metrics = (await apis[0].get(f"{base}/metrics")).text
                    lag[replica.name] = consumer_lag(metrics)
            if all(ready.values()) and not any(lag.values()):
                break
            await asyncio.sleep(0.5)
        assert all(ready.values()), ready
        assert not any(lag.values()), lag
    finally:
        for api in apis:
            await api.aclose()

    # Every job in its right terminal state; the target holds what was planned, once.
    wrong = {j: (kinds[j], s) for j, s in statuses.items() if s != EXPECTED[kinds[j]]}
    assert not wrong, wrong
    documents = database["job_instances"].find({"_id": {"$in": list(kinds)}})
    jobs = {doc["_id"]: doc async for doc in documents}
    by_number = {int(job["definition_id"].rsplit("-", 1)[1]): job for job in jobs.values()}
    for n, job in by_number.items():
        kind = kinds[job["_id"]]
        people = await target[f"people_{n}"].count_documents({})
        groups = await target[f"groups_{n}"].count_documents({})
        if kind in ("plain", "released"):
            assert people == RECORDS, (n, kind, people)
            assert job["sequences"][0]["applied"] == {
                "create": RECORDS,
                "update": 0,
                "delete": 0,
                "disable": 0,
            }
        else:
            # Blocked then canceled, or failed before planning: nothing written.
            assert people == 0, (n, kind, people)
        assert groups == (GROUPS if kind == "plain" else 0), (n, kind, groups)

    # The read model is at each job's last event, folded in the topic's order.
    events = await last_events(stack.kafka)
    for job_id, job in jobs.items():
        partition, offset, types = events[job_id]
        assert partition == partition_of(job_id, PARTITIONS)
        assert job["projection"] == {"partition": partition, "offset": offset}, job_id
        assert types[0] == "JobCreated", (job_id, types)
        # A command sent twice is refused after the job ended: the job's lifecycle ends first.
        lifecycle = [t for t in types if t not in ("CommandRejected", "SequenceProgress")]
        assert lifecycle[-1] in ("JobCompleted", "JobCanceled", "JobFailed"), (job_id, types)

    # Which runner did what: every plan and apply a runner logged was of a job of a partition it
    # owned then; a job moves to another runner only with its partition (the kill, a rebalance).
    runners = stack.of("sequence-runner")
    for runner in runners:
        wrongly = work_outside_ownership(runner)
        assert not wrongly, f"{runner.name} worked on jobs it did not own: {wrongly}"
    worked = worked_by(runners)
    handed_over = {job for job, names in worked.items() if len(names) > 1}
    jobs_per_runner = Counter(name for names in worked.values() for name in names)
    assert all(jobs_per_runner[r.name] for r in runners[:3]), jobs_per_runner

    figures = {
        "jobs": JOBS,
        "records_per_people_sequence": RECORDS,
        "partitions": PARTITIONS,
        "replicas": REPLICAS,
        "kinds": dict(Counter(kinds.values())),
        "seconds_starting_replicas": round(stack.seconds_starting, 1),
        "seconds_submitting": round(submitted_at - started, 1),
        "submissions_resent_after_504": sum(resent.values()),
        "seconds_to_all_terminal": round(finished_at - submitted_at, 1),
        "operator_commands": dict(operators.commands),
        "jobs_worked_per_runner": dict(sorted(jobs_per_runner.items())),
        "jobs_in_hand_of_killed_runner": len(killed_with),
        "of_which_taken_up_by_another_runner": len(
            {job for job in killed_with if worked[job] - {victim.name}}
        ),
        "jobs_worked_by_two_runners": len(handed_over),
        "messages_handled_per_guard": handled_counts(stack.of("threshold-guard")),
        "events_folded_per_projector": folded_by(stack.of("job-api-projector")),
        "consumer_lag_at_the_end": lag,
        "peak_rss_mib": {r.name: round(r.peak_rss_kib / 1024, 1) for r in stack.replicas},
        "cpu_seconds": {r.name: round(r.cpu_seconds, 1) for r in stack.replicas},
        # The database's own, since it started just before this test (the largest consumer).
        "cpu_seconds_database": round(cpu_seconds(own_database.pid("mongo")), 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
