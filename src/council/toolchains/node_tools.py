"""Council's own Node test helpers: a cached jest-junit, and a JUnit reporter for `node --test`.

jest-junit is installed once per cache (npm, outside the sandbox) for projects that do not
depend on it. Node's built-in `--test-reporter=junit` leaves out which file a test is in and what
a file that failed to load printed, so council passes its own reporter, written from the source
below: the same JUnit XML, with `file` attributes, `describe > test` names and load failures as
jest-junit's "Test suite failed to run" cases, so one parser reads every runner.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from council.events import EventSink, Notice, null_sink
from council.toolchains.node_env import run_npm

JEST_JUNIT = ("jest-junit", "16.0.0")
SUITE_FAILED = "Test suite failed to run"  # jest-junit's classname for a file that did not run


def ensure_npm_tool(
    tools_dir: Path,
    npm: str,
    name: str,
    version: str,
    *,
    timeout_s: float = 300,
    emit: EventSink = null_sink,
) -> Path:
    """The package folder of council's copy of `name@version`, installed on first use."""
    final = tools_dir / f"{name.replace('/', '+')}@{version}"
    package = final / "node_modules" / name
    if (package / "package.json").is_file():
        return package
    tools_dir.mkdir(parents=True, exist_ok=True)
    emit(Notice(message=f"node: installing council's {name}@{version} into {tools_dir}"))
    build = Path(tempfile.mkdtemp(prefix=f".build-{name.replace('/', '+')}-", dir=tools_dir))
    try:
        (build / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        argv = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts"]
        argv += ["--no-package-lock", "--loglevel=warn", f"{name}@{version}"]
        run_npm(argv, cwd=build, timeout_s=timeout_s, emit=emit, what=f"installing {name}")
        try:
            os.rename(build, final)
        except OSError:
            if not (package / "package.json").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return package


def node_test_reporter(tools_dir: Path) -> Path:
    """Council's JUnit reporter for `node --test`, written once per version of its source."""
    digest = hashlib.sha256(NODE_TEST_REPORTER.encode()).hexdigest()[:12]
    path = tools_dir / f"council-node-test-junit-{digest}.mjs"
    if not path.is_file():
        tools_dir.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(NODE_TEST_REPORTER, encoding="utf-8")
        os.replace(temp, path)
    return path


# Events (Node 18.17+/20): test:start / test:pass / test:fail carry name, nesting, file; a file
# that failed to load is reported as a top-level test named by its path, and its stderr arrives
# as test:stderr events for that file.
NODE_TEST_REPORTER = r"""
const SUITE_FAILED = __SUITE_FAILED__;
const esc = (s) => String(s ?? '')
  .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
  .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const rel = (f) => {
  const cwd = process.cwd() + '/';
  return f && f.startsWith(cwd) ? f.slice(cwd.length) : (f || '');
};
const errorText = (error) => {
  if (!error) return '';
  const cause = error.cause ?? error;
  if (cause && typeof cause === 'object' && cause.stack) return String(cause.stack);
  return String(cause && cause.message ? cause.message : cause);
};
const errorMessage = (error) => {
  if (!error) return '';
  const cause = error.cause ?? error;
  const msg = cause && typeof cause === 'object' ? (cause.message ?? String(cause)) : cause;
  return String(msg).split('\n').filter((l) => l.trim())[0] || '';
};

export default async function* junit(source) {
  const stacks = new Map();   // file -> names of the open suites/tests by nesting level
  const counted = new Map();  // file -> number of tests reported for it
  const stderr = new Map();   // file -> text it printed on stderr
  const cases = [];
  for await (const event of source) {
    const data = event.data || {};
    const file = data.file || '';
    if (event.type === 'test:stderr' || event.type === 'test:stdout') {
      if (event.type === 'test:stderr') stderr.set(file, (stderr.get(file) || '') + data.message);
      continue;
    }
    if (event.type === 'test:start') {
      const stack = stacks.get(file) || [];
      stack.length = data.nesting;
      stack.push(data.name);
      stacks.set(file, stack);
      continue;
    }
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const details = data.details || {};
    const isFileLevel = data.nesting === 0 && file
      && (data.name === file || file.endsWith('/' + data.name));
    if (isFileLevel) {
      if (event.type === 'test:fail' && !counted.get(file)) {
        cases.push({ file, suiteError: true, error: details.error, time: details.duration_ms });
      }
      continue;
    }
    if (details.type === 'suite') {
      const message = errorMessage(details.error);
      // A suite fails when a test in it fails: that test is reported already.
      if (event.type === 'test:pass' || /subtests? failed/.test(message)) continue;
    }
    const stack = (stacks.get(file) || []).slice(0, data.nesting);
    counted.set(file, (counted.get(file) || 0) + 1);
    cases.push({
      file, name: [...stack, data.name].join(' > '), time: details.duration_ms,
      skipped: Boolean(data.skip || data.todo), failed: event.type === 'test:fail',
      error: details.error,
    });
  }
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites name="node --test">'];
  for (const c of cases) {
    const file = rel(c.file);
    const time = ((c.time || 0) / 1000).toFixed(3);
    if (c.suiteError) {
      const text = stderr.get(c.file) || errorText(c.error);
      const error = `<error message="${esc(errorMessage({ message: text }))}">${esc(text)}</error>`;
      out.push(`<testcase classname="${esc(SUITE_FAILED)}" name="${esc(file)}"`
        + ` file="${esc(file)}" time="${time}">${error}</testcase>`);
      continue;
    }
    let body = '';
    if (c.skipped) body = '<skipped/>';
    else if (c.failed) {
      const message = esc(errorMessage(c.error));
      body = `<failure message="${message}">${esc(errorText(c.error))}</failure>`;
    }
    out.push(`<testcase classname="${esc(file)}" name="${esc(c.name)}" file="${esc(file)}"`
      + ` time="${time}">${body}</testcase>`);
  }
  out.push('</testsuites>', '');
  yield out.join('\n');
}
""".replace("__SUITE_FAILED__", json.dumps(SUITE_FAILED))
