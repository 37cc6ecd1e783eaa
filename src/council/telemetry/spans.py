"""Spans from the event stream: one span per run, a child per step and, under the step that
made it, one per model call (persona, model, tokens, cost, latency as attributes).

The sink only listens (the pipelines make no tracing calls): span times are the events' own
times, a model call's span starts `latency_ms` before its ModelCall event. The run's span ends
on RunFinished, which also flushes the exporter so a short-lived process loses nothing.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode, set_span_in_context

from council.events import BaseEvent

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_MS = 5000  # at the end of a run: a dead collector delays the exit at most this


@functools.cache
def tracer_provider(name: str) -> TracerProvider | None:
    """One provider per process for the exporter `name`; None (and a warning) if unknown."""
    exporter = _exporter(name)
    if exporter is None:
        return None
    # Resource.create also reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    provider = TracerProvider(resource=Resource.create({"service.name": "council"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter(name: str) -> SpanExporter | None:
    if name == "otlp":
        protocol = os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
        )
        if protocol.strip() not in ("", "http/protobuf"):
            print(
                f"council: OTLP protocol {protocol} is not supported (http/protobuf): no traces",
                file=sys.stderr,
            )
            return None
        # Reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT (HTTP + protobuf).
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)  # stdout is the run's output (--json)
    print(
        f"council: OTEL_TRACES_EXPORTER={name} is not supported (otlp, console): no traces",
        file=sys.stderr,
    )
    return None


def _ns(ts: float) -> int:
    return int(ts * 1e9)


class SpanSink:
    """An event sink turning one run's events into spans."""

    def __init__(self, provider: TracerProvider, kind: str) -> None:
        self.provider = provider
        self.kind = kind
        self.tracer = provider.get_tracer("council")
        self.run: Span | None = None
        self.steps: dict[str, Span] = {}

    def __call__(self, event: BaseEvent) -> None:
        try:
            self._on(event)
        except Exception:  # a tracing fault never stops a run
            log.exception("tracing: event %s dropped", getattr(event, "kind", "?"))

    def _on(self, event: BaseEvent) -> None:
        kind = getattr(event, "kind", "")
        if kind == "model_progress":
            return
        run = self._run_span(event)
        if kind == "step_started" and event.step:
            span = self.tracer.start_span(
                f"step {event.step}",
                context=set_span_in_context(run),
                start_time=_ns(event.ts),
                attributes={"council.step": event.step, "council.persona": event.persona or ""},
            )
            self.steps[event.step] = span
        elif kind == "step_finished" and event.step in self.steps:
            span = self.steps.pop(event.step)
            span.set_attribute("council.step.status", event.status)
            if event.status == "failed":
                span.set_status(Status(StatusCode.ERROR, event.detail[:200]))
            span.end(end_time=_ns(event.ts))
        elif kind == "model_call":
            self._model_call(event, self.steps.get(event.step or "", run))
        elif kind == "tests_reported":
            parent = self.steps.get(event.step or "", run)
            parent.add_event(
                "tests_reported",
                {"phase": event.phase, "passed": event.passed, "failed": event.failed},
                timestamp=_ns(event.ts),
            )
        elif kind == "run_finished":
            self._finish(event)

    def _run_span(self, event: BaseEvent) -> Span:
        if self.run is None:  # the first event: a start or a resume of the run
            self.run = self.tracer.start_span(
                f"council {self.kind}",
                start_time=_ns(event.ts),
                attributes={"council.run_id": event.run_id or "", "council.kind": self.kind},
            )
        if event.kind == "run_started":
            self.run.set_attributes(
                {"council.feature": event.feature[:500], "council.branch": event.branch}
            )
        return self.run

    def _model_call(self, event: BaseEvent, parent: Span) -> None:
        attributes = {
            "council.persona": event.persona or "",
            "gen_ai.request.model": event.alias,
            "gen_ai.response.model": event.model,
            "gen_ai.usage.input_tokens": event.prompt_tokens,
            "gen_ai.usage.output_tokens": event.completion_tokens,
            "council.cost_usd": event.cost_usd,
            "council.latency_ms": event.latency_ms,
            "council.cached": event.cached,
        }
        span = self.tracer.start_span(
            f"model {event.alias}",
            context=set_span_in_context(parent),
            start_time=_ns(event.ts - event.latency_ms / 1000),
            attributes=attributes,
        )
        if event.error:
            span.set_status(Status(StatusCode.ERROR, event.error[:200]))
        span.end(end_time=_ns(event.ts))

    def _finish(self, event: BaseEvent) -> None:
        end = _ns(event.ts)
        for span in self.steps.values():  # a stop leaves steps open: they end with the run
            span.end(end_time=end)
        self.steps.clear()
        assert self.run is not None
        self.run.set_attributes(
            {"council.status": event.status, "council.cost_usd": event.total_cost_usd}
        )
        if event.status != "green":
            self.run.set_status(Status(StatusCode.ERROR, event.reason[:200] or event.status))
        self.run.end(end_time=end)
        self.run = None
        self.provider.force_flush(FLUSH_TIMEOUT_MS)
