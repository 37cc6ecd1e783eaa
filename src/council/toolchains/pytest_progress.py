"""A pytest plugin council loads into every test run (`-p council_progress`, stdlib and pytest).

pytest writes its JUnit XML only when the session ends, so a run killed at its time limit
leaves none. This plugin appends one JSON line per test start and per phase result to the file
named by COUNCIL_PROGRESS_FILE, flushed at once: a killed run still says which tests finished,
how, and which were running when the limit hit.
"""

import json
import os

import pytest  # loaded by pytest itself: always there

_PATH = os.environ.get("COUNCIL_PROGRESS_FILE", "")
_OUT = open(_PATH, "a", buffering=1, encoding="utf-8") if _PATH else None  # noqa: SIM115


def _write(record):
    if _OUT is not None:
        _OUT.write(json.dumps(record) + "\n")
        _OUT.flush()


def pytest_runtest_logstart(nodeid, location):
    _write({"start": nodeid})


def pytest_runtest_logreport(report):
    text = "" if report.passed else str(getattr(report, "longreprtext", ""))[-3000:]
    _write({"id": report.nodeid, "when": report.when, "outcome": report.outcome, "text": text})


def pytest_collectreport(report):
    if report.failed:
        text = str(getattr(report, "longreprtext", ""))[-3000:]
        _write({"id": report.nodeid, "when": "collect", "outcome": "failed", "text": text})


# The canary: once every test has run, one more check that always fails goes through pytest's
# own protocol (setup, call, teardown; each report made by the makereport hooks), unlogged, so
# it changes neither the results nor the exit code. Its call report must come out "failed".
# Code under test that rewrites results from inside the process (a patched TestReport, a
# makereport hook registered at import, a sitecustomize) turns it "passed" too, and council then
# fails the run. It stops the generic rewrite, not code written against this very check.
def _canary_outcome(session):
    import _pytest.runner  # looked up at call time: a patched protocol is the one that runs

    class CouncilCanary(pytest.Item):
        def runtest(self):
            raise AssertionError("council canary: this check always fails")

        def reportinfo(self):
            return self.path, None, "council canary"

    item = CouncilCanary.from_parent(session, name="council-canary")  # pytest >= 5.4
    reports = _pytest.runner.runtestprotocol(item, log=False, nextitem=None)
    # A project's setup hook that cannot handle a bare item fails or skips it: no pass either.
    if any(r.failed for r in reports):
        return "failed"
    return next((r.outcome for r in reports if r.when == "call"), "no call")


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of the last test
def pytest_sessionfinish(session, exitstatus):
    try:
        outcome = _canary_outcome(session)
    except Exception as exc:  # an old pytest, a hook that breaks on a bare item: no verdict
        outcome = f"error: {type(exc).__name__}: {exc}"[:300]
    _write({"canary": outcome})
