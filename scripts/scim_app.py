"""scim2-server as the "SaaS app" of `make run`'s demo and of the tests: how it is started, and
how to tell that it serves SCIM.

scim2-server keeps its resources in memory only: every start is an empty application.
"""

from pathlib import Path

import httpx

# The bearer token of the demo's app when APP_SCIM_TOKEN is not set (documented in the README).
DEMO_TOKEN = "demo-scim-token"


def scim_app_argv(
    venv_bin: Path, port: int, token: str, *, host: str = "127.0.0.1", dynamic_tenants: bool = False
) -> list[str]:
    """The command line of a server that accepts only `token`, at `http://host:port/v2` (or,
    with dynamic tenants, `http://host:port/<tenant>/v2`, a tenant made by its first request)."""
    argv = [
        str(venv_bin / "scim2-server"),
        "--hostname",
        host,
        "--port",
        str(port),
        # One argument, `--bearer-token=…`: a random token may begin with "-" (token_urlsafe
        # draws from A-Z, a-z, 0-9, "-" and "_"), which argparse would take for an option.
        f"--bearer-token={token}",
    ]
    if dynamic_tenants:
        argv.append("--dynamic-tenants")
    return argv


def scim_app_answers(base_url: str, token: str) -> bool:
    """The app answers SCIM requests made with `token`: a listening port is not enough, a
    server still loading its schemas would refuse the first reads of a sequence."""
    try:
        answer = httpx.get(
            f"{base_url}/ServiceProviderConfig",
            headers={"Authorization": f"Bearer {token}"},
            timeout=2,
        )
    except httpx.HTTPError:
        return False
    return answer.status_code == 200
