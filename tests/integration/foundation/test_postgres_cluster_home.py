"""The project's PostgreSQL starts from a clone only root may enter: `mktemp -d` makes its
folder 0700, and initdb, run as the `postgres` user, then could not open its own files
("could not open file …/.pw for reading: Permission denied"), so `make test` failed at once in
a clone made the way the README's check makes one."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(os.getuid() != 0, reason="only root runs the cluster as another user")
def test_a_cluster_for_a_folder_postgres_cannot_enter_starts_and_answers(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    port = free_port()
    env = {**os.environ, "INFRA_DIR": str(closed / "infra"), "PG_PORT": str(port)}
    infra = [str(REPO / "scripts" / "infra.sh")]
    up = subprocess.run([*infra, "up", "postgres"], env=env, capture_output=True, text=True)
    home = None
    try:
        assert up.returncode == 0, up.stderr
        assert "its cluster is /var/tmp/provisioning-postgres/" in up.stderr
        password = env.get("PG_PASSWORD", "pg-password")
        url = f"postgresql://provisioning:{password}@127.0.0.1:{port}/provisioning"
        with psycopg.connect(url) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
        home = re.search(r"its cluster is (/var/tmp/provisioning-postgres/\w+)/data", up.stderr)
        assert home is not None
        # `make clean` runs this for each INFRA_DIR: the cluster outside it goes too.
        forget = subprocess.run(
            [*infra, "forget", "postgres"], env=env, capture_output=True, text=True
        )
        assert forget.returncode == 0, forget.stderr
        assert not Path(home.group(1)).exists()
    finally:
        subprocess.run([*infra, "down", "postgres"], env=env, check=False)
        if home:
            shutil.rmtree(home.group(1), ignore_errors=True)
