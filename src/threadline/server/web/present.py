"""How values look on a page: numbers, durations, money, payloads and chat messages.

Pure functions, registered as Jinja filters in ``render.py``. The raw number always
goes into a ``data-value`` attribute beside its formatted text, so tests (and users
copying values) can compare a page with its JSON twin exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Payloads above this are cut on the server (the full value stays in the JSON API):
# a browser should not have to lay out megabytes of text.
MAX_PAYLOAD_CHARS = 100_000
# Payloads above this many lines start collapsed behind a "show all" expander.
COLLAPSE_LINES = 24


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def cost(usd: float | None) -> str:
    if usd is None:
        return "—"  # unknown is not free
    if usd == 0:
        return "$0"
    if usd < 0.0001:
        return "<$0.0001"
    if usd < 1:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:,}"


@dataclass(frozen=True)
class Message:
    role: str
    text: str  # what to show: the text content, or pretty JSON of anything else


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # OpenAI / OTel GenAI parts: [{"type": "text", "text"|"content": ...}, ...]
        texts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text", part.get("content"))
                texts.append(text if isinstance(text, str) else pretty(part))
            else:
                texts.append(str(part))
        return "\n".join(texts)
    return pretty(content)


def messages(value: Any) -> list[Message] | None:
    """Chat messages in a payload, whatever convention sent them; None if it has none.

    Handles a list of ``{"role", "content"|"parts"}``, an object with ``messages``, and
    OpenAI-style ``{"choices": [{"message": ...}]}``.
    """
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            return messages(value["messages"])
        if isinstance(value.get("choices"), list):
            found = [c.get("message") for c in value["choices"] if isinstance(c, dict)]
            return messages([m for m in found if m])
        if "role" in value and ("content" in value or "parts" in value):
            return messages([value])
        return None
    if not isinstance(value, list) or not value:
        return None
    result = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return None
        body = item.get("content", item.get("parts"))
        text = _content_text(body)
        calls = item.get("tool_calls")
        if calls:
            text = (text + "\n" if text else "") + pretty(calls)
        result.append(Message(role=item["role"], text=text))
    return result


def pretty(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def payload_text(value: Any) -> tuple[str, bool]:
    """Pretty text of a payload, cut at MAX_PAYLOAD_CHARS; and whether it was cut."""
    text = pretty(value)
    if len(text) > MAX_PAYLOAD_CHARS:
        return text[:MAX_PAYLOAD_CHARS], True
    return text, False


def is_long(text: str) -> bool:
    return text.count("\n") >= COLLAPSE_LINES or len(text) > 3000


def preview(raw: str | None, limit: int = 140) -> str:
    """One line of a stored preview (JSON text, possibly cut): its most telling text."""
    if not raw:
        return ""
    text = raw
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's stack
        value = None
    if value is not None:
        found = messages(value)
        if found:
            users = [m for m in found if m.role == "user"] or found
            text = users[-1].text
        elif isinstance(value, dict) and len(value) == 1:
            (only,) = value.values()
            text = only if isinstance(only, str) else json.dumps(only, ensure_ascii=False)
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    if "\\u" in raw and not text.isascii():
        # JSON may escape a lone surrogate, which parses but cannot be sent as UTF-8.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"
