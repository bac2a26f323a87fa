"""Provider API keys at rest: encrypted under the SECRET_KEY keyring (app/keyring.py)."""

from __future__ import annotations

from app import keyring

PURPOSE = "provider-keys"


def encrypt_key(secret: str, api_key: str) -> str:
    return keyring.encrypt(secret, PURPOSE, api_key)


def decrypt_key(secret: str, token: str) -> str:
    return keyring.decrypt(secret, PURPOSE, token)
