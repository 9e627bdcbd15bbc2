"""GenAI log events waiting for their span outlive a restart of the server: the new
process reads them back into its index, and the span that comes then takes them; the
project's redaction rules apply to them as to spans."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.conftest import new_project_key, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span


def _events(trace_id: str, span_id: str) -> bytes:
    export = ExportLogsServiceRequest()
    records = export.resource_logs.add().scope_logs.add().log_records
    for at, (name, text) in enumerate(
        (("gen_ai.user.message", "mail me at ana@example.com"), ("gen_ai.choice", "Done."))
    ):
        content = KeyValue(key="content", value=AnyValue(string_value=text))
        record = records.add(
            event_name=name,
            trace_id=bytes.fromhex(trace_id),
            span_id=bytes.fromhex(span_id),
            time_unix_nano=1_790_000_000_000_000_000 + at,
        )
        if name == "gen_ai.choice":
            message = AnyValue()
            message.kvlist_value.values.append(content)
            record.body.kvlist_value.values.append(KeyValue(key="message", value=message))
        else:
            record.body.kvlist_value.values.append(content)
    return export.SerializeToString()


def test_waiting_events_are_joined_after_a_restart_and_redacted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = start_server(data, tmp_path / "one.log", "--grpc-port", "0")
    key = new_project_key(process.store_url, "restart")
    protobuf = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"}
    trace_id, span_id = new_trace_id(), new_span_id()
    try:
        rules = httpx.put(
            f"{process.base_url}/api/v1/settings/redaction",
            json={"detectors": ["email"], "patterns": []},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert rules.status_code == 200, rules.text
        sent = httpx.post(
            f"{process.base_url}/v1/logs", content=_events(trace_id, span_id), headers=protobuf
        )
        assert sent.status_code == 200, sent.text
        assert httpx.get(f"{process.base_url}/healthz").json()["genai_spans_waiting"] == 1
    finally:
        stop_server(process)
    process = start_server(data, tmp_path / "two.log", "--grpc-port", "0")
    try:
        assert httpx.get(f"{process.base_url}/healthz").json()["genai_spans_waiting"] == 1
        body = request([span(trace_id, span_id, name="chat")]).SerializeToString()
        assert (
            httpx.post(f"{process.base_url}/v1/traces", content=body, headers=protobuf).status_code
            == 200
        )
        trace = httpx.get(
            f"{process.base_url}/api/v1/traces/{trace_id}",
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        (stored,) = trace["spans"]
        assert stored["input"] == [{"role": "user", "content": "mail me at [email]"}]
        assert stored["output"] == [{"role": "assistant", "content": "Done."}]
        assert trace["input_preview_text"] == "mail me at [email]"
        assert "ana@example.com" not in str(trace)
        assert httpx.get(f"{process.base_url}/healthz").json()["genai_spans_waiting"] == 0
    finally:
        stop_server(process)
