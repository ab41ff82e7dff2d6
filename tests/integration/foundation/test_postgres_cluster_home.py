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

from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[3]


def test_a_cluster_for_a_folder_postgres_cannot_enter_starts_and_answers(tmp_path: Path) -> None:
    # As root the cluster runs as the `postgres` user, who cannot enter this folder: it goes
    # under /var/tmp, and `forget` (run by `make clean`) removes it. As anyone else the cluster
    # runs as that user and stays in the folder, where `make clean` removes it with the rest.
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    port = free_port()
    env = {**os.environ, "INFRA_DIR": str(closed / "infra"), "PG_PORT": str(port)}
    infra = [str(REPO / "scripts" / "infra.sh")]
    up = subprocess.run([*infra, "up", "postgres"], env=env, capture_output=True, text=True)
    moved = re.search(r"its cluster is (/var/tmp/provisioning-postgres/\w+)/data", up.stderr)
    try:
        assert up.returncode == 0, up.stderr
        if os.getuid() == 0:
            assert moved is not None, up.stderr
            home = Path(moved.group(1))
        else:
            assert moved is None, up.stderr
            home = closed / "infra" / "postgres"
        assert (home / "data").is_dir()
        password = env.get("PG_PASSWORD", "pg-password")
        url = f"postgresql://provisioning:{password}@127.0.0.1:{port}/provisioning"
        with psycopg.connect(url) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
        forget = subprocess.run(
            [*infra, "forget", "postgres"], env=env, capture_output=True, text=True
        )
        assert forget.returncode == 0, forget.stderr
        # Gone when it lived outside the infra folder; left to `rm -rf .infra` when inside.
        assert (home / "data").exists() is (moved is None)
    finally:
        subprocess.run([*infra, "down", "postgres"], env=env, check=False)
        if moved:
            shutil.rmtree(moved.group(1), ignore_errors=True)
