"""A broker or a database of one test module's own, started by scripts/infra.sh in a folder of
its own on ports of its own: what the module does to it (an outage) or leaves in it (a
SecantusDB slowed by a long session) never reaches the rest of the test session."""

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import REPO, free_port

INFRA = str(REPO / "scripts" / "infra.sh")
# The ports each component of scripts/infra.sh listens on, by its variable.
PORTS = {"kafka": ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT"), "mongo": ("MONGO_PORT",)}


class OwnInfrastructure:
    """The components named (of "kafka" and "mongo") in `folder`, each on a port `port()` gives."""

    def __init__(
        self, folder: Path, components: tuple[str, ...], port: Callable[[], int] = free_port
    ) -> None:
        self.components = components
        self.env = {**os.environ, "INFRA_DIR": str(folder)}
        for component in components:
            for variable in PORTS[component]:
                self.env[variable] = str(port())

    def run(self, *args: str) -> None:
        subprocess.run([INFRA, *args], env=self.env, check=True, capture_output=True)

    @contextmanager
    def started(self) -> Iterator["OwnInfrastructure"]:
        """Only the components named: `up` alone would also start a directory and a PostgreSQL,
        on the ports of the session's own. Stopped on the way out, whatever happened."""
        try:
            for component in self.components:
                self.run("up", component)
            yield self
        finally:
            for component in self.components:
                subprocess.run(
                    [INFRA, "down", component], env=self.env, check=False, capture_output=True
                )

    def pid(self, component: str) -> int:
        """The process id scripts/infra.sh recorded for a component it started."""
        return int((Path(self.env["INFRA_DIR"]) / f"{component}.pid").read_text())

    @property
    def kafka(self) -> str:
        return f"127.0.0.1:{self.env['KAFKA_PORT']}"

    @property
    def mongo(self) -> str:
        return f"mongodb://127.0.0.1:{self.env['MONGO_PORT']}"
