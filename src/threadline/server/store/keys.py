"""API keys: how one is minted, and the digest a store keeps instead of the key."""

from __future__ import annotations

import hashlib
import secrets

PREFIX_CHARS = 10


def new_key() -> str:
    return "tl_" + secrets.token_urlsafe(32)


def key_digest(key: str) -> bytes:
    # Keys are 256-bit random secrets, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(key.encode()).digest()


def key_prefix(key: str) -> str:
    """What lists show of a key, to tell keys apart."""
    return key[:PREFIX_CHARS]
