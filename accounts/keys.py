"""API key material. A key reads `cb_<prefix>_<secret>`; the prefix finds the row, the
secret's SHA-256 proves possession (compared in constant time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX_LENGTH = 12
SECRET_BYTES = 30  # 240 bits


@dataclass(frozen=True)
class KeyMaterial:
    prefix: str
    secret: str

    @property
    def full(self) -> str:
        return f"cb_{self.prefix}_{self.secret}"


def generate() -> KeyMaterial:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(PREFIX_LENGTH))
    return KeyMaterial(prefix=prefix, secret=secrets.token_urlsafe(SECRET_BYTES))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(raw: str) -> KeyMaterial | None:
    if not raw.startswith("cb_"):
        return None
    prefix, sep, secret = raw[3:].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    return KeyMaterial(prefix=prefix, secret=secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
