"""NodeToolchain against real projects: npm installs cached per session, Jest (React + Testing
Library + jsdom, ts-jest), Vitest and `node --test` in the sandbox, tsc, ESLint and Prettier."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from council.errors import ToolchainError
from council.events import CommandRun
from council.toolchains import NodeEnv, NodeToolchain, TestReport, detect_toolchains
from council.toolchains.node import detect_runner
from council.toolchains.node_env import NODE_MISSING
from council.toolchains.node_errors import classify_collection_error, is_test_path

# One dependency set for every Jest project here (React, TypeScript and the gates included), so
# the whole module pays for one install; the cache key ignores scripts and jest config.
JEST_DEPS = {
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
    "typescript": "5.7.2",
    "ts-jest": "29.2.5",
    "@types/jest": "29.5.14",
    "eslint": "9.17.0",
    "prettier": "3.4.2",
}
VITEST_DEPS = {"vitest": "3.2.4"}


def package_json(deps: dict[str, str], test: str, **extra: object) -> str:
    data = {"name": "proj", "version": "1.0.0", "private": True, "scripts": {"test": test}}
    return json.dumps({**data, "devDependencies": deps, **extra}, indent=2)


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return root


def jest_project(root: Path, files: dict[str, str], **extra: object) -> Path:
    return make_project(root, {"package.json": package_json(JEST_DEPS, "jest", **extra), **files})


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("council-node-cache")


@pytest.fixture(scope="module")
def toolchain() -> NodeToolchain:
    return NodeToolchain()


@pytest.fixture(scope="module")
def jest_seed(toolchain, cache_dir, tmp_path_factory) -> NodeEnv:
    """The one real npm install of the Jest dependency set (later prepares reuse it)."""
    root = jest_project(tmp_path_factory.mktemp("seed"), {})
    return toolchain.prepare(root, cache_dir=cache_dir)


def git_status(root: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def prepared(toolchain: NodeToolchain, cache_dir: Path, root: Path) -> NodeEnv:
    return toolchain.prepare(root, cache_dir=cache_dir)


def by_id(report: TestReport) -> dict[str, str]:
    return {case.id: case.outcome for case in report.cases}


MATH = {"src/math.js": "exports.add = (a, b) => a + b;\n"}


# --- Jest -------------------------------------------------------------------------------------


def test_jest_passing_failing_and_erroring_tests(toolchain, cache_dir, jest_seed, tmp_path):
    root = jest_project(
        tmp_path / "p",
        {
            **MATH,
            "__tests__/math.test.js": """
                const { add } = require('../src/math');
                describe('add', () => {
                  test('adds', () => { expect(add(2, 3)).toBe(5); });
                  test('wrong', () => { expect(add(2, 2)).toBe(5); });
                });
                test('throws', () => { throw new TypeError('no database'); });
                test.skip('later', () => {});
            """,
        },
    )
    env = prepared(toolchain, cache_dir, root)
    assert env.reused and env.key == jest_seed.key
    report = toolchain.run_tests(root, env, timeout_s=120)

    assert by_id(report) == {
        "__tests__/math.test.js::add > adds": "passed",
        "__tests__/math.test.js::add > wrong": "failed",
        "__tests__/math.test.js::throws": "failed",
        "__tests__/math.test.js::later": "skipped",
    }
    assert report.language == "javascript"
    assert report.exit_code == 1 and not report.green and not report.timed_out
    wrong = next(c for c in report.cases if c.id.endswith("wrong"))
    assert "toBe" in wrong.message
    # The project's own frame survives; jest-circus internals and absolute paths do not.
    assert "__tests__/math.test.js:4" in wrong.traceback
    assert "node_modules" not in wrong.traceback and str(root) not in wrong.traceback
    throws = next(c for c in report.cases if c.id.endswith("throws"))
    assert "TypeError: no database" in throws.message
    assert "FAILED __tests__/math.test.js::add > wrong" in report.failure_summary()

    (root / "__tests__/math.test.js").write_text(
        "const { add } = require('../src/math');\ntest('adds', () => expect(add(1, 1)).toBe(2));\n"
    )
    green = toolchain.run_tests(root, env, timeout_s=120)
    assert green.green and green.passed == 1 and green.exit_code == 0


def test_jest_missing_module_is_missing_code_and_syntax_error_is_broken_test(
    toolchain, cache_dir, jest_seed, tmp_path
):
    root = jest_project(
        tmp_path / "p",
        {
            **MATH,
            "__tests__/profile.test.js": """
                const { profile } = require('../src/profile');
                test('profile', () => { expect(profile().name).toBe('ada'); });
            """,
            "__tests__/broken.test.js": "test('x', () => { expect(1).toBe(1)\n",
            "__tests__/ok.test.js": "test('ok', () => expect(1).toBe(1));\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)
    report = toolchain.run_tests(root, env, timeout_s=120)

    errors = {case.id: case for case in report.collection_errors}
    assert set(errors) == {"__tests__/profile.test.js", "__tests__/broken.test.js"}
    missing, broken = errors["__tests__/profile.test.js"], errors["__tests__/broken.test.js"]
    assert "Cannot find module '../src/profile'" in missing.message
    assert classify_collection_error(missing) == "missing_code"
    assert "SyntaxError" in broken.message
    assert classify_collection_error(broken) == "broken_test"
    assert toolchain.classify_collection_error(broken) == "broken_test"
    assert by_id(report) == {"__tests__/ok.test.js::ok": "passed"}
    assert not report.green

    # Only the given files run.
    only = toolchain.run_tests(root, env, paths=["__tests__/ok.test.js"], timeout_s=120)
    assert only.green and by_id(only) == {"__tests__/ok.test.js::ok": "passed"}


def test_react_component_with_testing_library_and_jsdom(toolchain, cache_dir, jest_seed, tmp_path):
    root = jest_project(
        tmp_path / "p",
        {
            "babel.config.js": """
                module.exports = {
                  presets: [
                    ['@babel/preset-env', { targets: { node: 'current' } }],
                    ['@babel/preset-react', { runtime: 'automatic' }],
                  ],
                };
            """,
            "src/Profile.jsx": """
                import { useState } from 'react';
                export function Profile({ user }) {
                  const [open, setOpen] = useState(false);
                  return (
                    <section>
                      <h1>{user.full_name}</h1>
                      <button onClick={() => setOpen(true)}>details</button>
                      {open && <p>{user.email}</p>}
                    </section>
                  );
                }
            """,
            "src/__tests__/Profile.test.jsx": """
                import { render, screen, fireEvent } from '@testing-library/react';
                import { Profile } from '../Profile';

                const user = { full_name: 'Ada Lovelace', email: 'ada@example.com' };

                test('shows the name', () => {
                  render(<Profile user={user} />);
                  expect(screen.getByRole('heading').textContent).toBe('Ada Lovelace');
                });

                test('shows the email after a click', () => {
                  render(<Profile user={user} />);
                  expect(screen.queryByText('ada@example.com')).toBeNull();
                  fireEvent.click(screen.getByText('details'));
                  expect(screen.getByText('ada@example.com')).toBeTruthy();
                });
            """,
        },
        jest={"testEnvironment": "jsdom"},
    )
    env = prepared(toolchain, cache_dir, root)
    assert (root / "node_modules").is_symlink()
    report = toolchain.run_tests(root, env, timeout_s=120)
    # Hooks work: one React instance, although every module resolves through the link.
    assert report.green, report.failure_summary()
    assert by_id(report) == {
        "src/__tests__/Profile.test.jsx::shows the name": "passed",
        "src/__tests__/Profile.test.jsx::shows the email after a click": "passed",
    }


def test_typescript_with_ts_jest_and_the_typecheck_gate(toolchain, cache_dir, jest_seed, tmp_path):
    root = jest_project(
        tmp_path / "p",
        {
            "tsconfig.json": json.dumps(
                {
                    "compilerOptions": {
                        "strict": True,
                        "target": "ES2020",
                        "module": "commonjs",
                        "esModuleInterop": True,
                        "types": ["jest"],
                    },
                    "include": ["src", "test"],
                }
            ),
            "src/sum.ts": "export const sum = (a: number, b: number): number => a + b;\n",
            "test/sum.test.ts": """
                import { sum } from '../src/sum';
                test('sums', () => { expect(sum(1, 2)).toBe(3); });
            """,
        },
        jest={"preset": "ts-jest", "testEnvironment": "node"},
    )
    env = prepared(toolchain, cache_dir, root)
    report = toolchain.run_tests(root, env, timeout_s=180)
    assert report.green and by_id(report) == {"test/sum.test.ts::sums": "passed"}
    # ts-jest's compiled output is kept for the next iteration on this work tree (the sandbox's
    # own /tmp is thrown away after every run).
    jest_cache = env.run_cache(root, "jest")
    assert jest_cache is not None and any(p.is_file() for p in jest_cache.rglob("*"))
    clean = toolchain.typecheck(root, env)
    assert clean.name == "typecheck" and clean.passed, clean.summary()

    (root / "src/total.ts").write_text(
        "import { sum } from './sum';\n\nexport const total: string = sum(1, 2);\n"
    )
    gate = toolchain.typecheck(root, env, paths=["src/total.ts"])
    assert not gate.passed
    assert [(f.file, f.line, f.code) for f in gate.findings] == [("src/total.ts", 3, "TS2322")]
    assert "not assignable to type 'string'" in gate.findings[0].message
    # A change that touches no TypeScript does not run tsc.
    assert toolchain.typecheck(root, env, paths=["README.md"]).passed

    # ts-jest reports an import of code not written yet as a TypeScript diagnostic.
    (root / "test/profile.test.ts").write_text(
        "import { profile } from '../src/profile';\ntest('p', () => expect(profile()).toBe(1));\n"
    )
    red = toolchain.run_tests(root, env, timeout_s=180)
    [error] = red.collection_errors
    assert error.id == "test/profile.test.ts" and "TS2307" in error.message + error.traceback
    assert classify_collection_error(error) == "missing_code"


def test_a_hanging_test_is_killed_at_the_time_limit(toolchain, cache_dir, jest_seed, tmp_path):
    root = jest_project(
        tmp_path / "hang-project",
        {"__tests__/hang.test.js": "test('spins', () => { while (true) {} });\n"},
    )
    env = prepared(toolchain, cache_dir, root)
    report = toolchain.run_tests(root, env, timeout_s=6)
    assert report.timed_out and not report.green and report.exit_code is None
    assert report.duration_s < 30
    assert "timed out" in report.counts_line()
    assert _processes_mentioning(str(root)) == []


def test_lint_and_format_gates_use_the_projects_eslint_and_prettier(
    toolchain, cache_dir, jest_seed, tmp_path
):
    root = jest_project(
        tmp_path / "p",
        {
            "eslint.config.js": """
                module.exports = [
                  { files: ['**/*.js'], rules: { 'no-unused-vars': 'error', 'no-var': 'warn' } },
                ];
            """,
            ".prettierrc.json": '{"singleQuote": true}\n',
            "src/clean.js": "const a = { b: 1 };\nmodule.exports = a;\n",
            "src/messy.js": "var unused = 1;\nconst c = {d:2}\nmodule.exports = c;\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)

    lint = toolchain.lint(root, env, paths=["src/messy.js", "src/clean.js"])
    assert not lint.passed
    found = {(f.file, f.line, f.code, f.severity) for f in lint.findings}
    assert found == {
        ("src/messy.js", 1, "no-unused-vars", "error"),
        ("src/messy.js", 1, "no-var", "warning"),
    }
    assert toolchain.lint(root, env, paths=["src/clean.js"]).passed
    assert toolchain.lint(root, env, paths=["README.md"]).passed

    fmt = toolchain.format_check(root, env, paths=["src/messy.js", "src/clean.js"])
    assert not fmt.passed
    # The block prettier rewrites, with its lines: `const c = {d:2}` only.
    assert [(f.file, f.line, f.end_line, f.code) for f in fmt.findings] == [
        ("src/messy.js", 2, 2, "format")
    ]
    assert toolchain.format_check(root, env, paths=["src/clean.js"]).passed

    sast = toolchain.sast(root, env)
    assert sast.passed and "not scanned" in sast.output_tail


def test_gates_pass_with_a_note_when_the_project_has_no_such_tool(toolchain, cache_dir, tmp_path):
    root = make_project(
        tmp_path / "p",
        {
            "package.json": package_json({}, "node --test"),
            "src/a.js": "var   x=1\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)
    lint = toolchain.lint(root, env)
    assert lint.passed and lint.output_tail == "no eslint in this project"
    fmt = toolchain.format_check(root, env)
    assert fmt.passed and fmt.output_tail == "no prettier in this project"
    tsc = toolchain.typecheck(root, env)
    assert tsc.passed and tsc.output_tail == "no tsconfig.json in this project"


# --- Vitest and node --test -------------------------------------------------------------------


def test_vitest_project(toolchain, cache_dir, tmp_path):
    root = make_project(
        tmp_path / "p",
        {
            "package.json": package_json(VITEST_DEPS, "vitest run", type="module"),
            "src/math.js": "export const add = (a, b) => a + b;\n",
            "test/math.test.js": """
                import { describe, test, expect } from 'vitest';
                import { add } from '../src/math.js';
                describe('math', () => {
                  test('adds', () => { expect(add(1, 2)).toBe(3); });
                  test('wrong', () => { expect(add(1, 2)).toBe(4); });
                });
                test('throws', () => { throw new TypeError('boom'); });
            """,
            "test/profile.test.js": """
                import { test, expect } from 'vitest';
                import { profile } from '../src/profile.js';
                test('profile', () => { expect(profile()).toBe(1); });
            """,
            "test/broken.test.js": "import { test } from 'vitest';\ntest('x', () => {\n",
        },
    )
    events: list = []
    env = toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    npm_runs = [e.argv for e in events if isinstance(e, CommandRun)]
    assert len(npm_runs) == 1 and npm_runs[0][1] == "install" and "--ignore-scripts" in npm_runs[0]
    assert not (root / "package-lock.json").exists()  # the work tree is not changed by npm

    report = toolchain.run_tests(root, env, timeout_s=120)
    assert by_id(report) == {
        "test/math.test.js::math > adds": "passed",
        "test/math.test.js::math > wrong": "failed",
        "test/math.test.js::throws": "failed",
    }
    assert "expected 3 to be 4" in next(c.message for c in report.cases if "wrong" in c.id)
    kinds = {c.id: classify_collection_error(c) for c in report.collection_errors}
    assert kinds == {"test/profile.test.js": "missing_code", "test/broken.test.js": "broken_test"}
    assert report.exit_code == 1 and not report.green


def test_a_lockfile_installs_with_npm_ci(toolchain, cache_dir, tmp_path):
    files = {
        "package.json": json.dumps(
            {"name": "p", "scripts": {"test": "node --test"}, "dependencies": {"left-pad": "1.3.0"}}
        ),
        "test/pad.test.js": """
            const test = require('node:test');
            const assert = require('node:assert');
            test('pads', () => assert.strictEqual(require('left-pad')('7', 3, '0'), '007'));
        """,
    }
    root = make_project(tmp_path / "p", files)
    # A real lockfile, resolved by npm itself without installing.
    subprocess.run(
        ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=root,
        check=True,
        capture_output=True,
    )
    events: list = []
    env = toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    npm_runs = [e.argv for e in events if isinstance(e, CommandRun)]
    assert len(npm_runs) == 1 and npm_runs[0][1] == "ci"
    report = toolchain.run_tests(root, env, timeout_s=60)
    assert report.green and by_id(report) == {"test/pad.test.js::pads": "passed"}


def test_node_test_runner_project(toolchain, cache_dir, tmp_path):
    root = make_project(
        tmp_path / "p",
        {
            "package.json": package_json({}, "node --test"),
            **MATH,
            "test/math.test.js": """
                const { test, describe } = require('node:test');
                const assert = require('node:assert');
                const { add } = require('../src/math');
                describe('math', () => {
                  test('adds', () => { assert.strictEqual(add(1, 2), 3); });
                  test('wrong', () => { assert.strictEqual(add(1, 2), 4); });
                });
                test('throws', () => { throw new TypeError('boom'); });
                test('later', { skip: true }, () => {});
            """,
            "test/profile.test.js": """
                const { test } = require('node:test');
                const { profile } = require('../src/profile');
                test('profile', () => {});
            """,
            "test/broken.test.js": "const { test } = require('node:test');\ntest('x', () => {\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)
    report = toolchain.run_tests(root, env, timeout_s=60)
    assert by_id(report) == {
        "test/math.test.js::math > adds": "passed",
        "test/math.test.js::math > wrong": "failed",
        "test/math.test.js::throws": "failed",
        "test/math.test.js::later": "skipped",
    }
    wrong = next(c for c in report.cases if c.id.endswith("wrong"))
    assert "strictly equal" in wrong.message and "test/math.test.js:6" in wrong.traceback
    errors = {c.id: c for c in report.collection_errors}
    assert "Cannot find module '../src/profile'" in errors["test/profile.test.js"].message
    kinds = {cid: classify_collection_error(c) for cid, c in errors.items()}
    assert kinds == {"test/profile.test.js": "missing_code", "test/broken.test.js": "broken_test"}

    for name in ("profile", "broken"):
        (root / f"test/{name}.test.js").unlink()
    (root / "test/math.test.js").write_text(
        "const { test } = require('node:test');\nconst assert = require('node:assert');\n"
        "test('ok', () => assert.ok(true));\n"
    )
    green = toolchain.run_tests(root, env, timeout_s=60)
    assert green.green and by_id(green) == {"test/math.test.js::ok": "passed"}


def test_node_test_hang_is_killed(toolchain, cache_dir, tmp_path):
    root = make_project(
        tmp_path / "hang-node",
        {
            "package.json": package_json({}, "node --test"),
            "test/hang.test.js": "require('node:test')('spins', () => { while (true) {} });\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)
    report = toolchain.run_tests(root, env, timeout_s=4)
    assert report.timed_out and not report.green
    assert _processes_mentioning(str(root)) == []


# --- install, cache and missing tools ---------------------------------------------------------


def test_second_prepare_reuses_the_install_without_npm(cache_dir, jest_seed, tmp_path):
    root = jest_project(tmp_path / "p", {**MATH})
    no_npm = NodeToolchain(npm=str(tmp_path / "no-such-dir" / "npm"))
    events: list = []
    env = no_npm.prepare(root, cache_dir=cache_dir, emit=events.append)
    assert env.reused and env.key == jest_seed.key
    assert not [e for e in events if isinstance(e, CommandRun)]
    assert (root / "node_modules").resolve() == jest_seed.node_modules.resolve()

    # A different dependency set would need npm: that npm does not exist, so it is an error.
    other = make_project(
        tmp_path / "q", {"package.json": package_json({"left-pad": "1.3.0"}, "node --test")}
    )
    with pytest.raises(ToolchainError, match="could not run npm"):
        no_npm.prepare(other, cache_dir=cache_dir)


def test_npm_failure_is_a_toolchain_error_with_npms_own_words(toolchain, cache_dir, tmp_path):
    root = make_project(
        tmp_path / "p",
        {"package.json": package_json({"left-pad": "999.999.999"}, "node --test")},
    )
    with pytest.raises(ToolchainError) as info:
        toolchain.prepare(root, cache_dir=cache_dir)
    assert "npm install failed" in info.value.message
    assert "left-pad" in info.value.message and "999.999.999" in info.value.message
    assert not list((cache_dir / "node").glob(".build-*"))  # nothing half-built is left


def test_node_missing_or_too_old_is_a_clear_error(cache_dir, tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", {"package.json": package_json({}, "node --test")})
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolchainError) as info:
        NodeToolchain().prepare(root, cache_dir=cache_dir)
    assert info.value.message == NODE_MISSING == "node 18+ not found (install Node.js 18 or newer)"

    # An old node on PATH is refused the same way (a script standing in for node 16).
    old = tmp_path / "old-bin"
    old.mkdir()
    (old / "node").write_text("#!/bin/sh\necho v16.20.2\n")
    (old / "node").chmod(0o755)
    monkeypatch.setenv("PATH", str(old))
    with pytest.raises(ToolchainError, match=r"node 18\+ not found .* is v16\.20\.2"):
        NodeToolchain().prepare(root, cache_dir=cache_dir)


def test_the_node_modules_link_stays_out_of_git(toolchain, cache_dir, jest_seed, tmp_path):
    root = jest_project(tmp_path / "repo", {**MATH, ".gitignore": "node_modules/\n"})
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    prepared(toolchain, cache_dir, root)
    status = git_status(root)
    assert "node_modules" not in status
    assert ".gitignore" in status  # the user's file is untouched and still shows as new
    assert (root / ".gitignore").read_text() == "node_modules/\n"


def test_a_dependency_inside_the_project_is_installed_in_the_tree(toolchain, cache_dir, tmp_path):
    """`file:` dependencies point into the project: the install happens in the tree (links to
    this tree's folders), so the tests see the package's code as it is in this tree."""
    package = package_json({}, "node --test", dependencies={"mylib": "file:./packages/mylib"})
    root = make_project(
        tmp_path / "repo",
        {
            "package.json": package,
            "packages/mylib/package.json": '{"name": "mylib", "version": "1.0.0"}\n',
            "packages/mylib/index.js": "exports.twice = (x) => 2 * x;\n",
            "test/lib.test.js": """
                const { test } = require('node:test');
                const assert = require('node:assert');
                const { twice } = require('mylib');
                test('twice', () => assert.strictEqual(twice(2), 4));
            """,
        },
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    events: list = []
    env = toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    assert env.path == root and (root / "node_modules").is_dir()
    assert not (root / "node_modules").is_symlink()
    assert any("in the work tree" in getattr(e, "message", "") for e in events)
    assert toolchain.run_tests(root, env, timeout_s=60).green
    (root / "packages/mylib/index.js").write_text("exports.twice = (x) => 3 * x;\n")
    assert not toolchain.run_tests(root, env, timeout_s=60).green  # this tree's code, live
    status = git_status(root)
    assert "node_modules" not in status and "package-lock.json" not in status


# --- detection and naming ---------------------------------------------------------------------


def test_detection_and_runner_choice(tmp_path):
    root = make_project(tmp_path / "p", {"package.json": "{}"})
    assert NodeToolchain.detect(root) and "javascript" in detect_toolchains(root)
    assert not NodeToolchain.detect(tmp_path)
    assert detect_runner(root, {"scripts": {"test": "vitest run"}}) == "vitest"
    assert detect_runner(root, {"scripts": {"test": "jest --coverage"}}) == "jest"
    assert detect_runner(root, {"scripts": {"test": "node --test test/"}}) == "node"
    assert detect_runner(root, {"devDependencies": {"ts-jest": "29"}}) == "jest"
    assert detect_runner(root, {"devDependencies": {"vitest": "3"}}) == "vitest"
    assert detect_runner(root, {}) == "node"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("src/Profile.test.jsx", True),
        ("src/api.spec.ts", True),
        ("src/__tests__/Profile.jsx", True),
        ("test/helpers.js", True),
        ("tests/e2e/login.mjs", True),
        ("src/Profile.jsx", False),
        ("src/testing.js", False),
        ("/home/me/test/proj/src/app.js", False),
    ],
)
def test_is_test_file(path: str, expected: bool) -> None:
    assert NodeToolchain().is_test_file(path) is expected
    assert is_test_path(path) is expected


def _processes_mentioning(root: str) -> list[str]:
    """Command lines of live processes working in `root` or naming it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if root in cmdline or cwd == root or cwd.startswith(root + "/"):
            found.append(cmdline)
    return found


def test_jest_related_mode_runs_the_tests_a_changed_source_reaches(
    toolchain, cache_dir, jest_seed, tmp_path
):
    """The loop's selection for Jest: `--findRelatedTests` with the changed sources, plus the
    given test files (related to themselves)."""
    root = jest_project(
        tmp_path / "p",
        {
            **MATH,
            "src/name.js": "module.exports = { name: () => 'n' };\n",
            "__tests__/math.test.js": "const { add } = require('../src/math');\n"
            "test('adds', () => { expect(add(2, 3)).toBe(5); });\n",
            "__tests__/name.test.js": "const { name } = require('../src/name');\n"
            "test('names', () => { expect(name()).toBe('n'); });\n",
            "__tests__/given.test.js": "test('given', () => { expect(1).toBe(1); });\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)
    assert toolchain.affected_tests(root, ["src/math.js"]) is None  # Jest finds them itself
    report = toolchain.run_tests(
        root, env, paths=["__tests__/given.test.js"], related=["src/math.js"], timeout_s=120
    )
    assert sorted(by_id(report)) == [
        "__tests__/given.test.js::given",
        "__tests__/math.test.js::adds",
    ]


def test_a_jest_run_killed_at_its_limit_returns_what_finished_and_names_what_was_running(
    toolchain, cache_dir, jest_seed, tmp_path
):
    root = jest_project(
        tmp_path / "p",
        {
            **MATH,
            "__tests__/a.test.js": "const { add } = require('../src/math');\n"
            "describe('add', () => {\n"
            "  test('adds', () => { expect(add(2, 3)).toBe(5); });\n"
            "  test('wrong', () => { expect(add(2, 2)).toBe(5); });\n"
            "});\n",
            "__tests__/hang.test.js": "test('spins', () => { while (true) {} });\n",
        },
    )
    env = prepared(toolchain, cache_dir, root)
    paths = ["__tests__/a.test.js", "__tests__/hang.test.js"]
    report = toolchain.run_tests(root, env, paths=paths, timeout_s=20)

    assert report.timed_out and not report.green
    assert by_id(report) == {
        "__tests__/a.test.js::add > adds": "passed",
        "__tests__/a.test.js::add > wrong": "failed",
    }
    assert report.running == ["__tests__/hang.test.js"]
    assert "still running: __tests__/hang.test.js" in report.output_tail
