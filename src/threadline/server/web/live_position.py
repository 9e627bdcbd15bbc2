"""Live-mode positions as opaque tokens, one keyed cipher per project.

The store's feed position is one sequence across all projects: shown as a number, it
would let project B count project A's writes between two of its own. Pages and event
streams therefore show it enciphered: a 64-bit Feistel network whose round function
is HMAC-SHA256 under a server secret and the project's id. A token means something
only under its own project, and consecutive positions give unrelated tokens.

The secret is a file in ``data_dir`` made once (every worker reads the same one); a
token from another server (another secret) does not open, and the stream starts from
the current position instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from threadline.server.errors import BadRequest

_ROUNDS = 4
_MASK = 0xFFFFFFFF
_FILE = "live-position.key"


class LivePositions:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def seal(self, project_id: int, position: int) -> str:
        if not 0 <= position < 1 << 64:
            raise ValueError(f"position {position} is not 64-bit")
        left, right = position >> 32, position & _MASK
        for round_ in range(_ROUNDS):
            left, right = right, left ^ self._round(project_id, round_, right)
        return f"{(left << 32) | right:016x}"

    def open(self, project_id: int, token: str) -> int:
        """The position ``token`` stands for, or ``BadRequest``. ``0``, the start of
        the feed, reveals nothing and is accepted as it is."""
        if token == "0":
            return 0
        if len(token) != 16 or not all(c in "0123456789abcdef" for c in token):
            raise BadRequest(f"invalid live position {token[:40]!r}")
        value = int(token, 16)
        left, right = value >> 32, value & _MASK
        for round_ in reversed(range(_ROUNDS)):
            left, right = right ^ self._round(project_id, round_, left), left
        position = (left << 32) | right
        if position >= 1 << 63:  # a forged token: no store position is that large
            raise BadRequest(f"invalid live position {token!r}")
        return position

    def _round(self, project_id: int, round_: int, half: int) -> int:
        message = f"{project_id}:{round_}:{half}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big")


def load_secret(data_dir: Path) -> bytes:
    """The server's secret for live positions, made on first use (atomically: workers
    starting together all read the one that won)."""
    path = data_dir / _FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        scratch = data_dir / f".{_FILE}.{os.getpid()}"
        scratch.write_bytes(secrets.token_bytes(32))
        scratch.chmod(0o600)
        try:
            os.link(scratch, path)  # fails if another process made it first
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_bytes()
