"""`make run` as a new user types it: everything starts, the demo loads, Ctrl-C stops it all."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import REPO, free_port, port_answers

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]


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


def test_make_run_starts_everything_loads_the_demo_and_stops_clean(tmp_path: Path) -> None:
    ports = {
        "KAFKA_PORT": free_port(),
        "KAFKA_CONTROLLER_PORT": free_port(),
        "MONGO_PORT": free_port(),
        "JOB_API_PORT": free_port(),
    }
    infra_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGO_URI")}
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"INFRA_DIR": str(infra_dir), "PROVISIONING_ADMIN_API_KEY": "make-run-test-key"}
    api = f"http://127.0.0.1:{ports['JOB_API_PORT']}"
    log = (tmp_path / "make-run.log").open("wb")
    launcher = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run.py")],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def output() -> str:
        return (tmp_path / "make-run.log").read_text(errors="replace")

    try:
        deadline = time.monotonic() + 240
        statuses: dict[str, str] | None = None
        while time.monotonic() < deadline:
            assert launcher.poll() is None, f"make run exited early:\n{output()}"
            statuses = demo_jobs(api, "make-run-test-key")
            if statuses == {"hr-import": "COMPLETED", "contractors-import": "THRESHOLD"}:
                break
            time.sleep(1)
        assert statuses == {"hr-import": "COMPLETED", "contractors-import": "THRESHOLD"}, output()
        assert httpx.get(f"{api}/healthz", timeout=5).status_code == 200
        assert f"console: {api}/" in output()
    finally:
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = launcher.wait(timeout=90)
        log.close()

    assert code == 0, output()
    for name, port in ports.items():
        assert not port_answers("127.0.0.1", port), f"{name} {port} still answers after Ctrl-C"
    left = [p for p in processes_mentioning(str(infra_dir)) if "pytest" not in p]
    assert not left, f"processes left behind: {left}"
    service_pids = [int(pid) for pid in re.findall(r"started [\w-]+ \(pid (\d+)", output())]
    # guard, runner, projector, notifier, scheduler, job-api
    assert len(service_pids) == 6, output()
    alive = [pid for pid in service_pids if pid_alive(pid)]
    assert not alive, f"service processes left behind: {alive}"
