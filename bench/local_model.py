"""Benchmark: the embedded local model in-process (llama.cpp through council.local).

Prints, per model: load time, prompt and generation speed (tokens per second) for a plain chat
answer and for a grammar-constrained Plan, and the peak resident memory of the process. Each
model is measured in a fresh subprocess so peak memory is its own. It reports; it does not assert.

    python bench/local_model.py                 # the tiny random-weight model the tests make
    python bench/local_model.py --model FILE.gguf   # also a real model file (e.g. the default)
    python bench/local_model.py --runs 5 --max-tokens 256

council runs the model in-process only; there is no llama.cpp server subprocess to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from council.local import LocalEngine
from council.personas.schemas import Plan

path, runs, max_tokens = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
started = time.perf_counter()
engine = LocalEngine(path)
load_s = time.perf_counter() - started
prompt = [
    {"role": "system", "content": "You are a careful senior Python engineer."},
    {"role": "user", "content": "Write a function that parses ISO dates and explain it. " * 8},
]
out = {"load_s": load_s, "chat": [], "plan": [], "prompt": [], "decode": []}
llm = engine.llm
text = " ".join(m["content"] for m in prompt) * 4
tokens = llm.tokenize(text.encode())[: max(64, min(2048, llm.n_ctx() - max_tokens - 8))]
for i in range(runs):
    # Prompt processing: a long prompt, one token out.
    llm.reset()
    t = time.perf_counter()
    llm.create_completion(tokens, max_tokens=1, temperature=0.0)
    out["prompt"].append({"s": time.perf_counter() - t, "tokens": len(tokens)})
    # Generation: exactly max_tokens tokens (end-of-text suppressed), unconstrained.
    llm.reset()
    t = time.perf_counter()
    done = llm.create_completion(
        tokens[:32], max_tokens=max_tokens, temperature=0.8, seed=i,
        logit_bias={llm.token_eos(): -1e9},
    )
    out["decode"].append(
        {"s": time.perf_counter() - t, "tokens": done["usage"]["completion_tokens"]}
    )
    for kind, schema in (("chat", None), ("plan", Plan.model_json_schema())):
        t = time.perf_counter()
        r = engine.chat(prompt, max_tokens=max_tokens, schema=schema, seed=i, temperature=0.2)
        elapsed = time.perf_counter() - t
        out[kind].append({
            "s": elapsed,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "constrained": r.constrained,
        })
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(path: Path, runs: int, max_tokens: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(runs), str(max_tokens)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring {path} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(label: str, result: dict) -> None:
    print(f"\n{label}")
    print(f"  load time            {result['load_s'] * 1000:8.0f} ms")
    for kind, label in (("prompt", "prompt processing"), ("decode", "generation")):
        rows = result[kind]
        speed = statistics.median(r["tokens"] / r["s"] for r in rows)
        tokens = statistics.median(r["tokens"] for r in rows)
        print(f"  {label:<20} {speed:8.1f} tokens/s (median of {len(rows)}, {tokens:.0f} tokens)")
    for kind in ("chat", "plan"):
        rows = result[kind]
        tokens = statistics.median(r["completion_tokens"] for r in rows)
        speed = statistics.median(r["completion_tokens"] / r["s"] for r in rows if r["s"] > 0)
        seconds = statistics.median(r["s"] for r in rows)
        ways = sorted({r["constrained"] or "free" for r in rows})
        print(
            f"  {kind:<5} answer  median {seconds:6.2f} s for {tokens:5.0f} tokens: "
            f"{speed:8.1f} tokens/s  ({', '.join(ways)})"
        )
    print(f"  peak memory          {result['peak_rss_mb']:8.0f} MB (resident, whole process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=[])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.fakes.tiny_gguf import write_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        tiny = write_tiny_model(Path(tmp) / "tiny.gguf")
        report(
            "tiny random-weight model (tests/fakes/tiny_gguf.py)",
            measure(tiny, args.runs, args.max_tokens),
        )
        for path in args.model:
            report(str(path), measure(path, args.runs, args.max_tokens))


if __name__ == "__main__":
    main()
