"""An app on the plain OpenTelemetry SDK and OpenTelemetry's OpenAI instrumentor, its
messages sent only as log events, seen in a real browser: the session page shows each
turn's question and reply, and the Sessions list its first question, whichever came
first, events or spans (docs/integrations.md)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.integrations.conversation import SESSIONS, ProgramEnv, run_program
from tests.integrations.fake_openai import FakeOpenAI

from .conftest import UI

pytest.importorskip("opentelemetry.instrumentation.openai_v2")


@pytest.mark.parametrize("order", ["events-first", "spans-first"])
def test_the_session_page_shows_the_messages_sent_as_log_events(ui: UI, server, order: str) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program(
            "test_otel_log_events",
            env,
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
            TL_PROTOCOL="http",
            TL_ORDER=order,
            TL_GRPC="",
        )
    session = SESSIONS[0]
    replies = [
        e.reply
        for e in fake.exchanges
        if e.request["messages"][1]["content"] == session.questions[0]
    ]
    page = ui.go("/sessions?range=all")
    preview = page.locator(f'tr[data-id="{env.session_id(session)}"] td.preview').first
    # Spans first, the late events filled the stored model calls: the same preview.
    expect(preview).to_have_text(session.questions[0])
    page = ui.go(f"/sessions/{env.session_id(session)}")
    said = page.locator(".turn .msg.role-user")
    expect(said).to_have_count(2)
    for index, question in enumerate(session.questions):
        expect(said.nth(index)).to_have_text(re.compile(rf"^\s*user\s*{re.escape(question)}\s*$"))
    replied = page.locator(".turn .msg.role-assistant")
    expect(replied).to_have_count(2)
    for index, reply in enumerate(replies):  # the second turn's reply was streamed
        expect(replied.nth(index)).to_contain_text(reply)
    ui.shot(f"otel-log-events-{order}")
