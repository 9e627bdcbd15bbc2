"""The judge: one chat completion on an OpenAI-compatible endpoint, with structured
output, a timeout and retries with back-off.

Only transient failures are retried (a timeout, a refused or dropped connection, 408,
409, 429 and 5xx); a 4xx such as a wrong key or model, or an answer that does not
parse, fails at once with the reason, which the run keeps.

The judge is any URL an evaluator names, so its answer is read as a hostile client's
body would be: the timeout bounds the whole call (httpx's bounds each read, so a judge
sending a byte at a time never timed out), and at most 1 MB of it is read (it was read
whole, however large, before its size was checked).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from threadline.server import pricing
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import MAX_REASON_CHARS, JudgeConfig
from threadline.server.evaluation.prompt import SYSTEM, score_schema
from threadline.server.model import ScoreConfig

_RETRIED_STATUSES = {408, 409, 429, 500, 502, 503, 504}
_MAX_ANSWER_BYTES = 1_000_000


class _TooLarge(Exception):
    pass


class JudgeFailed(Exception):
    """The judge gave no usable answer; ``str()`` says why, for the run's reason."""

    def __init__(self, reason: str, attempts: int = 1, usage: tuple[int, int] | None = None):
        super().__init__(reason[:MAX_REASON_CHARS])
        self.attempts = attempts
        self.usage = usage


@dataclass(frozen=True)
class Verdict:
    value: bool | float | str
    reasoning: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    attempts: int


@dataclass(frozen=True)
class JudgePolicy:
    """How a judge is called: the timeout, attempts and the URLs each key may go to
    come from the settings (``judge_timeout_seconds``, ``judge_attempts``,
    ``judge_key_urls``)."""

    timeout_s: float
    attempts: int
    first_pause_s: float = 1.0
    key_urls: KeyUrls = field(default_factory=KeyUrls)


async def judge(
    client: httpx.AsyncClient,
    config: JudgeConfig,
    score: ScoreConfig,
    prompt: str,
    policy: JudgePolicy,
) -> Verdict:
    """Ask the judge; a ``Verdict`` or ``JudgeFailed``."""
    headers = {"Content-Type": "application/json"}
    if config.api_key_env:
        # Checked at each call, not only when the evaluator was defined: the binding
        # may have changed since, and the key must never leave for another URL.
        refusal = policy.key_urls.refusal(config.api_key_env, str(config.base_url))
        if refusal is not None:
            raise JudgeFailed(refusal, attempts=0)
        key = os.environ.get(config.api_key_env)
        if not key:
            raise JudgeFailed(
                f"the judge's key variable {config.api_key_env} is not set on the server"
            )
        headers["Authorization"] = f"Bearer {key}"
    body = {
        "model": config.model,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt},
        ],
        "response_format": score_schema(score),
        "temperature": 0,
    }
    url = str(config.base_url).rstrip("/") + "/chat/completions"
    pause = policy.first_pause_s
    attempts = max(policy.attempts, 1)
    for attempt in range(1, attempts + 1):
        try:
            async with asyncio.timeout(policy.timeout_s):
                status, content = await _post(client, url, body, headers, policy.timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            failure = f"the judge did not answer within {policy.timeout_s:g} s"
        except httpx.TransportError as error:
            failure = f"cannot reach the judge at {url}: {type(error).__name__} {error}".strip()
        except _TooLarge:
            raise JudgeFailed("the judge's answer is larger than 1 MB", attempt) from None
        else:
            if status == 200:
                return _verdict(content, config, score, attempt)
            failure = f"the judge answered HTTP {status}: {_error_text(content)}"
            if status not in _RETRIED_STATUSES:
                raise JudgeFailed(failure, attempt)
        if attempt == attempts:
            raise JudgeFailed(f"{failure} (after {attempts} attempts)", attempt)
        await asyncio.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeout_s: float,
) -> tuple[int, bytes]:
    """The status and body of one call; ``_TooLarge`` past ``_MAX_ANSWER_BYTES``, read
    no further (a declared length past it is not read at all)."""
    async with client.stream(
        "POST", url, json=body, headers=headers, timeout=timeout_s
    ) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > _MAX_ANSWER_BYTES:
            raise _TooLarge
        content = bytearray()
        async for chunk in response.aiter_bytes():
            content += chunk
            if len(content) > _MAX_ANSWER_BYTES:
                raise _TooLarge
        return response.status_code, bytes(content)


def _error_text(content: bytes) -> str:
    try:
        document = json.loads(content)
        message = document.get("error", {}).get("message") or json.dumps(document)
    except (ValueError, AttributeError):
        message = content.decode("utf-8", "replace")
    return str(message)[:500]


def _verdict(body: bytes, config: JudgeConfig, score: ScoreConfig, attempt: int) -> Verdict:
    try:
        document = json.loads(body)
        message = document["choices"][0]["message"]
        usage = document.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeFailed("the judge's answer is not a chat completion", attempt) from None
    input_tokens = _int(usage.get("prompt_tokens"))
    output_tokens = _int(usage.get("completion_tokens"))
    used = (input_tokens or 0, output_tokens or 0)
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        refusal = message.get("refusal") if isinstance(message, dict) else None
        reason = f"the judge refused: {refusal}" if refusal else "the judge's answer is empty"
        raise JudgeFailed(reason, attempt, used)
    try:
        answer = json.loads(content)
    except ValueError:
        raise JudgeFailed(
            f"the judge's answer is not JSON: {content[:200]!r}", attempt, used
        ) from None
    if not isinstance(answer, dict) or "score" not in answer:
        raise JudgeFailed(f"the judge's answer has no score: {content[:200]!r}", attempt, used)
    reasoning = answer.get("reasoning")
    value = _value(answer["score"], score, attempt, used)
    model = document.get("model") or config.model
    return Verdict(
        value=value,
        reasoning=reasoning if isinstance(reasoning, str) else "",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=pricing.cost_usd(str(model), None, input_tokens, output_tokens),
        attempts=attempt,
    )


def _value(raw: Any, score: ScoreConfig, attempt: int, used: tuple[int, int]) -> bool | float | str:
    def bad(why: str) -> JudgeFailed:
        return JudgeFailed(f"the judge's score {raw!r} {why}", attempt, used)

    if score.data_type == "boolean":
        if not isinstance(raw, bool):
            raise bad("is not true or false")
        return raw
    if score.data_type == "categorical":
        if not isinstance(raw, str) or raw not in score.labels:
            raise bad(f"is not one of {score.labels}")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise bad("is not a number")
    if score.min_value is not None and raw < score.min_value:
        raise bad(f"is below {score.min_value:g}")
    if score.max_value is not None and raw > score.max_value:
        raise bad(f"is above {score.max_value:g}")
    return float(raw)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
