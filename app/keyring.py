"""Secrets at rest, encrypted under SECRET_KEY with room for rotation.

A keyring is SECRET_KEY as configured: the current key first, older keys after it
(comma-separated, SECRET_KEY_PREVIOUS folded in by Settings). Writing always uses the
current key; reading tries every key, so a rotated deployment keeps reading what it stored
before until `smm-panel rotate-secret` has re-encrypted it. Each kind of secret has its own
purpose string, so one kind's ciphertext never decrypts as another's.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def keys_of(keyring: str) -> list[str]:
    """The keys, current first; an unset current key is an error, never a fallback."""
    current, *older = [k.strip() for k in keyring.split(",")]
    if not current:
        raise ValueError("SECRET_KEY is not set")
    return [current, *(k for k in older if k)]


def _fernet(key: str, purpose: str) -> Fernet:
    digest = hashlib.sha256(f"smm-panel/{purpose}/{key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _ring(keyring: str, purpose: str) -> MultiFernet:
    return MultiFernet([_fernet(key, purpose) for key in keys_of(keyring)])


def encrypt(keyring: str, purpose: str, plaintext: str) -> str:
    return _ring(keyring, purpose).encrypt(plaintext.encode()).decode()


def decrypt(keyring: str, purpose: str, token: str) -> str:
    """Raises InvalidToken when no key of the ring opens it."""
    return _ring(keyring, purpose).decrypt(token.encode()).decode()


def is_current(keyring: str, purpose: str, token: str) -> bool:
    """Whether `token` is already encrypted under the current (first) key."""
    try:
        _fernet(keys_of(keyring)[0], purpose).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(keyring: str, purpose: str, token: str) -> str:
    """The same plaintext under the current key (InvalidToken if no key opens it)."""
    return _ring(keyring, purpose).rotate(token.encode()).decode()
