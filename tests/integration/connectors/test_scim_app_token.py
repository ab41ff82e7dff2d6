"""The SaaS app's command line takes any bearer token, including one a random draw starts with
a dash: `secrets.token_urlsafe` does so about one time in 32, and the app then refused to start
("--bearer-token: expected one argument"), failing every SCIM test of that run."""

from pathlib import Path

import httpx

from scripts.scim_app import scim_app_answers
from tests.support.processes import free_port
from tests.support.scim_server import scim_server

REPO = Path(__file__).resolve().parents[3]


def test_a_token_starting_with_a_dash_starts_the_app_and_is_the_one_it_accepts() -> None:
    token = "-Ab3_starts-with-a-dash"
    log = REPO / ".infra" / "test" / "logs" / "scim2-server-dash-token.log"
    with scim_server(free_port(), log, token=token) as server:
        app = server.tenant("dash")
        assert scim_app_answers(app.base_url, token)
        assert app.get("/Users")["totalResults"] == 0
        refused = httpx.get(
            f"{app.base_url}/Users", headers={"Authorization": "Bearer another-token"}, timeout=10
        )
        assert refused.status_code == 401
