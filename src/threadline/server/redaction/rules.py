"""A project's redaction rules as plain data: which built-in detectors are on, and the
user's own patterns. Plain, frozen and hashable, so that they travel to wherever spans
are normalised (another process included) and a compiled redactor can be cached by them.

User patterns are RE2 syntax (``google-re2``): RE2 matches in time linear in the text,
so no pattern can backtrack catastrophically on a hostile span; what RE2 lacks
(backreferences, lookaround) is refused with a 400 when the rules are set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import re2

from threadline.server.errors import BadRequest

# Each built-in detector, and the label its matches are replaced with ("[email]").
DETECTORS = {
    "email": "e-mail addresses",
    "phone": "phone numbers (international +CC..., or (NNN) NNN-NNNN)",
    "card": "payment card numbers (13-19 digits, Luhn-checked)",
    "secret": "API keys and secrets (sk-..., AKIA..., ghp_..., xox..-, JWTs, Bearer tokens, "
    "key=value pairs named key/secret/token/password)",
}
MAX_PATTERNS = 32
MAX_PATTERN_CHARS = 500
# RE2's own bound on a compiled program's memory (bytes): a pattern that needs more
# (a{1000}{1000}) is refused instead of compiled.
MAX_PROGRAM_BYTES = 1 << 20
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str  # the label of its matches: "[name]"
    regex: str  # RE2 syntax


@dataclass(frozen=True, slots=True)
class RedactionRules:
    detectors: tuple[str, ...] = ()
    patterns: tuple[Pattern, ...] = field(default=())

    @property
    def active(self) -> bool:
        return bool(self.detectors or self.patterns)

    def document(self) -> dict[str, Any]:
        """The rules as the API shows them (and the stores keep them, as JSON)."""
        return {
            "detectors": list(self.detectors),
            "patterns": [{"name": p.name, "regex": p.regex} for p in self.patterns],
        }

    def to_json(self) -> str:
        return json.dumps(self.document(), separators=(",", ":")) if self.active else ""

    @classmethod
    def from_json(cls, text: str | None) -> RedactionRules:
        """Rules as a store kept them (checked when they were set)."""
        if not text:
            return NO_RULES
        document = json.loads(text)
        return cls(
            detectors=tuple(document.get("detectors", ())),
            patterns=tuple(Pattern(p["name"], p["regex"]) for p in document.get("patterns", ())),
        )


NO_RULES = RedactionRules()


def compile_user_pattern(regex: str) -> Any:
    """An RE2 program for a user pattern; raises ``re2.error`` when it is not one."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_BYTES
    return re2.compile(regex, options=options)


def parse(detectors: list[str], patterns: list[tuple[str, str]]) -> RedactionRules:
    """Rules from what a user asked for, every part checked: unknown detectors, bad or
    duplicate names, too many or too long patterns and what RE2 cannot compile are a
    ``BadRequest`` that says which."""
    unknown = sorted(set(detectors) - DETECTORS.keys())
    if unknown:
        raise BadRequest(
            f"unknown detector(s) {', '.join(unknown)}: choose from {', '.join(DETECTORS)}"
        )
    if len(patterns) > MAX_PATTERNS:
        raise BadRequest(f"{len(patterns)} patterns: at most {MAX_PATTERNS}")
    seen: set[str] = set()
    checked: list[Pattern] = []
    for name, regex in patterns:
        if not _NAME.fullmatch(name):
            raise BadRequest(
                f"pattern name {name!r}: 1-32 characters of a-z, 0-9, '_' and '-', starting "
                "with a letter or digit (it labels what was removed: [name])"
            )
        if name in seen:
            raise BadRequest(f"two patterns named {name!r}")
        seen.add(name)
        if not regex or len(regex) > MAX_PATTERN_CHARS:
            raise BadRequest(f"pattern {name!r}: 1 to {MAX_PATTERN_CHARS} characters")
        try:
            program = compile_user_pattern(regex)
        except re2.error as error:
            raise BadRequest(
                f"pattern {name!r} is not an RE2 regular expression: {_why(error)}"
            ) from None
        if program.search(""):
            raise BadRequest(f"pattern {name!r} matches the empty text: it would match anywhere")
        checked.append(Pattern(name, regex))
    ordered = tuple(d for d in DETECTORS if d in set(detectors))
    return RedactionRules(detectors=ordered, patterns=tuple(checked))


def _why(error: Exception) -> str:
    reason = error.args[0] if error.args else str(error)
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return str(reason)
