"""Encryption of provider credentials: unreadable at rest, bound to key and place."""

import pytest

from promptlogic.providers.secrets import SecretBox, SecretUnreadable

SECRET = "one-service-secret-key-long-enough-0123456789"


def test_ciphertext_hides_the_plaintext_and_decrypts_back():
    box = SecretBox(SECRET)
    token = box.encrypt("sk-live-plaintext", context="t/c/api_key")
    assert b"sk-live-plaintext" not in token
    assert box.encrypt("sk-live-plaintext", context="t/c/api_key") != token  # fresh nonce
    assert box.decrypt(token, context="t/c/api_key") == "sk-live-plaintext"


def test_another_secret_key_cannot_decrypt():
    token = SecretBox(SECRET).encrypt("sk-live-plaintext", context="t/c/api_key")
    with pytest.raises(SecretUnreadable):
        SecretBox(SECRET + "x").decrypt(token, context="t/c/api_key")


def test_a_ciphertext_moved_to_another_record_cannot_decrypt():
    box = SecretBox(SECRET)
    token = box.encrypt("sk-live-plaintext", context="tenant-a/conn-1/api_key")
    with pytest.raises(SecretUnreadable):
        box.decrypt(token, context="tenant-b/conn-2/api_key")
    with pytest.raises(SecretUnreadable):
        box.decrypt(b"garbage", context="tenant-a/conn-1/api_key")
