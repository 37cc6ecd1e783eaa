"""OpenTelemetry traces of a run: a real `council run` against the scripted model server, with
OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver on 127.0.0.1 (a tiny http.server
that keeps the POSTed protobuf bodies, decoded with opentelemetry-proto). Also: nothing imports
opentelemetry when no exporter is configured."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from council.store import Store
from council.telemetry import exporter_name
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer
from tests.test_cli import Result, cache_dir, council, repo_with_config  # noqa: F401 (fixtures)


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced(council, receiver, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    with ScriptedModelServer() as srv:
        cs.script_happy_path(srv)
        repo = repo_with_config(tmp_path_factory.mktemp("traced"), srv)
        endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
        result: Result = council(
            "run",
            cs.FEATURE,
            "--repo",
            str(repo),
            extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "NO_PROXY": "127.0.0.1"},
        )
    assert result.code == 0, result.out + result.err
    spans = []
    for path, body in receiver.bodies:
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    with Store.for_repo(repo) as store:
        run = store.latest_run()
        assert run is not None
        calls = store.events(run.id, kinds=["model_call"])
        steps = store.events(run.id, kinds=["step_started"])
    return run, spans, calls, steps


def _attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


@pytest.mark.slow
def test_a_run_is_one_trace_of_steps_and_model_calls(traced):
    run, spans, calls, steps = traced
    roots = [s for s in spans if not s.parent_span_id]
    assert [s.name for s in roots] == ["council run"]
    root = roots[0]
    assert _attrs(root)["council.run_id"] == run.id
    assert _attrs(root)["council.status"] == "green"
    assert {s.trace_id for s in spans} == {root.trace_id}
    step_spans = [s for s in spans if s.name.startswith("step ")]
    assert len(step_spans) == len(steps) > 0
    assert all(s.parent_span_id == root.span_id for s in step_spans)
    by_id = {s.span_id: s for s in step_spans}
    model_spans = [s for s in spans if s.name.startswith("model ")]
    assert len(model_spans) == len(calls) > 0
    for span, call in zip(
        sorted(model_spans, key=lambda s: s.end_time_unix_nano), calls, strict=True
    ):
        attrs = _attrs(span)
        assert attrs["council.persona"] == call.persona
        assert attrs["gen_ai.request.model"] == call.alias
        assert attrs["gen_ai.usage.input_tokens"] == call.prompt_tokens
        assert attrs["gen_ai.usage.output_tokens"] == call.completion_tokens
        assert attrs["council.cost_usd"] == pytest.approx(call.cost_usd)
        assert span.end_time_unix_nano - span.start_time_unix_nano == pytest.approx(
            call.latency_ms * 1e6, abs=1e4
        )
        parent = by_id[span.parent_span_id]  # under the step that made the call
        assert parent.name == f"step {call.step}"
        assert parent.start_time_unix_nano <= span.end_time_unix_nano
        assert span.end_time_unix_nano <= parent.end_time_unix_nano


def test_the_exporter_comes_from_the_standard_variables():
    assert exporter_name({}) is None
    assert exporter_name({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == "otlp"
    assert exporter_name({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h/v1/traces"}) == "otlp"
    assert exporter_name({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    off = {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h"}
    assert exporter_name(off) is None
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h"}
    assert exporter_name(disabled) is None


def test_opentelemetry_is_not_imported_without_an_exporter():
    code = (
        "import sys, council.cli, council.pipelines.lifecycle, council.telemetry\n"
        "from council.events import Emitter\n"
        "council.telemetry.attach_tracing(Emitter(), 'run')\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_stopped_run_ends_its_open_steps_and_marks_errors():
    """The same sink on the SDK's in-memory exporter: a run stopped mid-step, a failed call."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from council.events import Emitter, ModelCall, RunFinished, StepStarted
    from council.telemetry.spans import SpanSink

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emit = Emitter("r1")
    emit.subscribe(SpanSink(provider, "heal"))
    emit.step = "plan"
    emit(StepStarted(persona="pacer", ts=100.0))
    emit(ModelCall(persona="pacer", alias="council-fast", error="timed out", ts=101.0))
    emit(RunFinished(status="stopped", reason="budget reached", ts=102.0))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"council heal", "step plan", "model council-fast"}
    assert spans["step plan"].end_time == spans["council heal"].end_time == 102 * 10**9
    assert spans["model council-fast"].status.status_code is StatusCode.ERROR
    assert spans["council heal"].status.description == "budget reached"
    assert spans["model council-fast"].parent.span_id == spans["step plan"].context.span_id
