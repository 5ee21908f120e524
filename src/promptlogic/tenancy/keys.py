"""API key format: `pl_<prefix>_<secret>`.

The prefix (12 lowercase hex characters) is stored in clear to find the row; the secret
(48 base32 characters, 240 random bits) is stored only as a SHA-256 digest. A slow password
hash would buy nothing against a secret this long and would cost every request its latency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PATTERN = re.compile(r"^pl_(?P<prefix>[0-9a-f]{12})_(?P<secret>[a-z2-7]{48})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    secret_hash: str
    plaintext: str


@dataclass(frozen=True, slots=True)
class PresentedKey:
    prefix: str
    secret: str


def generate() -> NewKey:
    prefix = secrets.token_hex(6)
    secret = base64.b32encode(secrets.token_bytes(30)).decode().lower()
    return NewKey(prefix=prefix, secret_hash=hash_secret(secret), plaintext=f"pl_{prefix}_{secret}")


def parse(token: str) -> PresentedKey | None:
    """Split a presented key into prefix and secret; None when it is not one of ours."""
    match = KEY_PATTERN.match(token)
    if match is None:
        return None
    return PresentedKey(prefix=match["prefix"], secret=match["secret"])


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(presented: PresentedKey, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    return hmac.compare_digest(hash_secret(presented.secret), secret_hash)
