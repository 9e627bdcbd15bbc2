"""Bearer secrets (API keys, share-link tokens): how one is minted, and the digest a
store keeps instead of the secret."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "tl_"
PREFIX_CHARS = 10


def new_secret(prefix: str) -> str:
    """A 256-bit random secret, URL-safe, after ``prefix`` (which says what it is)."""
    return prefix + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> bytes:
    # Secrets are 256-bit random values, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(secret.encode()).digest()


def new_key() -> str:
    return new_secret(KEY_PREFIX)


def key_digest(key: str) -> bytes:
    return secret_digest(key)


def key_prefix(key: str) -> str:
    """What lists show of a key, to tell keys apart."""
    return key[:PREFIX_CHARS]
