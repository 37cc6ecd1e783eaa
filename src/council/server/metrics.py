"""Prometheus metrics of the server, computed from the store at each scrape (`GET /metrics`).

The store is the truth, so every server and worker process sharing it reports the same
figures and nothing is lost on a restart. Counters are totals over the stored runs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select

from council.store import Store, schema

LATENCY_BUCKETS_S = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
STEP_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_ITERATION = re.compile(r"-\d+$")  # iteration-3 -> iteration: bounded label values


def _histogram(name: str, doc: str, label: str, samples: dict[str, list[float]], buckets):
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, observed in sorted(samples.items()):
        counts = [sum(1 for x in observed if x <= b) for b in buckets]
        family.add_metric(
            [value],
            buckets=[(str(b), c) for b, c in zip(buckets, counts, strict=True)]
            + [("+Inf", len(observed))],
            sum_value=sum(observed),
        )
    return family


class StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        runs, jobs, ex, steps = schema.runs, schema.jobs, schema.exchanges, schema.steps
        with self.store.read_connection() as conn:
            by_status = conn.execute(
                select(runs.c.kind, runs.c.status, func.count()).group_by(
                    runs.c.kind, runs.c.status
                )
            ).all()
            queue = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
            calls = conn.execute(
                select(
                    ex.c.persona,
                    ex.c.model,
                    ex.c.prompt_tokens,
                    ex.c.completion_tokens,
                    ex.c.cost_usd,
                    ex.c.latency_ms,
                    ex.c.error,
                    ex.c.cached,
                )
            ).all()
            step_rows = conn.execute(
                select(steps.c.name, steps.c.started_at, steps.c.finished_at).where(
                    steps.c.finished_at.is_not(None)
                )
            ).all()

        gauge = GaugeMetricFamily(
            "council_runs", "Runs by kind and status.", labels=["kind", "status"]
        )
        for kind, status, count in by_status:
            gauge.add_metric([kind, status], count)
        yield gauge
        depth = GaugeMetricFamily(
            "council_queue_jobs", "Jobs of the queue by status.", labels=["status"]
        )
        counts = dict(queue)
        for status in ("queued", "running", "done", "cancelled"):
            depth.add_metric([status], counts.get(status, 0))
        yield depth

        n = CounterMetricFamily("council_model_calls", "Model calls.", labels=["persona", "model"])
        errors = CounterMetricFamily(
            "council_model_errors", "Failed model calls.", labels=["model"]
        )
        tokens = CounterMetricFamily(
            "council_model_tokens", "Tokens sent and received.", labels=["model", "direction"]
        )
        cost = CounterMetricFamily(
            "council_cost_usd", "Model cost in USD.", labels=["persona", "model"]
        )
        tallies: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        failed: dict[str, int] = defaultdict(int)
        tok: dict[tuple[str, str], int] = defaultdict(int)
        latency: dict[str, list[float]] = defaultdict(list)
        for persona, model, prompt, completion, usd, ms, error, cached in calls:
            key = (persona or "-", model)
            tallies[key][0] += 1
            tallies[key][1] += usd
            failed[model] += int(error is not None)
            tok[(model, "prompt")] += prompt
            tok[(model, "completion")] += completion
            if not cached:
                latency[model].append(ms / 1000.0)
        for (persona, model), (count, usd) in sorted(tallies.items()):
            n.add_metric([persona, model], count)
            cost.add_metric([persona, model], usd)
        for model, count in sorted(failed.items()):
            errors.add_metric([model], count)
        for (model, direction), count in sorted(tok.items()):
            tokens.add_metric([model, direction], count)
        yield from (n, errors, tokens, cost)
        yield _histogram(
            "council_model_latency_seconds",
            "Model call latency (not cached).",
            "model",
            latency,
            LATENCY_BUCKETS_S,
        )
        durations: dict[str, list[float]] = defaultdict(list)
        for name, started, finished in step_rows:
            durations[_ITERATION.sub("", name)].append(max(0.0, finished - started))
        yield _histogram(
            "council_step_duration_seconds", "Step duration.", "step", durations, STEP_BUCKETS_S
        )


def registry_for(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
