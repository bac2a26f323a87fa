"""Provider API keys at rest: encrypted with a key derived from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet


def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(("smm-panel/provider-keys/" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_key(secret: str, api_key: str) -> str:
    return _fernet(secret).encrypt(api_key.encode()).decode()


def decrypt_key(secret: str, token: str) -> str:
    return _fernet(secret).decrypt(token.encode()).decode()
