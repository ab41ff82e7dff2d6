"""Credential redaction, written once for every service's logs."""

import pytest
from provisioning_common.redaction import redacted_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
        ("mongodb://ops:s3cret@db:27017/x", "mongodb://ops:***@db:27017/x"),
        (
            "mongodb://app:s3cret@db-1,db-2/?replicaSet=rs0",
            "mongodb://app:***@db-1,db-2/?replicaSet=rs0",
        ),
        ("mongodb://ops:p@ss@db/x", "mongodb://ops:***@db/x"),
        ("mongodb://ops@db/x", "mongodb://ops@db/x"),
        (
            "mongodb://db/?tls=true&tlsCertificateKeyFilePassword=k3y",
            "mongodb://db/?tls=true&tlsCertificateKeyFilePassword=***",
        ),
        (
            "mongodb+srv://u:p@c/?authMechanismProperties=AWS_SESSION_TOKEN:t0k",
            "mongodb+srv://u:***@c/?authMechanismProperties=***",
        ),
    ],
)
def test_a_logged_uri_carries_no_secret(uri: str, shown: str) -> None:
    assert redacted_uri(uri) == shown


def test_the_runner_and_the_projector_log_through_it() -> None:
    from job_api.entrypoints import main, projector
    from sequence_runner import bootstrap

    for module in (main, projector, bootstrap):
        assert module.redacted_uri is redacted_uri
