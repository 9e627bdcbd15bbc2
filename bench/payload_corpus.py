"""Bytes per stored span with the trained payload dictionary against plain zstd, on chat
spans made of real text found on this machine.

    python bench/payload_corpus.py --spans 6000

The corpus: chat applications, each with its own system prompt, sending the kind of
payloads LLM apps send: Python functions to explain (the standard library's own
source), JSON documents to extract from or answer with (the JSON files shipped in the
installed packages), questions over retrieved documentation (the plain-text docs in
/usr/share/doc and this repository's docs/), and multi-turn chats that resend their
history. The text is real; only its arrangement into chats is made up, by a seeded
random choice, so a run is repeatable on the same machine. Each span's input is its
message list as JSON, its output the assistant's message list, as ingest stores them.

Two measures, each plain zstd (level 1, as stored) against a dictionary trained on
the first ``payloads.TRAIN_AFTER`` packed payloads, as the store does:

- the payload columns alone (``payloads.Packer``), for every span and for the spans
  after the dictionary exists;
- the ``spans`` table, and the whole database file, per span: the spans written by
  ``SQLiteStore.write_spans`` into a store that trains and one that never does (the
  file holds rollups, indexes and the search index besides, which no dictionary
  changes).
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sqlite3
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore, payloads

_REPO = Path(__file__).resolve().parent.parent
_STDLIB = Path(sysconfig.get_paths()["stdlib"])
_SITE = Path(sysconfig.get_paths()["purelib"])


# --- real text ---------------------------------------------------------------------


def python_functions(limit: int) -> list[str]:
    """Function sources of the standard library, 300 to 4,000 characters each."""
    found: list[str] = []
    for path in sorted(_STDLIB.glob("*.py")):
        try:
            source = path.read_text()
            tree = ast.parse(source)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                text = ast.get_source_segment(source, node)
                if text and 300 <= len(text) <= 4000:
                    found.append(text)
        if len(found) >= limit:
            break
    return found[:limit]


def json_documents(limit: int) -> list[str]:
    """JSON files shipped with the installed packages and the system (/usr/share, the
    system Python's packages), cut to at most 3,000 characters at a line."""
    found: list[str] = []
    roots = (_SITE, Path("/usr/lib/python3/dist-packages"), Path("/usr/share"))
    paths = sorted(p for root in roots if root.is_dir() for p in root.rglob("*.json"))
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) < 200:
            continue
        if len(text) > 3000:
            text = text[: text.rfind("\n", 0, 3000) + 1] or text[:3000]
        found.append(text)
        if len(found) >= limit:
            break
    return found


def prose_paragraphs(limit: int) -> list[str]:
    """Paragraphs of plain-text documentation, 200 to 2,500 characters each."""
    files = sorted(
        p
        for p in Path("/usr/share/doc").rglob("*")
        if p.is_file() and (p.suffix in (".md", ".txt") or p.name.startswith("README"))
    )
    files += sorted((_REPO / "docs").glob("*.md"))
    found: list[str] = []
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for paragraph in text.split("\n\n"):
            paragraph = paragraph.strip()
            if 200 <= len(paragraph) <= 2500:
                found.append(paragraph)
        if len(found) >= limit:
            break
    return found[:limit]


# --- chats -------------------------------------------------------------------------


class Corpus:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.code = python_functions(3000)
        self.json = json_documents(1500)
        self.prose = prose_paragraphs(6000)
        # Each application's system prompt: a role, then instructions made of real
        # documentation paragraphs (as long as real system prompts are: 1-3 KB).
        roles = [
            "You are a senior Python engineer reviewing code for a team.",
            "You extract structured data and answer only with JSON.",
            "You answer questions about the documentation in the context below.",
            "You are a helpful assistant for the operators of a Linux server.",
        ]
        self.system = [
            role + "\n\n" + "\n\n".join(self.random.sample(self.prose, 2)) for role in roles
        ]

    def pick(self, texts: list[str]) -> str:
        return self.random.choice(texts)

    def turn(self, app: int) -> tuple[str, str]:
        """A user message and the assistant's answer for an application."""
        if app == 0:
            asked = (
                "Explain what this function does and suggest improvements:\n\n```python\n"
                + self.pick(self.code)
                + "\n```"
            )
            said = self.pick(self.prose) + "\n\n```python\n" + self.pick(self.code) + "\n```"
        elif app == 1:
            asked = "Extract the fields of this document as JSON:\n\n" + self.pick(self.prose)
            said = self.pick(self.json)
        elif app == 2:
            context = "\n\n---\n\n".join(self.random.sample(self.prose, 3))
            question = self.pick(self.prose).split(". ")[0]
            asked = f"Context:\n{context}\n\nQuestion: {question}?"
            said = self.pick(self.prose)
        else:
            asked = self.pick(self.prose).split("\n")[0]
            said = self.pick(self.prose)
        return asked, said

    def sessions(self) -> Iterator[list[tuple[str, str]]]:
        """Sessions of 1-6 LLM calls, each call's input and output as stored JSON text;
        a call resends the session's earlier turns, as chat apps do."""
        while True:
            app = self.random.randrange(len(self.system))
            history: list[dict[str, str]] = [{"role": "system", "content": self.system[app]}]
            calls = []
            for _ in range(self.random.randint(1, 6)):
                asked, said = self.turn(app)
                history.append({"role": "user", "content": asked})
                calls.append(
                    (
                        json.dumps(history, ensure_ascii=False),
                        json.dumps([{"role": "assistant", "content": said}], ensure_ascii=False),
                    )
                )
                history.append({"role": "assistant", "content": said})
            yield calls


def spans(corpus: Corpus, count: int) -> list[SpanRecord]:
    records: list[SpanRecord] = []
    now = time.time_ns()
    for s, calls in enumerate(corpus.sessions()):
        for t, (input, output) in enumerate(calls):
            start = now + (s * 10 + t) * 1_000_000_000
            records.append(
                SpanRecord(
                    trace_id=f"{s:016x}{t:016x}",
                    span_id=f"{s * 10 + t:016x}",
                    parent_span_id=None,
                    name="chat",
                    kind="CLIENT",
                    start_ns=start,
                    end_ns=start + 800_000_000,
                    status="ok",
                    span_type="GENERATION",
                    input=input,
                    output=output,
                    model="gpt-4o-mini",
                    input_tokens=len(input) // 4,
                    output_tokens=len(output) // 4,
                    total_tokens=(len(input) + len(output)) // 4,
                    session_id=f"session-{s}",
                    attributes={"gen_ai.system": "openai"},
                )
            )
            if len(records) == count:
                return records
    raise AssertionError("unreachable: sessions() never ends")


# --- measures ------------------------------------------------------------------------


def stored_bytes(value: str | bytes | None) -> int:
    if value is None:
        return 0
    return len(value) if isinstance(value, bytes) else len(value.encode("utf-8"))


def payload_bytes(records: list[SpanRecord]) -> dict[str, float]:
    """Payload bytes per span: plain zstd, and with a dictionary trained as the store
    trains it (on the first TRAIN_AFTER packed payloads, those packed plain)."""
    plain = payloads.Packer()
    learning = payloads.Packer()
    packer = learning
    trained_at = None
    totals = {"raw": 0, "plain": 0, "dictionary": 0, "plain_after": 0, "dictionary_after": 0}
    train_seconds = 0.0
    for i, record in enumerate(records):
        for text in (record.input, record.output):
            totals["raw"] += stored_bytes(text)
            a, b = stored_bytes(plain.pack(text)), stored_bytes(packer.pack(text))
            totals["plain"] += a
            totals["dictionary"] += b
            if trained_at is not None:
                totals["plain_after"] += a
                totals["dictionary_after"] += b
        plain.samples = []  # the plain packer keeps no samples worth holding
        if trained_at is None and len(learning.samples or []) >= payloads.TRAIN_AFTER:
            started = time.perf_counter()
            dictionary = payloads.train((learning.samples or [])[: payloads.TRAIN_AFTER])
            train_seconds = time.perf_counter() - started
            packer = payloads.Packer(dictionary)
            trained_at = i + 1
    after = len(records) - (trained_at or len(records))
    return {
        "spans": len(records),
        "trained_after_spans": trained_at or 0,
        "train_seconds": train_seconds,
        "raw_per_span": totals["raw"] / len(records),
        "plain_per_span": totals["plain"] / len(records),
        "dictionary_per_span": totals["dictionary"] / len(records),
        "plain_per_span_after": totals["plain_after"] / max(after, 1),
        "dictionary_per_span_after": totals["dictionary_after"] / max(after, 1),
    }


def file_bytes(records: list[SpanRecord], train: bool, tmp: Path) -> tuple[float, float]:
    """Per span once every span is written (WAL folded in): the ``spans`` table's bytes
    (its rows, overflow pages included: ``dbstat``), and the whole database file's
    (rollups, indexes and the search index too, which no dictionary changes)."""
    saved = payloads.TRAIN_AFTER
    if not train:
        payloads.TRAIN_AFTER = 10**12  # never enough samples: plain zstd throughout
    try:
        path = tmp / ("trained.db" if train else "plain.db")
        store = SQLiteStore(path)
        project = store.create_project("corpus").id
        for i in range(0, len(records), 100):
            store.write_spans(project, records[i : i + 100])
        store.close()
    finally:
        payloads.TRAIN_AFTER = saved
    # The standard library's module: dbstat is compiled into Debian's SQLite, not into
    # pysqlite3-binary's (the store's own driver, store/sqlite/driver.py).
    with sqlite3.connect(path) as conn:
        (table,) = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'spans'").fetchone()
    return table / len(records), path.stat().st_size / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    corpus = Corpus(args.seed)
    print(
        f"corpus: {len(corpus.code)} functions, {len(corpus.json)} JSON documents,"
        f" {len(corpus.prose)} paragraphs",
        file=sys.stderr,
    )
    records = spans(corpus, args.spans)
    result = payload_bytes(records)
    with tempfile.TemporaryDirectory() as tmp:
        result["table_plain_per_span"], result["file_plain_per_span"] = file_bytes(
            records, False, Path(tmp)
        )
        result["table_dictionary_per_span"], result["file_dictionary_per_span"] = file_bytes(
            records, True, Path(tmp)
        )
    result["payload_saving"] = 1 - result["dictionary_per_span"] / result["plain_per_span"]
    result["payload_saving_after"] = (
        1 - result["dictionary_per_span_after"] / result["plain_per_span_after"]
    )
    result["table_saving"] = (
        1 - result["table_dictionary_per_span"] / result["table_plain_per_span"]
    )
    result["file_saving"] = 1 - result["file_dictionary_per_span"] / result["file_plain_per_span"]
    for name, value in result.items():
        print(f"{name:28s} {value:12.3f}" if isinstance(value, float) else f"{name:28s} {value}")


if __name__ == "__main__":
    main()
