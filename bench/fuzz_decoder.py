"""Fuzz the ingest decoder in-process: ``decompress`` + ``decode_request`` +
``normalize_request``, on protobuf and OTLP/JSON bodies, plain and gzip.

    python bench/fuzz_decoder.py --cases 20000                  # seeded mutation fuzzer
    python bench/fuzz_decoder.py --engine atheris --cases 20000 # coverage-guided (libFuzzer)

Any exception other than a ``ThreadlineError`` subclass (which the server answers with
a 4xx) is a failure: it would be a 500. Prints the cases run and the failures, and exits
1 if there was any. The mutation engine is deterministic for a given ``--seed``;
``tests/reliability/test_fuzz_decoder.py`` runs a few hundred of its cases in CI.

Each case is one byte choosing how to send (protobuf or JSON; gzip: none, the mutated
body compressed, or the mutated bytes themselves as the gzip stream) and the body.
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import json
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from threadline.server.errors import ThreadlineError
from threadline.server.ingest.decode import JSON, PROTOBUF, decode_request, decompress
from threadline.server.ingest.normalize import normalize_request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.otlp import any_value

LIMIT = 4 * 1024 * 1024  # inflate limit: small, so that bombs are refused quickly
KINDS = (PROTOBUF, JSON)


def seed_requests() -> list[ExportTraceServiceRequest]:
    """Small valid requests that reach every branch of normalisation."""
    rng = random.Random(7)
    attributes = [
        {
            "threadline.session.id": "s-1",
            "threadline.user.id": "u",
            "threadline.span.input": '{"messages": [{"role": "user", "content": "hi"}]}',
            "threadline.span.output": "ok",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 3,
            "threadline.tags": '["a", "b"]',
            "metadata": '{"plan": {"tier": [1, 2]}}',
            "threadline.metadata.k": "v",
        },
        {
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "x",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.usage.cost": 0.5,
            "list": [1, 2.5, "x", [True, b"\x00"]],
            "map": {"k": {"n": [None, -1]}},
        },
        {
            "openinference.span.kind": "LLM",
            "session.id": "s-2",
            "input.value": "q",
            "llm.token_count.prompt": 2**40,
            "nan": float("nan"),
            "inf": float("-inf"),
        },
    ]
    requests = []
    for attrs in attributes:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name", value=any_value("fuzz"))
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "fuzz"
        trace_id = rng.randbytes(16)
        for index, kind in enumerate((Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_SERVER)):
            span = Span(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                name=f"span-{index}",
                kind=kind,
                start_time_unix_nano=1_790_000_000_000_000_000,
                end_time_unix_nano=1_790_000_001_000_000_000,
                parent_span_id=scope.spans[0].span_id if index else b"",
            )
            span.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attrs.items())
            event = span.events.add(name="exception", time_unix_nano=1)
            event.attributes.add(key="exception.type", value=any_value("ValueError"))
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
            scope.spans.append(span)
        requests.append(request)
    return requests


def _to_json(request: ExportTraceServiceRequest) -> bytes:
    from google.protobuf.json_format import MessageToDict

    document = MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def seed_corpus() -> list[bytes]:
    """Cases (mode byte + body) to start from: each seed request in each mode."""
    corpus = []
    for request in seed_requests():
        for mode in range(6):
            body = _to_json(request) if mode % 2 else request.SerializeToString()
            if mode // 2 == 2:
                body = gzip.compress(body, mtime=0)
            corpus.append(bytes([mode]) + body)
    return corpus


def run_case(data: bytes) -> None:
    """One case through the ingest path; raises only what the server would 500 on."""
    if not data:
        return
    mode, body = data[0] % 6, data[1:]
    kind = KINDS[mode % 2]
    encoding = None
    if mode // 2 == 1:  # the mutated body, compressed: the decoder sees it inflated
        body, encoding = gzip.compress(body, mtime=0), "gzip"
    elif mode // 2 == 2:  # the mutated bytes as the gzip stream itself
        encoding = "gzip"
    try:
        normalize_request(decode_request(decompress(body, encoding, LIMIT), kind))
    except ThreadlineError:
        pass


# --- the seeded mutation engine -------------------------------------------------------

_INTERESTING = [
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff" * 10 + b"\x01",
    b"\x00" * 8,
    b'"',
    b"\\u0000",
    b"\\ud800",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"[" * 2000,
    b'{"a":' * 800,
    b"null",
    b"true",
    b"\xed\xa0\x80",
    b"\xc0\x80",
]


def mutate(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    body = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(8)
        at = rng.randrange(len(body) + 1)
        if choice == 0 and body and at < len(body):  # flip a byte
            body[at] = rng.randrange(256)
        elif choice == 1 and body and at < len(body):  # flip a bit
            body[at] ^= 1 << rng.randrange(8)
        elif choice == 2:  # delete a run
            del body[at : at + rng.randint(1, 32)]
        elif choice == 3:  # insert random bytes
            body[at:at] = rng.randbytes(rng.randint(1, 16))
        elif choice == 4:  # insert a value known to trouble parsers
            body[at:at] = rng.choice(_INTERESTING)
        elif choice == 5 and len(body) > 2:  # duplicate a chunk (repeated fields)
            start = rng.randrange(len(body))
            body[at:at] = body[start : start + rng.randint(1, 64)]
        elif choice == 6:  # splice with another seed
            other = rng.choice(corpus)
            cut = rng.randrange(len(other))
            body = body[:at] + bytearray(other[cut:])
        elif choice == 7 and body:  # change the mode byte (protobuf/JSON, gzip)
            body[0] = rng.randrange(6)
    return bytes(body)


def mutation_cases(count: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    corpus = seed_corpus()
    yield from corpus
    pool = list(corpus)
    for _ in range(count - len(corpus)):
        case = mutate(rng.choice(pool), rng, corpus)
        yield case
        if rng.random() < 0.05 and len(pool) < 2000:  # stack mutations now and then
            pool.append(case)


class Tally:
    def __init__(self) -> None:
        self.cases = 0
        self.failures: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, bytes] = {}

    def run(self, data: bytes) -> None:
        self.cases += 1
        try:
            run_case(data)
        except Exception as error:  # noqa: BLE001 - every other exception is a failure
            where = traceback.extract_tb(error.__traceback__)[-1]
            key = f"{type(error).__name__} at {where.filename}:{where.lineno}"
            self.failures[key] += 1
            self.examples.setdefault(key, data)

    def report(self, engine: str, seconds: float) -> int:
        total = sum(self.failures.values())
        print(
            f"engine={engine} cases={self.cases} failures={total} "
            f"seconds={seconds:.1f} cases/s={self.cases / max(seconds, 1e-9):.0f}"
        )
        for key, count in self.failures.most_common():
            print(f"  {count} x {key}; first input: {self.examples[key][:120]!r}")
        return 1 if total else 0


def fuzz_mutations(cases: int, seed: int) -> Tally:
    tally = Tally()
    for data in mutation_cases(cases, seed):
        tally.run(data)
    return tally


def fuzz_atheris(cases: int, seed: int, tally: Tally, report: Callable[[], None]) -> None:
    import atheris  # optional: pip install atheris

    def one_input(data: bytes) -> None:
        tally.run(data)
        if tally.cases >= cases:
            report()

    # The decoder modules are imported already: instrument the loaded bytecode (the
    # protobuf decoding itself is C, uninstrumented; the JSON and Python paths are).
    atheris.instrument_all()
    import os
    import tempfile

    corpus_dir = tempfile.mkdtemp(prefix="threadline-fuzz-")
    for index, case in enumerate(seed_corpus()):
        with open(os.path.join(corpus_dir, f"seed-{index}"), "wb") as file:
            file.write(case)
    atheris.Setup(
        [
            sys.argv[0],
            f"-seed={seed}",
            f"-runs={cases + 100}",
            "-max_len=65536",
            "-rss_limit_mb=4096",
            corpus_dir,
        ],
        one_input,
    )
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--engine", choices=("mutation", "atheris"), default="mutation")
    args = parser.parse_args()
    sys.setrecursionlimit(1000)  # the server's default: find what overflows there
    started = time.monotonic()
    if args.engine == "mutation":
        tally = fuzz_mutations(args.cases, args.seed)
        sys.exit(tally.report("mutation", time.monotonic() - started))
    tally = Tally()

    def report() -> None:
        os_exit = __import__("os")._exit
        sys.stdout.flush()
        code = tally.report("atheris", time.monotonic() - started)
        sys.stdout.flush()
        os_exit(code)  # libFuzzer has no clean way back from Fuzz()

    fuzz_atheris(args.cases, args.seed, tally, report)
    report()


if __name__ == "__main__":
    main()
