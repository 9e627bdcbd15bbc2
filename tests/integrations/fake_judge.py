"""A local judge: an OpenAI-compatible ``/v1/chat/completions`` that answers with
structured output (``response_format`` json_schema), deterministically, and can be
told to fail, hang or answer nonsense. No test reaches a real LLM.

The verdict is read from the prompt: a boolean score is true when the transcript has
the word "thanks" (the user's problem was resolved), a numeric score is the number of
turns (clamped to the schema's range when its description gives one), a categorical
score is the first label that appears in the transcript (else the first label). The
reasoning says what was counted. Usage is counted in words, like ``fake_openai``.

    with FakeJudge() as judge:
        judge.mode = "fail"       # 500 on every call ("hang": never answer in time;
                                  # "garbage": 200 with content that is not JSON;
                                  # "reject": 400; "drip": 200, then a byte every
                                  # 0.2 s for hang_seconds; "flood": 200 and
                                  # flood_bytes of body, undeclared, as fast as read;
                                  # "redirect": 307 to redirect_to + the same path)
        judge.failures_left = 2   # fail the next two calls only, then answer
"""

from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.integrations.loopback import JsonHandler, LoopbackServer

MODEL = "gpt-4o-mini"
# The judge of an evaluator that is saved but never run: nothing listens on port 9
# (discard), so a call that went out after all would fail, not reach a judge.
UNREACHABLE_JUDGE = {
    "base_url": "http://127.0.0.1:9/v1",
    "model": "m",
    "api_key_env": "THREADLINE_JUDGE_X",
}


@dataclass(frozen=True)
class JudgeCall:
    request: dict[str, Any]
    headers: dict[str, str]
    status: int


class FakeJudge(LoopbackServer):
    def __init__(self, model: str = MODEL) -> None:
        self.model = model
        self.mode = "ok"
        self.failures_left: int | None = None  # None: the mode holds for every call
        self.hang_seconds = 30.0
        self.delay_seconds = 0.0  # before each answer that is not a hang
        self.flood_bytes = 256 << 20
        self.redirect_to = ""  # the base URL mode "redirect" sends a call on to
        self.calls: list[JudgeCall] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def answered(self) -> list[JudgeCall]:
        with self._lock:
            return [c for c in self.calls if c.status == 200]

    def _mode_now(self) -> str:
        with self._lock:
            if self.failures_left is None:
                return self.mode
            if self.failures_left > 0:
                self.failures_left -= 1
                return self.mode
            return "ok"

    def verdict(self, request: dict[str, Any]) -> tuple[Any, str]:
        prompt = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
        schema = request["response_format"]["json_schema"]["schema"]["properties"]["score"]
        turns = prompt.count("--- turn ")
        if schema["type"] == "boolean":
            resolved = "thanks" in prompt.lower()
            return resolved, f"{turns} turns; the user {'thanked' if resolved else 'never thanked'}"
        if schema["type"] == "string":
            label = next((lab for lab in schema["enum"] if lab in prompt), schema["enum"][0])
            return label, f"{turns} turns; label {label}"
        value = float(turns)
        bounds = re.findall(r"at (least|most) (-?[\d.]+)", schema.get("description", ""))
        for kind, bound in bounds:
            value = max(value, float(bound)) if kind == "least" else min(value, float(bound))
        return value, f"{turns} turns counted"

    def complete(self, request: dict[str, Any], mode: str) -> tuple[int, dict[str, Any] | str]:
        if mode == "fail":
            return 500, {"error": {"message": "the fake judge was told to fail"}}
        if mode == "reject":
            return 400, {"error": {"message": "the fake judge rejects this request"}}
        if mode == "garbage":
            content = "I think it went fine, maybe a 7?"
        else:
            value, reasoning = self.verdict(request)
            content = json.dumps({"reasoning": reasoning, "score": value})
        words = sum(len(str(m.get("content", "")).split()) for m in request["messages"])
        usage = {
            "prompt_tokens": words,
            "completion_tokens": len(content.split()),
            "total_tokens": words + len(content.split()),
        }
        return 200, {
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": usage,
        }

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        judge = self

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                request = json.loads(body)
                mode = judge._mode_now()
                if mode in ("drip", "flood"):
                    with judge._lock:
                        judge.calls.append(JudgeCall(request, dict(self.headers), 200))
                    return self._stream(mode)
                if mode == "redirect":
                    with judge._lock:
                        judge.calls.append(JudgeCall(request, dict(self.headers), 307))
                    self.send_response(307)
                    self.send_header("Location", judge.redirect_to.rstrip("/") + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if mode == "hang":
                    time.sleep(judge.hang_seconds)
                    status, document = 500, {"error": {"message": "hung"}}
                else:
                    time.sleep(judge.delay_seconds)
                    status, document = judge.complete(request, mode)
                with judge._lock:
                    judge.calls.append(JudgeCall(request, dict(self.headers), status))
                self.send_json(status, document)

            def _stream(self, mode: str) -> None:
                """A body with no length, ended by closing the connection: a byte at
                a time, or a flood."""
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    if mode == "drip":
                        deadline = time.monotonic() + judge.hang_seconds
                        while time.monotonic() < deadline:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.2)
                    else:
                        chunk = b" " * (1 << 20)
                        for _ in range(judge.flood_bytes >> 20):
                            self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a bounded client does

        return Handler


def main() -> None:
    """Serve in a process of its own, as a remote judge would be: print the base URL,
    then answer until standard input closes. The benchmarks run it this way, at a low
    CPU priority, so that the far side of judging neither shares the senders'
    interpreter nor takes the cores from the server it measures."""
    with FakeJudge() as judge:
        print(judge.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
