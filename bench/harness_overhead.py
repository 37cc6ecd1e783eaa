"""Benchmark: council's own overhead per build/refine iteration, next to the test command's time.

Runs the whole `council run` flow (TddFlow, real git, real uv env, real pytest, real LiteLLM)
on a fresh copy of examples/profile-service against a zero-latency scripted model server, N
times. Builder's first code has a wrong path and Artisan fixes it, so every run has two
iterations (iteration-1: Builder, iteration-2: Artisan).

Per iteration, from the store's events only:
  wall     StepFinished.ts - StepStarted.ts of the `iteration-N` step
  tests    sum of CommandRun.duration_s of pytest commands in that step
  model    sum of ModelCall.latency_ms in that step (the scripted server answers at once)
  overhead wall - tests - model: what council itself spends (prompt, edits, sandbox, parse,
           events, store)
and, to show where it goes: `pre` (step start to the test command's start, minus model time)
and `post` (the test command's end to step end).

Target: overhead under 300 ms and under 10% of the test command's time, per iteration.
It reports; it does not assert (exit 0 either way).

    python bench/harness_overhead.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fakes` lives in the repository, not in the package
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of prices

from council.config import parse_config  # noqa: E402
from council.events import (  # noqa: E402
    BaseEvent,
    CommandRun,
    Emitter,
    ModelCall,
    StepFinished,
    StepStarted,
)
from council.pipelines.run import TddFlow  # noqa: E402
from council.store import Store  # noqa: E402
from tests.fakes import council_script as cs  # noqa: E402
from tests.fakes.model_server import ScriptedModelServer  # noqa: E402

TARGET_MS = 300.0
TARGET_RATIO = 0.10


@dataclass
class Iteration:
    run: int
    step: str
    persona: str
    wall_s: float
    tests_s: float
    model_s: float
    pre_s: float
    post_s: float

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.tests_s - self.model_s

    @property
    def ratio(self) -> float:
        return self.overhead_s / self.tests_s if self.tests_s else float("inf")

    @property
    def on_target(self) -> bool:
        return self.overhead_s * 1000 < TARGET_MS and self.ratio < TARGET_RATIO


def _is_test_command(event: CommandRun) -> bool:
    return any(Path(arg).name == "pytest" or arg == "pytest" for arg in event.argv)


def iterations_from(events: list[BaseEvent], run: int) -> list[Iteration]:
    """Per `iteration-N` step: wall time, test command time, model time, from stored events."""
    rows: list[Iteration] = []
    started: dict[str, StepStarted] = {}
    for e in events:
        if isinstance(e, StepStarted) and (e.step or "").startswith("iteration-"):
            started[e.step] = e
        elif isinstance(e, StepFinished) and e.step in started:
            begin = started.pop(e.step)
            inside = [x for x in events if x.step == e.step and begin.ts <= x.ts <= e.ts]
            tests = [x for x in inside if isinstance(x, CommandRun) and _is_test_command(x)]
            model_s = sum(x.latency_ms for x in inside if isinstance(x, ModelCall)) / 1000
            tests_s = sum(x.duration_s for x in tests)
            # CommandRun is emitted when the command ends; it started duration_s earlier.
            first_start = min((x.ts - x.duration_s for x in tests), default=e.ts)
            last_end = max((x.ts for x in tests), default=e.ts)
            rows.append(
                Iteration(
                    run=run,
                    step=e.step,
                    persona=begin.persona or "",
                    wall_s=e.ts - begin.ts,
                    tests_s=tests_s,
                    model_s=model_s,
                    pre_s=first_start - begin.ts - model_s,
                    post_s=e.ts - last_end,
                )
            )
    return rows


def one_run(workdir: Path, name: str) -> tuple[str, list[BaseEvent], float]:
    """The whole flow on a fresh copy of the example; (status, stored events, wall seconds)."""
    repo = cs.make_repo(workdir / name)
    with ScriptedModelServer() as server:
        cs.script_happy_path(server, build=cs.BUILD_WRONG_REPLY)
        server.script("artisan", cs.REFINE_REPLY)
        config = parse_config(cs.council_yaml(server))
        with Store.for_repo(repo) as store:
            began = time.perf_counter()
            pipeline = TddFlow.start(
                repo=repo, feature=cs.FEATURE, config=config, store=store, emit=Emitter()
            )
            outcome = pipeline.execute()
            elapsed = time.perf_counter() - began
            events = store.events(outcome.run_id)
    status = outcome.status if outcome.status == "green" else f"{outcome.status}: {outcome.reason}"
    return status, events, elapsed


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.0f}"


def print_table(rows: list[Iteration]) -> None:
    header = (
        f"{'run':>3} {'step':<12} {'persona':<8} {'wall ms':>8} {'tests ms':>8} "
        f"{'model ms':>8} {'overhd ms':>9} {'ovh/test':>8} {'pre ms':>8} {'post ms':>8}  target"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.run:>3} {r.step:<12} {r.persona:<8} {_ms(r.wall_s)} {_ms(r.tests_s)} "
            f"{_ms(r.model_s)} {_ms(r.overhead_s):>9} {r.ratio * 100:7.1f}% "
            f"{_ms(r.pre_s)} {_ms(r.post_s)}  {'ok' if r.on_target else 'MISS'}"
        )


def summary_line(rows: list[Iteration]) -> str:
    if not rows:
        return "no iteration steps were recorded: nothing to measure"
    overheads = [r.overhead_s * 1000 for r in rows]
    ratios = [r.ratio * 100 for r in rows]
    met = sum(r.on_target for r in rows)
    return (
        f"overhead per iteration: median {statistics.median(overheads):.0f} ms, "
        f"max {max(overheads):.0f} ms (target < {TARGET_MS:.0f} ms); "
        f"overhead/tests median {statistics.median(ratios):.1f}%, max {max(ratios):.1f}% "
        f"(target < {TARGET_RATIO * 100:.0f}%); {met}/{len(rows)} iterations on target: "
        f"{'TARGET MET' if met == len(rows) else 'TARGET MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="COUNCIL_CACHE_DIR to use (default: a fresh temporary folder, warmed first)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
        workdir = Path(tmp)
        os.environ["COUNCIL_CACHE_DIR"] = str(args.cache_dir or workdir / "cache")

        # Warm-up, untimed: builds the project env into the cache and loads LiteLLM.
        began = time.perf_counter()
        status, _, _ = one_run(workdir, "warm-up")
        print(f"warm-up run: {status} ({time.perf_counter() - began:.1f}s, env cache warmed)")

        rows: list[Iteration] = []
        for n in range(1, args.runs + 1):
            status, events, elapsed = one_run(workdir, f"run-{n}")
            print(f"run {n}: {status} ({elapsed:.1f}s for the whole flow)")
            rows.extend(iterations_from(events, n))

    print()
    print_table(rows)
    print()
    print(summary_line(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
