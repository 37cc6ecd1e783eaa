"""Reading the canary of pytest_progress.py: were the results rewritten inside pytest?

The plugin runs one check that always fails after the last test (see its comment); here the
run's progress lines are read for its outcome, and a run whose canary did not fail gets an
error case that keeps it from ever being green.
"""

from __future__ import annotations

import json
from pathlib import Path

from council.sandbox import CommandResult
from council.toolchains.report import TestCase

FORGED = (
    "the test results were rewritten inside the test run: council's canary check, which always "
    "fails, came out {outcome!r}. Code under test (or something it loads) patched pytest or "
    "its reports; no result of this run can be trusted. Remove that code"
)


def _canary(progress: Path | None) -> str | None:
    """The canary's outcome from the progress plugin's lines (None when it never wrote one)."""
    if progress is None or not progress.is_file():
        return None
    found = None
    for line in progress.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith('{"canary"'):
            try:
                found = str(json.loads(line)["canary"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return found


def forged_results(result: CommandResult, progress: Path | None) -> TestCase | None:
    """An error case when the canary (pytest_progress.py) says results were rewritten: it did
    not fail, or a run that claims success never got to it (the process left early)."""
    if result.timed_out or progress is None:
        return None
    outcome = _canary(progress)
    # Only a pass is proof: a project's hooks may break on the bare canary item (an error, a
    # skip), and that is no rewrite of results.
    if outcome is not None and outcome != "passed":
        return None
    if outcome is None and result.exit_code != 0:
        return None  # pytest stopped early on its own (usage error, crash): not green anyway
    message = FORGED.format(outcome=outcome or "never ran")
    return TestCase("council-canary", "error", message, "", "")
