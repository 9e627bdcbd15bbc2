"""The SDK's OpenAI auto-instrumentation, seen in a real browser: a program using only
``Threadline.initialize()``, ``@observe`` (recording neither argument nor result) and the
real ``openai`` client against the local fake shows its conversation on the session
page, in the list's previews and on the trace's chat span, tool call included."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.integrations.conversation import SESSIONS, SYSTEM_PROMPT, ProgramEnv, run_program
from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.test_sdk_openai import TOOL_RESULT, TOOL_SESSION

from .conftest import UI

pytest.importorskip("opentelemetry.instrumentation.openai_v2")


def test_the_session_page_shows_each_turn_of_an_instrumented_openai_app(ui: UI, server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_sdk_openai", env)
    session = SESSIONS[0]
    replies = [
        e.reply
        for e in fake.exchanges
        if e.request["messages"][1]["content"] == session.questions[0]
    ]
    page = ui.go("/sessions?range=all")
    row = page.locator(f'tr[data-id="{env.session_id(session)}"]')
    expect(row.locator("td.preview").first).to_have_text(session.questions[0])
    page = ui.go(f"/sessions/{env.session_id(session)}")
    said = page.locator(".turn .msg.role-user")
    expect(said).to_have_count(2)
    for index, question in enumerate(session.questions):
        expect(said.nth(index)).to_have_text(re.compile(rf"^\s*user\s*{re.escape(question)}\s*$"))
    replied = page.locator(".turn .msg.role-assistant")
    expect(replied).to_have_count(2)
    for index, reply in enumerate(replies):  # the second turn's reply was streamed
        expect(replied.nth(index)).to_contain_text(reply)
    ui.shot("sdk-openai-session")


def test_the_trace_page_shows_the_tool_call_and_its_result(ui: UI, server) -> None:
    with FakeOpenAI(call_tools=True) as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_sdk_openai", env, TL_MODE="tools")
    asked, answered = fake.exchanges
    assert asked.tool_call is not None
    detail = server.get(f"/api/v1/sessions/{env.run_id}-{TOOL_SESSION}")
    page = ui.go(f"/traces/{detail['traces'][0]['trace_id']}")
    page.locator(".span-row", has_text="chat gpt-4o-mini").last.click()
    inputs = page.get_by_test_id("span-input")
    expect(inputs.locator(".msg .role")).to_have_text(["system", "user", "assistant", "tool"])
    expect(inputs.locator(".msg.role-system")).to_contain_text(SYSTEM_PROMPT)
    expect(inputs.locator(".msg.role-assistant")).to_contain_text("lookup_order")
    expect(inputs.locator(".msg.role-tool")).to_contain_text(TOOL_RESULT)
    expect(page.get_by_test_id("span-output").locator(".msg.role-assistant")).to_contain_text(
        answered.reply
    )
    ui.shot("sdk-openai-tool-call")
