"""OpenTelemetry traces of a run, made from its event stream (spans.py), only when the standard
environment asks for them: OTEL_TRACES_EXPORTER (otlp, console; none turns them off) or
OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. Nothing here imports
opentelemetry unless traces are on, so `council --help` and untraced runs pay nothing.
"""

from __future__ import annotations

import os

from council.events import Emitter

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def exporter_name(env: os._Environ[str] | dict[str, str] = os.environ) -> str | None:
    """The exporter the environment asks for ("otlp", "console"), or None: no traces."""
    name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if name == "none" or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if name:
        return name.split(",")[0].strip()
    return "otlp" if any(env.get(var) for var in ENDPOINT_VARS) else None


def attach_tracing(emit: Emitter, kind: str) -> None:
    """Subscribe a span-making sink to the run's events when traces are configured."""
    name = exporter_name()
    if name is None:
        return
    from council.telemetry.spans import SpanSink, tracer_provider

    provider = tracer_provider(name)
    if provider is not None:
        emit.subscribe(SpanSink(provider, kind))
