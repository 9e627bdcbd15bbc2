"""The Laminar TypeScript SDK (``@lmnr-ai/lmnr``), unmodified, under Node, against the
real server over gRPC (its default transport) and OTLP/HTTP (``forceHttp``).

The SDK is pinned in ``lmnr_ts/package.json`` and its lock file; the test installs it
(``npm install`` from the lock file) the first time it runs. The program
(``lmnr_ts/program.mjs``) sends two conversations of two turns, each turn one
``observe()`` span with its session, user and tags; the test reads them back through
the API and builds the transcript as the session page does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from threadline.server.conversation import Message, turn_messages
from threadline.server.model import TraceDetail

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent / "lmnr_ts"
SESSIONS = [
    {"suffix": "a", "user": "ana", "questions": ["Where is order 1138?", "Refund it, please"]},
    {"suffix": "b", "user": "bob", "questions": ["Reset my password", "The link expired"]},
]


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are needed: apt-get install nodejs npm"
    if not (HERE / "node_modules" / "@lmnr-ai" / "lmnr").exists():
        # Not `npm ci`: the SDK lists optional per-platform packages that the registry
        # does not have for every platform, which the lock file cannot name, and `npm ci`
        # refuses a lock file without them. `install --no-save` takes the locked versions.
        subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund"],
            cwd=HERE,
            check=True,
            timeout=600,
        )
    return Path(node)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_laminar_typescript_sessions_users_and_payloads(server, node_sdk, transport) -> None:
    run = uuid.uuid4().hex[:8]
    sessions = [{**s, "id": f"ts-{transport}-{run}-{s['suffix']}"} for s in SESSIONS]
    grpc_port = server.process.grpc_address.rsplit(":", 1)[1]
    program_env = {
        "threadline_url": server.base_url,
        "api_key": server.api_key,
        "grpc_port": grpc_port,
        "transport": transport,
        "sessions": sessions,
    }
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LMNR_"))}
    done = subprocess.run(
        [str(node_sdk), "program.mjs"],
        cwd=HERE,
        env={**environ, "TL_TEST_PROGRAM": json.dumps(program_env)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for session in sessions:
        found = server.get(f"/api/v1/sessions/{session['id']}")
        assert found["trace_count"] == 2
        assert found["user_ids"] == [session["user"]]
        traces = [server.get(f"/api/v1/traces/{t['trace_id']}") for t in found["traces"]]
        for trace, question in zip(traces, session["questions"], strict=True):
            assert trace["name"] == "support-turn"
            assert trace["tags"] == ["ts"]
            (span,) = trace["spans"]
            assert span["span_type"] == "DEFAULT"
            assert span["output"] == f"Answer: {question}"
            # observe() records the call's arguments as a list: the one text shows.
            assert span["input"] == [question]
            assert json.loads(trace["input_preview"]) == question
        # The transcript, as the session page builds it.
        for trace, question in zip(traces, session["questions"], strict=True):
            said, replied = turn_messages(TraceDetail.model_validate(trace))
            assert said == [Message(role="user", text=question)]
            assert replied == [Message(role="assistant", text=f"Answer: {question}")]
