"""Benchmark: `council heal` on the seeded corpus of broken projects (tests/fakes/heal_corpus.py).

Each case is a fresh git repository with a real Python (or Python + JavaScript) project, healed
by the real HealFlow (real git, uv, pytest, ruff, node, the sandbox) against a scripted
local model server with zero latency. Per case it prints what the heal did, whether that is
what a correct heal does with that case, the model calls and the wall time; then the counts:

  deterministic  failures fixed by deterministic recoveries alone (no model call)
  model patch    failures fixed with a reviewed model patch
  flaky          flaky tests recognised by a re-run (nothing edited)
  given up       failures correctly given up on (a person must act, or the model misbehaved)

and the median time per heal. One warm-up heal first (untimed) builds the uv env cache and
loads LiteLLM, so the figures are council's and the tools' time, not a cold `uv sync` or import.
It reports; it does not assert (exit 1 only when a case did something other than expected).

    python bench/heal_corpus.py [--rounds 1] [--only NAME]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fakes` lives in the repository, not in the package
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of prices

from tests.fakes import heal_corpus as hc  # noqa: E402
from tests.fakes.model_server import ScriptedModelServer  # noqa: E402

LABELS = {
    "deterministic": "fixed by deterministic recoveries alone",
    "model": "fixed with a reviewed model patch",
    "flaky": "recognised as flaky by a re-run",
    "given up": "correctly given up",
}


def heal_case(case: hc.Case, workdir: Path) -> tuple[str, int, float, str]:
    """(what the heal did, model calls, seconds, reason) for one fresh copy of `case`."""
    with ScriptedModelServer() as server:
        seeded = case.build(workdir, server)
        try:
            began = time.perf_counter()
            outcome = hc.heal(seeded, server)
            elapsed = time.perf_counter() - began
        finally:
            seeded.close()
        calls = len(server.requests)
    return hc.category(outcome, calls), calls, elapsed, outcome.reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="times to heal each case")
    parser.add_argument("--only", action="append", help="case name (repeatable)")
    args = parser.parse_args(argv)
    cases = [c for c in hc.CORPUS if not args.only or c.name in args.only]

    with tempfile.TemporaryDirectory(prefix="council-heal-bench-") as tmp:
        workdir = Path(tmp)
        os.environ["COUNCIL_CACHE_DIR"] = str(workdir / "cache")
        began = time.perf_counter()
        heal_case(hc.CASES["failing assertion"], workdir / "warm-up")
        warm = time.perf_counter() - began
        print(f"warm-up heal: {warm:.1f}s (env cache built, LiteLLM loaded)\n")

        header = f"{'case':<40} {'expected':<14} {'did':<14} {'ok':<3} {'calls':>5} {'s':>6}"
        print(header)
        print("-" * len(header))
        counts: Counter[str] = Counter()
        times: list[float] = []
        wrong = 0
        for round_ in range(args.rounds):
            for n, case in enumerate(cases):
                did, calls, elapsed, reason = heal_case(case, workdir / f"r{round_}-{n}")
                ok = did == case.expect
                wrong += not ok
                if ok:
                    counts[did] += 1
                times.append(elapsed)
                mark = "yes" if ok else "NO"
                print(
                    f"{case.name:<40} {case.expect:<14} {did:<14} {mark:<3} {calls:>5} "
                    f"{elapsed:>6.1f}"
                )
                if not ok:
                    print(f"    {reason}")

    total = len(cases) * args.rounds
    print()
    for key, label in LABELS.items():
        print(f"{label:<42} {counts[key]:>3} / {total}")
    print(f"{'heals that did something else':<42} {wrong:>3} / {total}")
    print(
        f"time per heal: median {statistics.median(times):.1f}s, "
        f"min {min(times):.1f}s, max {max(times):.1f}s ({total} heals)"
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
