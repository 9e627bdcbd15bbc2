"""Fixtures of the web UI tests: a real headless Chromium, signed-in pages, and a
project filled through OTLP with chat sessions whose totals are known exactly.

Chromium is Debian's ``chromium`` package at /usr/bin/chromium, driven by the
``playwright`` Python package (no ``playwright install``). If it is missing the
tests fail: CI installs it, and a skipped UI suite would hide a broken UI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.otlp import new_trace_id

from .turns import MS, Turn, turn_spans

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
S = 1_000_000_000  # nanoseconds


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class UI:
    """A signed-in browser tab on the test's project."""

    page: Page
    base_url: str
    test_name: str
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.test_name}-{name}.png"), full_page=True)


def sign_in(page: Page, base_url: str, key: str) -> None:
    page.goto(base_url + "/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/sessions$"))


@pytest.fixture
def ui(browser: Browser, server: Any, request: pytest.FixtureRequest) -> Iterator[UI]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    view = UI(page, server.base_url, request.node.name)
    # Any script error or CSP violation on any page fails the test.
    page.on("pageerror", lambda error: view.errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda msg: view.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    # Air-gapped: every request a page makes goes to Threadline itself.
    page.on(
        "request",
        lambda req: (
            view.errors.append(f"external request: {req.url}")
            if not req.url.startswith((server.base_url, "data:", "blob:"))
            else None
        ),
    )
    sign_in(page, server.base_url, server.api_key)
    yield view
    context.close()
    assert not view.errors, view.errors


# --- a project with known sessions ---------------------------------------------------


@dataclass
class Scenario:
    base_ns: int
    sessions: dict[str, list[Turn]]  # session id -> its turns in order
    users: dict[str, str]  # session id -> user id
    lone: Turn  # a trace in no session
    old_session: str  # active days ago, outside "last 24 hours"


def send(server: Any, spans: list) -> None:
    server.send(spec.proto() for spec in spans)


@pytest.fixture
def scenario(server: Any) -> Scenario:
    base = (time.time_ns() // S - 2 * 3600) * S  # two hours ago, on a whole second

    def turns(
        start: int,
        spec: list[tuple[str, str, int, int, int, float, int]],
        error_at: int | None = None,
    ) -> list[Turn]:
        found, clock = [], start
        for i, (q, a, ms, tin, tout, cost, idle_s) in enumerate(spec):
            clock += idle_s * S
            found.append(
                Turn(
                    new_trace_id(),
                    q,
                    a,
                    clock,
                    ms,
                    tin,
                    tout,
                    cost,
                    error="order service timed out" if i == error_at else None,
                )
            )
            clock += ms * MS
        return found

    alpha = turns(
        base,
        [
            ("Where is my order #1234?", "It ships tomorrow.", 1200, 300, 40, 0.0012, 0),
            (
                "Can it go to Lisbon instead?",
                "Yes, I changed the address.",
                2500,
                420,
                55,
                0.0034,
                30,
            ),
            ("Thanks! Anything else I need?", "No, you are all set.", 800, 510, 20, 0.0005, 75),
        ],
    )
    beta = turns(
        base + 600 * S,
        [
            ("Do you ship to Osaka?", "We do, in 5 days.", 900, 200, 30, 0.001, 0),
            ("Refund my last order", "Sorry, the order service is down.", 1500, 250, 35, 0.002, 20),
        ],
        error_at=1,
    )
    old = turns(
        base - 3 * 24 * 3600 * S,
        [
            ("Hello from last week", "Hello!", 500, 100, 10, 0.0001, 0),
        ],
    )
    lone = turns(base + 1200 * S, [("One-off question", "One-off answer", 700, 50, 5, 0.0002, 0)])[
        0
    ]
    history: list[dict[str, str]] = []
    for turn in alpha:
        send(
            server,
            turn_spans(
                turn,
                "sess-alpha",
                "alice",
                history=list(history),
                tags=["vip"],
                metadata={"plan": "pro"},
            ),
        )
        history += [
            {"role": "user", "content": turn.question},
            {"role": "assistant", "content": turn.answer},
        ]
    for turn in beta:
        # Plain spans, no chat messages: the transcript falls back to the root's I/O.
        send(server, turn_spans(turn, "sess-beta", "bob", chat=False, metadata={"plan": "free"}))
    send(server, turn_spans(old[0], "sess-old", "alice"))
    send(server, turn_spans(lone, None, "carol"))
    return Scenario(
        base,
        {"sess-alpha": alpha, "sess-beta": beta, "sess-old": old},
        {"sess-alpha": "alice", "sess-beta": "bob", "sess-old": "alice"},
        lone,
        "sess-old",
    )


def cells(row: Any) -> dict[str, str]:
    """A table row's ``data-col`` -> ``data-value`` (the raw numbers beside the text)."""
    return row.locator("[data-col]").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.col, e.dataset.value ?? '']))"
    )


def close(a: str, b: float | None, places: int = 6) -> bool:
    """A page's ``data-value`` equals the API's number (None is shown as empty)."""
    if b is None:
        return a == ""
    return abs(float(a) - b) < 10**-places
