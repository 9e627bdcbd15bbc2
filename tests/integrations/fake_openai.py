"""A local stand-in for the OpenAI API: the real ``/v1/chat/completions`` wire format.

Vendors' OpenAI instrumentations read the request and the response of the real
``openai`` client, so a server that answers exactly like the paid API (``choices``,
``usage``, ``model``) makes them produce the spans they would in production, with no
network. Answers are deterministic and recorded, so a test can assert that Threadline
stored what the program actually received:

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake")
        ...
        fake.exchanges[0].reply, fake.exchanges[0].usage

Usage: ``prompt_tokens`` is the number of whitespace-separated words in all request
messages, ``completion_tokens`` the number in the reply; the reply is
``"Answer <n>: <last user message>"``, ``n`` counting requests from 1. Non-streaming
chat completions (``/v1/chat/completions``) and Responses (``/v1/responses``: the
instructions and input count as the messages, the answer's id is ``resp_fake_<n>``) are
served; anything else is a 404 the client reports. ``cached_fraction`` reports that
share of the prompt tokens (rounded down) as cached, where OpenAI reports it
(``prompt_tokens_details.cached_tokens``, ``input_tokens_details.cached_tokens``).

A chat completion asked with ``stream`` comes as server-sent events, one chunk per word
of the reply and, when ``stream_options.include_usage`` asks for it, a last chunk with
the usage. ``call_tools``: a request that offers ``tools`` and ends with the user's
message is answered with a call of its first tool, ``{"query": <last user message>}``
as arguments (id ``call_fake_<n>``, no reply text); once the request ends with the
tool's result, with the usual reply.
"""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass
from typing import Any

from tests.integrations.loopback import JsonHandler, LoopbackServer

MODEL = "gpt-4o-mini-2024-07-18"


@dataclass(frozen=True)
class Exchange:
    """One chat completion: what the client sent and what it got back."""

    request: dict[str, Any]
    reply: str
    model: str
    usage: dict[str, int]
    #: The tool call answered instead of a reply (``call_tools``): OpenAI's form.
    tool_call: dict[str, Any] | None = None


class FakeOpenAI(LoopbackServer):
    """The fake server, on a free loopback port, from ``start()`` (or ``with``) on."""

    def __init__(
        self, model: str = MODEL, cached_fraction: float = 0.0, call_tools: bool = False
    ) -> None:
        self.model = model
        self.cached_fraction = cached_fraction
        self.call_tools = call_tools
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _answer(self, request: dict[str, Any], messages: list[Any]) -> tuple[int, str, dict]:
        """Record the exchange of ``request`` whose messages are ``messages``: its number,
        reply and usage (chat-completion names; ``cached_tokens`` beside them)."""
        last_user = next(
            (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        tools = request.get("tools") or []
        calls_tool = self.call_tools and tools and messages and messages[-1].get("role") == "user"
        with self._lock:
            number = len(self.exchanges) + 1
            reply = "" if calls_tool else f"Answer {number}: {last_user}"
            tool_call = (
                {
                    "id": f"call_fake_{number}",
                    "type": "function",
                    "function": {
                        "name": tools[0]["function"]["name"],
                        "arguments": json.dumps({"query": last_user}),
                    },
                }
                if calls_tool
                else None
            )
            prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
            completion_tokens = len(reply.split()) or 1
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "cached_tokens": int(prompt_tokens * self.cached_fraction),
            }
            self.exchanges.append(Exchange(request, reply, self.model, usage, tool_call))
        return number, reply, usage

    def respond(self, request: dict[str, Any]) -> dict[str, Any]:
        """The Responses API body answering ``request``; records the exchange."""
        given = request.get("input")
        messages: list[Any] = (
            [{"role": "user", "content": given}] if isinstance(given, str) else list(given or [])
        )
        if request.get("instructions"):
            messages.insert(0, {"role": "system", "content": request["instructions"]})
        number, reply, usage = self._answer(request, messages)
        return {
            "id": f"resp_fake_{number}",
            "object": "response",
            "created_at": 1_700_000_000 + number,
            "status": "completed",
            "model": self.model,
            "instructions": request.get("instructions"),
            "previous_response_id": request.get("previous_response_id"),
            "output": [
                {
                    "type": "message",
                    "id": f"msg_fake_{number}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": usage["prompt_tokens"],
                "input_tokens_details": {"cached_tokens": usage["cached_tokens"]},
                "output_tokens": usage["completion_tokens"],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage["total_tokens"],
            },
        }

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """The chat-completion body answering ``request``; records the exchange."""
        number, reply, counts = self._answer(request, request.get("messages") or [])
        usage: dict[str, Any] = {k: v for k, v in counts.items() if k != "cached_tokens"}
        if self.cached_fraction:
            usage["prompt_tokens_details"] = {"cached_tokens": counts["cached_tokens"]}
        said: dict[str, Any] = {"role": "assistant", "content": reply}
        tool_call = self.exchanges[number - 1].tool_call
        if tool_call is not None:
            said = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": 1_700_000_000 + number,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop" if tool_call is None else "tool_calls",
                    "message": said,
                }
            ],
            "usage": usage,
        }

    def stream(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks of a streamed answer to ``request`` (``complete``'s, in pieces)."""
        whole = self.complete(request)
        said, base = (
            whole["choices"][0]["message"],
            {
                "id": whole["id"],
                "object": "chat.completion.chunk",
                "created": whole["created"],
                "model": whole["model"],
            },
        )
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        words = (said["content"] or "").split(" ") if said["content"] else []
        deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
        for call in said.get("tool_calls") or []:
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            **call,
                            "function": {**call["function"], "arguments": arguments[:half]},
                        }
                    ]
                }
            )
            deltas.append(
                {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]}
            )
        chunks = [
            {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
        ]
        finish = whole["choices"][0]["finish_reason"]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": whole["usage"]})
        return chunks

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer = {
                    "/v1/chat/completions": fake.complete,
                    "/v1/responses": fake.respond,
                }.get(self.path.rstrip("/"))
                if answer is None:
                    return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                request = json.loads(body)
                if request.get("stream"):
                    if answer != fake.complete:
                        return self.send_json(400, {"error": {"message": "streaming not faked"}})
                    return self.send_events(fake.stream(request))
                self.send_json(200, answer(request))

            def send_events(self, chunks: list[dict[str, Any]]) -> None:
                events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
                payload = "".join(events).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""
