"""Encryption at rest for provider credentials (API keys, header values).

AES-256-GCM with a key derived from the service secret key through HKDF, so the secret key
itself is never used directly as a cipher key, and rotating it makes old ciphertexts unreadable
rather than wrongly readable. Each ciphertext is bound to its tenant, record and field (the
associated data), so a value copied into another row or tenant fails to decrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
NONCE_BYTES = 12
HKDF_SALT = b"promptlogic/provider-secrets"
HKDF_INFO = b"promptlogic provider credentials v1"


class SecretUnreadable(Exception):
    """A stored secret that the current secret key cannot decrypt (rotated key, moved value)."""


class SecretBox:
    """Encrypts and decrypts small secrets; one per app, built from the service secret key."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(derived)

    def __repr__(self) -> str:
        return "SecretBox(<hidden>)"

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """`context` names where the value lives (tenant, record, field); needed to decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return VERSION + nonce + sealed

    def decrypt(self, token: bytes, *, context: str) -> str:
        if token[:1] != VERSION or len(token) < 1 + NONCE_BYTES + 16:
            raise SecretUnreadable("unknown ciphertext format")
        nonce, sealed = token[1 : 1 + NONCE_BYTES], token[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, context.encode()).decode()
        except InvalidTag:
            raise SecretUnreadable("cannot decrypt with the current secret key") from None
