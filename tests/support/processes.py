"""Runs the services as real processes for tests, and insists that they stop cleanly."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill_hard(self) -> None:
        """kill -9, as a crash would: no cleanup runs."""
        self.process.kill()
        self.process.wait(timeout=10)

    def suspend(self) -> None:
        """SIGSTOP: the process does nothing until it is killed (or continued), so a test can
        hold it at a point its own speed would let it pass between two polls."""
        self.process.send_signal(signal.SIGSTOP)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                raise AssertionError(
                    f"{self.name} did not stop within {timeout:.0f}s of SIGTERM:\n{self.log_tail()}"
                ) from None
        return self.process.returncode


def spawn(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> ServiceProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    log.close()
    return ServiceProcess(name=name, process=process, log_path=log_path)


@contextlib.contextmanager
def start_service(
    name: str,
    argv: list[str],
    env: dict[str, str],
    ready: Callable[[], bool] | None,
    log_path: Path,
    *,
    timeout: float = 60.0,
    check_clean_exit: bool = True,
) -> Iterator[ServiceProcess]:
    """Start `argv`, wait until `ready()` (or a short grace period), SIGTERM it at the end."""
    service = spawn(name, argv, env, log_path)

    def up() -> bool:
        if not service.alive():
            raise AssertionError(
                f"{name} exited with {service.process.returncode}:\n{service.log_tail()}"
            )
        return ready() if ready is not None else True

    try:
        wait_until(up, timeout=timeout, what=f"{name} to be ready (log: {log_path})")
        if ready is None:
            time.sleep(1.0)
            up()
        yield service
    finally:
        code = service.stop()
        if check_clean_exit and code not in (0, -signal.SIGTERM):
            raise AssertionError(f"{name} exited with {code} on SIGTERM:\n{service.log_tail()}")


def service_argv(console_script: str) -> list[str]:
    return [str(VENV_BIN / console_script)]
