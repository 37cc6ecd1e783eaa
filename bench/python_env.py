"""Benchmark: building a Python project's test environment, cold and warm, per worktree.

On a small real project (examples/profile-service: FastAPI, an editable install by the legacy
setuptools backend), the wall time of `PythonToolchain.prepare`:

- cold: an empty council cache (uv's own download cache stays warm, as on a used machine);
- warm, same tree: the next run on the same worktree;
- warm, new worktree: the same dependencies on another path, as every `council run` has
  (the dependencies are reused; the project is installed into that tree's layer);
- and the first test run on it, so the env's cost is seen next to what it serves.

    python bench/python_env.py [--runs 3] [--src DIR]

`--src` points at another checkout's `src/` to measure that version of council the same way
(the figures before and after a change). It reports; it does not assert.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "profile-service"


def _copy(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".ruff_cache", "__pycache__"))
    git = ["git", "-C", str(dest)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i"])
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--src", type=Path, default=None, help="council's src/ to measure")
    args = parser.parse_args()
    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))
    from council.toolchains import PythonToolchain

    toolchain = PythonToolchain()
    cold, same, fresh, tests = [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-env-") as tmp:
            work, cache = Path(tmp), Path(tmp) / "cache"
            first, second = _copy(work / "tree-1"), _copy(work / "tree-2")
            started = time.perf_counter()
            toolchain.prepare(first, cache_dir=cache)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            toolchain.prepare(first, cache_dir=cache)
            same.append(time.perf_counter() - started)
            started = time.perf_counter()
            env = toolchain.prepare(second, cache_dir=cache)
            fresh.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = toolchain.run_tests(second, env, timeout_s=300)
            tests.append(time.perf_counter() - started)
            if not report.green:
                print(report.output_tail, file=sys.stderr)
                return 1
    print(f"python env for {EXAMPLE.name} (median of {args.runs}), council from "
          f"{Path(sys.modules['council'].__file__).parents[1]}")  # fmt: skip
    for label, values in (
        ("cold (empty council cache)", cold),
        ("warm, same worktree", same),
        ("warm, new worktree", fresh),
        ("first test run", tests),
    ):
        print(f"  {label:<28} {statistics.median(values):7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
