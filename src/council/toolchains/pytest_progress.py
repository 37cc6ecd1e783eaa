"""A pytest plugin council loads into every test run (`-p council_progress`, stdlib only).

pytest writes its JUnit XML only when the session ends, so a run killed at its time limit
leaves none. This plugin appends one JSON line per test start and per phase result to the file
named by COUNCIL_PROGRESS_FILE, flushed at once: a killed run still says which tests finished,
how, and which were running when the limit hit.
"""

import json
import os

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
