"""The real directory for connector tests: slapd from scripts/infra.sh, or LDAP_URI's.

With LDAP_URI set (scripts/test.sh sets it) that server is used, bound as LDAP_BIND_DN with
LDAP_ADMIN_PASSWORD; otherwise a slapd is started on TEST_LDAP_PORT (13389) in .infra/test.
Tests that stop the server mid-apply need one whose infra folder they know: the one started
here, or TEST_LDAP_INFRA_DIR's. Every test works in an organizational unit of its own."""

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap
import pytest

from tests.support.processes import REPO

TEST_LDAP_PORT = int(os.environ.get("TEST_LDAP_PORT", "13389"))
SUFFIX = "dc=example,dc=org"
ADMIN_DN = os.environ.get("LDAP_BIND_DN", f"cn=admin,{SUFFIX}")
ADMIN_PASSWORD = os.environ.get("LDAP_ADMIN_PASSWORD", "admin-password")
READER_DN = f"cn=limited-reader,{SUFFIX}"
READER_PASSWORD = os.environ.get("LDAP_READER_PASSWORD", "reader-password")


@dataclass(frozen=True)
class Directory:
    url: str
    bind_dn: str
    password: str
    infra_dir: Path | None  # where infra.sh keeps this slapd, when the tests may restart it
    port: int

    def admin(self) -> "ldap.ldapobject.LDAPObject":
        conn = ldap.initialize(self.url)
        conn.simple_bind_s(self.bind_dn, self.password)
        return conn

    def infra(self, command: str) -> None:
        assert self.infra_dir is not None, "this slapd was not started by the tests"
        env = {**os.environ, "INFRA_DIR": str(self.infra_dir), "LDAP_PORT": str(self.port)}
        subprocess.run([str(REPO / "scripts" / "infra.sh"), command, "ldap"], env=env, check=True)

    def ldapsearch(self, base: str, filterstr: str = "(objectClass=*)", *attrs: str) -> str:
        """What the server's own client sees: the check that does not trust our code."""
        done = subprocess.run(
            [
                "ldapsearch",
                "-x",
                "-LLL",
                "-H",
                self.url,
                "-D",
                self.bind_dn,
                "-w",
                self.password,
                "-b",
                base,
                filterstr,
                *attrs,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "LDAPNOINIT": "1"},
            check=False,
        )
        if done.returncode not in (0, 32):  # 32: no such object (the base is gone)
            raise AssertionError(f"ldapsearch failed ({done.returncode}): {done.stderr}")
        return done.stdout


@pytest.fixture(scope="session")
def directory() -> Iterator[Directory]:
    url = os.environ.get("LDAP_URI")
    if url:
        infra_dir = os.environ.get("TEST_LDAP_INFRA_DIR")
        yield Directory(
            url,
            ADMIN_DN,
            ADMIN_PASSWORD,
            Path(infra_dir) if infra_dir else None,
            int(url.rsplit(":", 1)[-1].strip("/")),
        )
        return
    found = Directory(
        f"ldap://127.0.0.1:{TEST_LDAP_PORT}",
        ADMIN_DN,
        ADMIN_PASSWORD,
        REPO / ".infra" / "test",
        TEST_LDAP_PORT,
    )
    found.infra("up")
    try:
        yield found
    finally:
        found.infra("down")


@pytest.fixture
def base_dn(directory: Directory) -> Iterator[str]:
    """An empty organizational unit of this test's own, removed afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    dn = f"ou={name},{SUFFIX}"
    conn = directory.admin()
    conn.add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [name.encode()])])
    yield dn
    conn = directory.admin()
    children = conn.search_s(dn, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
    for child, _ in sorted(children, key=lambda c: -len(c[0])):
        conn.delete_s(child)
    conn.unbind_s()


@pytest.fixture
async def closing() -> AsyncIterator[list[object]]:
    """Connections a test opened, closed after it."""
    opened: list[object] = []
    yield opened
    for connection in opened:
        await connection.close()  # type: ignore[attr-defined]
