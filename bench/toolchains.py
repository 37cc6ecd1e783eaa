"""Benchmark: a project's bare test command next to the same run through council's toolchain.

Per language and runner, on a small real project: the median wall time of the test command as a
developer runs it (`node_modules/.bin/jest`, ...) and of `Toolchain.run_tests` (sandbox, JUnit
reporter, report parsing), and their ratio. Target: council within 1.2x of bare. Dependencies
are installed once (council's own cached install, outside the timing); both sides then run warm,
alternating, so caches and the page cache favour neither. It reports; it does not assert.

    python bench/toolchains.py [--runs 5] [--language javascript] [--cache-dir DIR]

Each language adds a `<language>_cases()` function returning `Case`s and an entry in `LANGUAGES`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.2


@dataclass
class Case:
    """One runner on one small project: how to build it and how to run it bare."""

    language: str
    runner: str
    files: dict[str, str]
    bare: list[str]  # argv, run in the project root with the project's node_modules linked
    toolchain: Callable[[], Any]
    bare_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    case: Case
    bare_s: list[float]
    council_s: list[float]
    tests: str

    @property
    def ratio(self) -> float:
        return statistics.median(self.council_s) / statistics.median(self.bare_s)


# --- JavaScript / TypeScript -------------------------------------------------------------------

JEST = {"jest": "29.7.0"}
JEST_REACT = {
    "jest": "29.7.0",
    "jest-environment-jsdom": "29.7.0",
    "babel-jest": "29.7.0",
    "@babel/core": "7.26.0",
    "@babel/preset-env": "7.26.0",
    "@babel/preset-react": "7.26.3",
    "@testing-library/react": "16.1.0",
    "@testing-library/dom": "10.4.0",
    "react": "18.3.1",
    "react-dom": "18.3.1",
}
TS_JEST = {"jest": "29.7.0", "ts-jest": "29.2.5", "typescript": "5.7.2", "@types/jest": "29.5.14"}
VITEST = {"vitest": "3.2.4"}


def _package(deps: dict[str, str], test: str, **extra: object) -> str:
    data = {"name": "bench", "private": True, "scripts": {"test": test}, "devDependencies": deps}
    return json.dumps({**data, **extra}, indent=2)


def _js_tests(count: int, header: str, ext: str = "js") -> dict[str, str]:
    """`count` test files of five small tests each over src/math."""
    body = "\n".join(
        f"test('case {n}', () => {{ expect(add({n}, 1)).toBe({n + 1}); }});" for n in range(5)
    )
    return {f"test/math{i}.test.{ext}": f"{header}\n{body}\n" for i in range(count)}


def javascript_cases() -> list[Case]:
    from council.toolchains import NodeToolchain

    cjs_math = {"src/math.js": "exports.add = (a, b) => a + b;\n"}
    jest_bin = ["node_modules/.bin/jest", "--ci"]
    react = {
        "babel.config.js": (
            "module.exports = { presets: [['@babel/preset-env', { targets: { node: 'current' } }],"
            " ['@babel/preset-react', { runtime: 'automatic' }]] };\n"
        ),
        "src/Hello.jsx": textwrap.dedent(
            """
            import { useState } from 'react';
            export function Hello({ name }) {
              const [n, setN] = useState(0);
              return <button onClick={() => setN(n + 1)}>hello {name} {n}</button>;
            }
            """
        ),
    }
    for i in range(3):
        react[f"src/__tests__/Hello{i}.test.jsx"] = textwrap.dedent(
            """
            import { render, screen, fireEvent } from '@testing-library/react';
            import { Hello } from '../Hello';
            test('greets', () => {
              render(<Hello name="ada" />);
              expect(screen.getByRole('button').textContent).toBe('hello ada 0');
            });
            test('counts', () => {
              render(<Hello name="ada" />);
              fireEvent.click(screen.getByRole('button'));
              expect(screen.getByRole('button').textContent).toBe('hello ada 1');
            });
            """
        )
    node_test = "const test = require('node:test');\nconst assert = require('node:assert');\n"
    node_test += "const { add } = require('../src/math');\n"
    node_files = {
        f"test/math{i}.test.js": node_test
        + "\n".join(
            f"test('case {n}', () => assert.strictEqual(add({n}, 1), {n + 1}));" for n in range(5)
        )
        + "\n"
        for i in range(3)
    }
    return [
        Case(
            "javascript",
            "jest",
            {
                "package.json": _package(JEST, "jest"),
                **cjs_math,
                **_js_tests(3, "const { add } = require('../src/math');"),
            },
            jest_bin,
            NodeToolchain,
        ),
        Case(
            "javascript",
            "jest+react (jsdom, Testing Library)",
            {
                "package.json": _package(JEST_REACT, "jest", jest={"testEnvironment": "jsdom"}),
                **react,
            },
            jest_bin,
            NodeToolchain,
        ),
        Case(
            "javascript",
            "jest+ts-jest (TypeScript)",
            {
                "package.json": _package(TS_JEST, "jest", jest={"preset": "ts-jest"}),
                "tsconfig.json": '{"compilerOptions": {"strict": true, "esModuleInterop": true}}\n',
                "src/math.ts": "export const add = (a: number, b: number): number => a + b;\n",
                **_js_tests(3, "import { add } from '../src/math';", ext="ts"),
            },
            jest_bin,
            NodeToolchain,
        ),
        Case(
            "javascript",
            "vitest",
            {
                "package.json": _package(VITEST, "vitest run", type="module"),
                "src/math.js": "export const add = (a, b) => a + b;\n",
                **_js_tests(
                    3,
                    "import { test, expect } from 'vitest';\nimport { add } from '../src/math.js';",
                ),
            },
            ["node_modules/.bin/vitest", "run"],
            NodeToolchain,
        ),
        Case(
            "javascript",
            "node --test",
            {"package.json": _package({}, "node --test"), **cjs_math, **node_files},
            ["node", "--test"],
            NodeToolchain,
        ),
    ]


def _java_cases() -> list[Case]:
    # Lives beside this file; imported late because it imports this harness.
    from toolchains_java import java_cases

    return java_cases()


LANGUAGES: dict[str, Callable[[], list[Case]]] = {
    "javascript": javascript_cases,
    "java": _java_cases,
}


# --- measuring --------------------------------------------------------------------------------


def measure(case: Case, work: Path, cache_dir: Path, runs: int) -> Result:
    root = work / case.runner.split()[0].replace("+", "-")
    for name, body in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    toolchain = case.toolchain()
    env = toolchain.prepare(root, cache_dir=cache_dir)  # installs once, outside the timing
    bare_env = {**os.environ, "CI": "true", "NO_COLOR": "1", **case.bare_env}
    # One warm-up each: first-run caches (jest's transform cache, V8 code cache) fill up.
    _bare(case, root, bare_env)
    report = toolchain.run_tests(root, env, timeout_s=300)
    bare_s: list[float] = []
    council_s: list[float] = []
    for _ in range(runs):
        bare_s.append(_bare(case, root, bare_env))
        started = time.perf_counter()
        report = toolchain.run_tests(root, env, timeout_s=300)
        council_s.append(time.perf_counter() - started)
    if not report.green:
        raise SystemExit(f"{case.runner}: not green through council:\n{report.failure_summary()}")
    return Result(case, bare_s, council_s, report.counts_line())


def _bare(case: Case, root: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(case.bare, cwd=root, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{case.runner}: bare run failed:\n{done.stdout.decode()}{done.stderr.decode()}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--language", choices=sorted(LANGUAGES), action="append")
    parser.add_argument("--cache-dir", type=Path, help="council cache (default: a temporary one)")
    args = parser.parse_args()
    languages = args.language or sorted(LANGUAGES)
    with tempfile.TemporaryDirectory(prefix="council-bench-") as temp:
        cache_dir = args.cache_dir or Path(temp) / "cache"
        results = [
            measure(case, Path(temp) / language, cache_dir, args.runs)
            for language in languages
            for case in LANGUAGES[language]()
        ]
    print(f"{'language':<11} {'runner':<36} {'bare s':>7} {'council s':>9} {'ratio':>6}  tests")
    worst = 0.0
    for result in results:
        bare = statistics.median(result.bare_s)
        council = statistics.median(result.council_s)
        worst = max(worst, result.ratio)
        flag = "" if result.ratio <= TARGET_RATIO else "  <- over target"
        print(
            f"{result.case.language:<11} {result.case.runner:<36} {bare:>7.2f} {council:>9.2f} "
            f"{result.ratio:>5.2f}x  {result.tests}{flag}"
        )
    print(f"medians of {args.runs} runs each; target: council within {TARGET_RATIO}x of bare")
    print(
        f"worst ratio: {worst:.2f}x ({'meets' if worst <= TARGET_RATIO else 'misses'} the target)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
