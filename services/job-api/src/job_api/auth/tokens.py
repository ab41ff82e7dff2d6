"""Random secrets and their hashes: keys and session tokens are stored only as sha256."""

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "pj_"


def new_api_key() -> str:
    # 32 random bytes: far too many to guess, so a plain sha256 (no slow KDF) is enough to store.
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison, so the time of a refusal says nothing about the secret."""
    return hmac.compare_digest(a.encode(), b.encode())
