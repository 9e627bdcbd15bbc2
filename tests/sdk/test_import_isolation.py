"""``pip install threadline`` is the light SDK: importing it must not need server deps."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_ONLY = (
    "fastapi",
    "uvicorn",
    "starlette",
    "pydantic",
    "jinja2",
    "threadline.server",
    "genai_prices",
    "httpx",
)


def test_import_threadline_pulls_in_no_server_dependency() -> None:
    code = (
        "import json, sys\n"
        "import threadline\n"
        "from threadline import Threadline, observe, SpanType\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_ONLY!r}"
        f" or m.startswith('threadline.server'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_public_surface() -> None:
    import threadline

    assert sorted(threadline.__all__) == ["SpanType", "Threadline", "observe"]


def test_span_types_match_semconv() -> None:
    from threadline import SpanType, semconv

    assert tuple(t.value for t in SpanType) == semconv.SPAN_TYPES
