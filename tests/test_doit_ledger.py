"""`council doit`'s ledger: the hash-chained audit trail, budget limits and checks, and the
intent checks that ask instead of guessing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from council.cloud.budget import check_budget
from council.cloud.intent import CloudIntent, CloudResource, questions
from council.events import CloudActionDone
from council.store import Store
from council.store.ledger import AuditTrail, BudgetBook
from council.store.store import DB_RELATIVE_PATH

ROOT = Path(__file__).resolve().parents[1]


def council(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _objective(store: Store) -> str:
    return store.create_run(feature="put the reports up", repo="/r", config={}, kind="doit")


def _action(run_id: str, call: str) -> CloudActionDone:
    return CloudActionDone(run_id=run_id, strategy="azure-cli", action="upload", call=call)


def _trail(tmp_path: Path, n: int = 4) -> Path:
    """A trail of `n` command entries, written as doit writes it: by its events."""
    with Store.for_repo(tmp_path) as store:
        run_id = _objective(store)
        for i in range(n):
            store.record_event(_action(run_id, f"az storage step{i}"))
    return tmp_path / DB_RELATIVE_PATH


def _sql(db: Path, statement: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.executescript(statement)
    conn.close()


# -- audit -----------------------------------------------------------------------------------


def test_an_untouched_trail_verifies_and_lists_its_entries(tmp_path: Path) -> None:
    _trail(tmp_path)
    result = council("audit", "--verify", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact: 4 entries" in result.stdout
    listing = council("audit", "--json", cwd=tmp_path)
    entries = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[1]["prev_hash"] == entries[0]["hash"]


def test_one_altered_row_fails_verify(tmp_path: Path) -> None:
    db = _trail(tmp_path)
    _sql(db, """UPDATE audit SET payload = '{"argv": ["az", "nothing"]}' WHERE seq = 2""")
    result = council("audit", "--verify", cwd=tmp_path)
    assert result.returncode == 1
    assert "entry 2 (command) was altered" in result.stdout
    assert "NOT intact" in result.stdout


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("DELETE FROM audit WHERE seq = 2", "entry 3 stands where entry 2 should"),
        ("DELETE FROM audit WHERE seq = 4", "4 entries were written but 3 are there"),
        ("UPDATE audit SET ts = ts + 5 WHERE seq = 1", "entry 1 (command) was altered"),
        # Swap two entries' places: their links no longer match.
        (
            "UPDATE audit SET seq = 99 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3;"
            " UPDATE audit SET seq = 3 WHERE seq = 99;",
            "does not follow the entry before it",
        ),
    ],
)
def test_removed_reordered_or_cut_entries_are_found(
    tmp_path: Path, statement: str, expected: str
) -> None:
    db = _trail(tmp_path)
    _sql(db, statement)
    with Store.for_repo(tmp_path) as store:
        problems = AuditTrail(store).verify()
    assert any(expected in p for p in problems), problems


def test_secrets_are_redacted_before_they_are_chained(tmp_path: Path) -> None:
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    with Store.for_repo(tmp_path) as store:
        trail = AuditTrail(store)
        store.record_event(_action(_objective(store), f"AccountName=dev;AccountKey={key};"))
        (entry,) = trail.entries()
        assert key not in json.dumps(entry.payload)
        assert trail.verify() == []


# -- budget ----------------------------------------------------------------------------------


def test_budget_set_and_show_round_trip_and_bad_input_is_exit_2(tmp_path: Path) -> None:
    done = council("budget", "set", "--monthly", "100", "--rg", "test-rg=20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(council("budget", "show", "--json", cwd=tmp_path).stdout)
    assert shown["limits"] == {"monthly": 100.0, "rg:test-rg": 20.0}
    for bad in (["--monthly", "-5"], ["--rg", "noequals"], ["--clear", "weekly"], []):
        result = council("budget", "set", *bad, cwd=tmp_path)
        assert result.returncode == 2, (bad, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("error: ")
    # Each change of a limit is in the audit trail.
    trail = council("audit", "--json", cwd=tmp_path).stdout.splitlines()
    assert json.loads(trail[0])["payload"] == {"set": {"monthly": 100.0, "rg:test-rg": 20.0}}


def test_budget_thresholds_refuse_confirm_and_allow(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as store:
        book = BudgetBook(store)
        assert check_budget(book, 1000.0).decision == "ok"  # no limits: nothing to exceed
        book.set_limits({"monthly": 100.0})
        book.settle("o-1", 40.0, "earlier objective", resource_group="rg1")
        assert check_budget(book, 5.0).decision == "ok"  # 45%
        notice = check_budget(book, 15.0)  # 55%: allowed, said
        assert notice.decision == "ok" and "55%" in notice.summary
        assert check_budget(book, 45.0).decision == "confirm"  # 85%
        refused = check_budget(book, 61.0)  # 101%
        assert refused.decision == "refuse" and "over the monthly limit" in refused.summary
        book.set_limits({"rg:rg1": 50.0})
        assert check_budget(book, 15.0, resource_group="rg1").decision == "refuse"
        assert check_budget(book, 15.0, resource_group="rg2").decision == "ok"


def test_an_unknown_cost_needs_confirmation_never_a_guess(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as store:
        verdict = check_budget(BudgetBook(store), None)
    assert verdict.decision == "confirm"
    assert "cost unknown" in verdict.summary


# -- intent ----------------------------------------------------------------------------------


def _intent(**changes) -> CloudIntent:
    base = {
        "operation": "create",
        "summary": "storage account with a private container",
        "region": "westeurope",
        "resource_group": "rg1",
        "confidence": 0.9,
        "resources": [
            CloudResource(type="storage_account", name="reportsacct"),
            CloudResource(type="blob_container", name="reports"),
        ],
    }
    return CloudIntent(**{**base, **changes})


def test_a_clear_intent_needs_no_question() -> None:
    assert questions(_intent()) == []


def test_low_confidence_missing_region_and_bad_names_become_questions() -> None:
    assert "confidence 40%" in questions(_intent(confidence=0.4))[0]
    missing = questions(_intent(region=""))
    assert missing == ["which region for the storage account reportsacct?"]
    bad = questions(_intent(resources=[CloudResource(type="storage_account", name="Reports_Acct")]))
    assert "not valid: 3-24 lowercase letters" in bad[0]
    unknown = questions(_intent(resources=[CloudResource(type="virtual_machine", name="vm1")]))
    assert "not a resource type doit handles" in unknown[0]


def test_resume_refuses_options_that_only_a_new_request_takes(tmp_path: Path) -> None:
    for extra in (["--dry-run"], ["--strategy", "sdk"]):
        result = council("doit", "--resume", "r-20261130-abcdef", *extra, cwd=tmp_path)
        assert result.returncode == 2, (extra, result.stdout, result.stderr)
        assert "apply to a new request, not to --resume" in result.stderr
        assert not (tmp_path / ".council").exists()  # refused before anything was written
