"""Credentials taken out of connection strings before they reach a log line or an answer."""

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Query options that carry a secret, e.g. MongoDB's tlsCertificateKeyFilePassword or
# authMechanismProperties=AWS_SESSION_TOKEN:…
_SECRET_OPTION = re.compile(
    r"(?i)(^|&)([^=&]*(?:password|secret|token|authmechanismproperties)[^=&]*)=[^&]*"
)


def redacted_uri(uri: str) -> str:
    """`uri` with its password (and any secret query option) replaced by ***; the user stays,
    so an operator can still tell which account a service connects as.

    mongodb://app:s3cret@db-1,db-2/?replicaSet=rs0 -> mongodb://app:***@db-1,db-2/?replicaSet=rs0
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        # Not even a URL: say nothing of it rather than risk printing a secret.
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    query = _SECRET_OPTION.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
