"""Benchmark: runs per minute through `council serve`, and the API's latency under that load.

For each worker count (1, 2, 4 by default) and each way of executing (the embedded pool, and
Celery workers over a redis-server started on 127.0.0.1), the bench starts a real server (and
workers), submits `--runs` tests-given runs of a small leap-year exercise (each on a repository
of its own, so they may run in parallel) answered at once by the scripted model server, and
waits for all of them. It prints:

  runs/min   finished runs per minute (submit of the first to the end of the last)
  green      how many ended green
  list p50/p99, show p50/p99   latency of GET /api/runs and GET /api/runs/{id}, sampled
             continuously while the runs go on

It reports; it does not assert. A warm-up run first builds the cached test environment.

    python bench/serve_throughput.py [--workers 1 2 4] [--runs 8] [--mode embedded celery]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fakes` lives in the repository, not in the package
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402

from tests.fakes import serve as sv  # noqa: E402
from tests.fakes.model_server import ScriptedModelServer  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _redis(stack: ExitStack, folder: Path) -> str:
    port = sv.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(lambda: (process.terminate(), process.wait(10)))
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0"


def _workers(stack: ExitStack, n: int, broker: str, data: Path) -> None:
    """`n` Celery workers on the server's folder `data` (its database, its logs)."""
    data.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        log = open(data / f"worker{i}.log", "ab")  # noqa: SIM115 - closed with the stack
        stack.callback(log.close)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "council.cli",
                "worker",
                "--broker",
                broker,
                "--data",
                str(data),
                "--name",
                f"bench{i}@%h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(lambda p=process: (p.terminate(), p.wait(30)))


def measure(
    mode: str,
    workers: int,
    runs: int,
    model: ScriptedModelServer,
    tmp: Path,
    timeout_s: float = 600,
) -> dict:
    data = tmp / f"{mode}-{workers}"
    repos = [sv.leap_repo(data / "repos" / f"leap{i}", model) for i in range(runs)]
    sv.script_runs(model, runs)
    with ExitStack() as stack:
        if mode == "celery":
            broker = _redis(stack, data)
            _workers(stack, workers, broker, data / "server")  # the server's own database
            server = stack.enter_context(sv.serve(data / "server", "--broker", broker, workers=0))
        else:
            server = stack.enter_context(sv.serve(data / "server", workers=workers))
        http = httpx.Client(base_url=server.url, timeout=60)
        latencies: dict[str, list[float]] = {"list": [], "show": []}
        done = threading.Event()
        ids: list[str] = []

        def sample() -> None:
            while not done.is_set():
                for name, path in (("list", "/api/runs"), ("show", f"/api/runs/{ids[0]}")):
                    start = time.perf_counter()
                    http.get(path)
                    latencies[name].append((time.perf_counter() - start) * 1000)
                done.wait(0.05)

        start = time.perf_counter()
        for repo in repos:
            body = {"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]}
            ids.append(http.post("/api/runs", json=body).json()["id"])
        sampler = threading.Thread(target=sample)
        sampler.start()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                rows = {r["id"]: r for r in http.get("/api/runs", params={"limit": 500}).json()}
                if all(rows[i]["job_status"] in ("done", "cancelled") for i in ids):
                    break
                if time.monotonic() > deadline:
                    states = sorted(f"{rows[i]['job_status']}/{rows[i]['status']}" for i in ids)
                    logs = sorted((data / "server").glob("*.log"))
                    tails = "".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in logs)
                    raise TimeoutError(f"not finished in {timeout_s:.0f} s: {states}\n{tails}")
                time.sleep(0.5)
        finally:
            done.set()
            sampler.join()
        elapsed = time.perf_counter() - start
        green = sum(1 for i in ids if rows[i]["status"] == "green")
    return {
        "mode": mode,
        "workers": workers,
        "runs/min": runs / elapsed * 60,
        "green": f"{green}/{runs}",
        "list p50": _percentile(latencies["list"], 0.5),
        "list p99": _percentile(latencies["list"], 0.99),
        "show p50": _percentile(latencies["show"], 0.5),
        "show p99": _percentile(latencies["show"], 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--mode", nargs="+", default=["embedded", "celery"])
    args = parser.parse_args()
    if "celery" in args.mode and shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (scripts/setup installs it)")
    with (
        tempfile.TemporaryDirectory(prefix="council-serve-bench-") as tmp,
        ScriptedModelServer() as model,
    ):
        os.environ.setdefault("COUNCIL_CACHE_DIR", str(Path(tmp) / "cache"))
        measure("embedded", 1, 1, model, Path(tmp) / "warm-up")  # builds the test environment
        print(
            f"{'mode':9} {'workers':>7} {'runs/min':>9} {'green':>6} "
            f"{'list p50':>9} {'list p99':>9} {'show p50':>9} {'show p99':>9}  (ms)"
        )
        for mode in args.mode:
            for workers in args.workers:
                r = measure(mode, workers, args.runs, model, Path(tmp))
                print(
                    f"{r['mode']:9} {r['workers']:>7} {r['runs/min']:>9.1f} {r['green']:>6} "
                    f"{r['list p50']:>9.1f} {r['list p99']:>9.1f} "
                    f"{r['show p50']:>9.1f} {r['show p99']:>9.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
