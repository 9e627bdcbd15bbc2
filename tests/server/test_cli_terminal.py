"""A span's text holds whatever a client sent, escape sequences and bidirectional
overrides too. ``threadline export`` and ``threadline sql`` printing it on a terminal show
each control character and override (``\\u001b``, ``\\u202e``) rather than let the
terminal act on it; into a pipe or a file they write it exactly."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import time
import tty
import uuid
from typing import Any

from tests.conftest import ProjectClient
from tests.integrations.fake_judge import UNREACHABLE_JUDGE
from threadline.server.cli.terminal import VisibleWriter, visible, visible_in_a_line

# Clear the screen, retitle the window, colour with an 8-bit CSI, delete, a carriage
# return that writes over the line's start, and a file name turned around in an isolate
# (an override: "gnp.exe" shows as "exe.png" where the terminal lays out bidi text).
FORGING = (
    "\x1b[2J\x1b]0;owned\x07 red \x9b31m ok\x7f and all good\rALL BAD"
    " \u2066\u202egnp.exe\u202c\u2069"
)
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
# What a terminal acts on: C0 controls but tab and newline, DEL, C1 (in UTF-8, C2 80-9F),
# and the bidirectional embeddings, overrides and isolates.
ACTED_ON = (
    [bytes([c]) for c in (*range(0x09), *range(0x0B, 0x20), 0x7F)]
    + [bytes([0xC2, c]) for c in range(0x80, 0xA0)]
    + [c.encode() for c in BIDI]
)


def _run(args: list[str], env: dict[str, str], terminal: bool) -> bytes:
    """The command's stdout, from a pseudo-terminal (raw: no newline translation) or
    from a pipe."""
    command = [sys.executable, "-m", "threadline.server", *args]
    if not terminal:
        done = subprocess.run(command, capture_output=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout
    reader, writer = pty.openpty()
    tty.setraw(writer)
    with subprocess.Popen(command, stdout=writer, stderr=subprocess.PIPE, env=env) as process:
        os.close(writer)
        out = b""
        while True:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # EIO: the command closed the terminal's last writer
                break
            if not chunk:
                break
            out += chunk
        os.close(reader)
        assert process.stderr is not None
        errors = process.stderr.read()
        assert process.wait(timeout=60) == 0, errors
    return out


def _acted_on(out: bytes) -> list[bytes]:
    text = out.replace(b"\r\n", b"\n")  # a CSV record's end
    return [c for c in ACTED_ON if c in text]


def _env(server: ProjectClient) -> dict[str, Any]:
    return {
        **os.environ,
        "THREADLINE_BASE_URL": server.base_url,
        "THREADLINE_API_KEY": server.api_key,
    }


def test_export_on_a_terminal_shows_control_characters_and_exact_into_a_pipe(
    server: ProjectClient,
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    server.send_span(
        {
            "threadline.session.id": f"{tag}-s",
            "threadline.tags": json.dumps([tag]),
            "threadline.span.input": FORGING,
            "threadline.span.output": "fine",
        },
        start_ns=time.time_ns() - 60 * 10**9,  # in the export's default window
    )
    env = _env(server)
    spans = ["export", "traces", "--include-spans", "--filter", f"tag={tag}"]
    rows = ["export", "traces", "--format", "csv", "--filter", f"tag={tag}"]

    # Into a pipe: exact (JSON writes the C0 controls as \u escapes itself, DEL and C1
    # as they are; CSV everything as it is).
    piped = _run(spans, env, terminal=False)
    (line,) = piped.decode().rstrip("\n").split("\n")
    assert json.loads(line)["spans"][0]["input"] == FORGING
    assert "\x9b" in piped.decode() and b"\x7f" in piped
    piped_csv = _run(rows, env, terminal=False)
    assert FORGING in piped_csv.decode()

    # On a terminal: nothing it acts on; the same JSON value; the CSV's text visible.
    shown = _run(spans, env, terminal=True)
    assert _acted_on(shown) == []
    (line,) = shown.decode().rstrip("\n").split("\n")
    assert json.loads(line) == json.loads(piped.decode())
    shown_csv = _run(rows, env, terminal=True)
    assert _acted_on(shown_csv) == []
    (header, record) = csv.reader(io.StringIO(shown_csv.decode()))
    assert record[header.index("input_preview")].startswith("\\u001b[2J\\u001b]0;owned\\u0007")
    assert "\\u009b31m ok\\u007f and all good\\u000dALL BAD" in shown_csv.decode()
    assert "ALL BAD \\u2066\\u202egnp.exe\\u202c\\u2069" in shown_csv.decode()


def test_sql_on_a_terminal_shows_control_characters(server: ProjectClient) -> None:
    session = f"sql-{uuid.uuid4().hex[:8]}"
    server.send_span({"threadline.session.id": session, "threadline.span.input": FORGING})
    query = f"SELECT payload(input) AS input FROM spans WHERE session_id = '{session}'"
    env = {**os.environ, "THREADLINE_DATA_DIR": str(server.process.data_dir)}
    for form in ("jsonl", "csv"):
        args = ["sql", query, "--format", form]
        piped = _run(args, env, terminal=False)
        shown = _run(args, env, terminal=True)
        assert FORGING in (json.loads(piped)["input"] if form == "jsonl" else piped.decode())
        assert _acted_on(shown) == [], form
        if form == "jsonl":
            assert json.loads(shown) == json.loads(piped)
        else:
            assert "\\u001b[2J" in shown.decode() and "\\u009b31m" in shown.decode()


def test_a_command_piped_into_head_stops_quietly(server: ProjectClient) -> None:
    """``threadline sql ... | head -1`` printed a BrokenPipeError traceback; every
    command now stops as export did: no traceback, status 1."""
    env = {**os.environ, "THREADLINE_DATA_DIR": str(server.process.data_dir)}
    rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000)"
    for args in (
        ["sql", f"{rows} SELECT i, 'a row long enough to fill pipes' AS text FROM n"],
        ["sql", f"{rows} SELECT i FROM n", "--format", "csv"],
    ):
        command = [sys.executable, "-m", "threadline.server", *args]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.readline()
            process.stdout.close()  # head has what it wanted
            errors = process.stderr.read().decode()
            status = process.wait(timeout=60)
        assert "Traceback" not in errors and "BrokenPipe" not in errors, (args, errors)
        assert status == 1, (args, status, errors)


def test_an_evaluators_model_stays_in_its_cell(server: ProjectClient) -> None:
    # A judge's model with a control character is refused now (a Name); a store written
    # by an older version may hold one. In the list's tab-separated table, a tab, line
    # end or escape in it would break the table or repaint the screen.
    from threadline.server.evaluation.model import EvaluatorIn
    from threadline.server.model import STORED
    from threadline.server.store import open_store

    name = f"cells-{uuid.uuid4().hex[:6]}"
    model = "gpt\t\x1b[31m-4\nx"
    evaluator = {
        "name": "judge",
        "prompt": "{{transcript}}",
        "judge": {**UNREACHABLE_JUDGE, "model": model},
        "score": {"name": "judge", "data_type": "boolean"},
    }
    store = open_store(server.process.store_url)
    try:
        project = store.create_project(name)
        store.put_evaluator(project.id, EvaluatorIn.model_validate(evaluator, context=STORED))
    finally:
        store.close()
    env = {**os.environ, "THREADLINE_DATA_DIR": str(server.process.data_dir)}
    listing = _run(["evaluators", "list", "--project", name], env, terminal=False).decode()
    header, line = listing.rstrip("\n").split("\n")
    fields = line.split("\t")
    assert len(fields) == len(header.split("\t"))
    assert fields[3] == "gpt\\u0009\\u001b[31m-4\\u000ax"


def test_a_character_split_between_chunks_is_shown_whole() -> None:
    text = "é \x9b\r\nline\rover \x1b ✓\r"
    whole = io.BytesIO()
    writer = VisibleWriter(whole)
    writer.write(text.encode())
    writer.close()
    split = io.BytesIO()
    writer = VisibleWriter(split)
    for byte in text.encode():  # every character split where it can be
        writer.write(bytes([byte]))
    writer.close()
    assert whole.getvalue() == split.getvalue() == visible(text).encode()
    assert visible(text) == "é \\u009b\r\nline\\u000dover \\u001b ✓\\u000d"


def test_bidirectional_overrides_are_shown_and_marks_kept() -> None:
    text = "".join(BIDI) + " \u200e\u200f ok"
    shown = visible(text)
    assert shown == "".join(f"\\u{ord(c):04x}" for c in BIDI) + " \u200e\u200f ok"
    assert visible_in_a_line(text) == shown
    assert json.loads(f'"{shown}"') == text  # the same JSON value
