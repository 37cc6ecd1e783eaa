"""Budget reservations of `council doit`: the limits are judged and the estimate reserved in one
transaction, so objectives started at once (separate processes, one store) never together pass
a limit; a reservation is settled, released, or lapses when its objective was killed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from council.cloud.budget import check_budget, reserve_budget
from council.store import Store
from council.store.ledger import AuditTrail, BudgetBook

ROOT = Path(__file__).resolve().parents[1]

# One objective in its own process: wait for the starting gun, then reserve $30 a month.
RESERVE = """
import json, os, sys, time
from pathlib import Path
from council.cloud.budget import reserve_budget
from council.store import Store
from council.store.ledger import BudgetBook
repo, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
with Store.for_repo(repo) as store:
    book = BudgetBook(store)
    book.limits()  # connected and migrated before the gun
    while not go.exists():
        time.sleep(0.005)
    verdict = reserve_budget(book, name, 30.0, "thirty a month", None)
print(json.dumps({"objective": name, "decision": verdict.decision}))
"""


def test_objectives_started_at_once_never_reserve_past_the_limit(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as store:
        BudgetBook(store).set_limits({"monthly": 100.0})
    go = tmp_path / "go"
    argv = [sys.executable, "-c", RESERVE, str(tmp_path)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "cwd": ROOT}
    procs = [subprocess.Popen([*argv, f"o-{i}", str(go)], **pipes) for i in range(6)]
    time.sleep(1.0)  # every process is waiting at the gun (they poll every 5 ms)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    taken = [r for r in results if r["decision"] != "refuse"]
    # $30 each against $100: three fit (90 %), the other three are refused, whatever the order.
    assert len(taken) == 3, results
    with Store.for_repo(tmp_path) as store:
        book = BudgetBook(store)
        assert book.spent() == 90.0
        held = {r.objective for r in book.spend_records() if r.state == "reserved"}
        assert held == {r["objective"] for r in taken}
        # The next one is refused: the reservations count as spend until settled or released.
        assert check_budget(book, 30.0).decision == "refuse"


def test_a_reservation_is_settled_released_or_lapses(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as store:
        book = BudgetBook(store)
        book.set_limits({"monthly": 100.0})
        assert reserve_budget(book, "o-1", 60.0, "sixty", None).decision == "ok"
        assert reserve_budget(book, "o-2", 60.0, "sixty more", None).decision == "refuse"
        assert book.spent() == 60.0
        # Done: the reservation becomes the objective's spend, at its cost.
        book.settle("o-1", 55.0, "sixty")
        assert book.spent() == 55.0 and book.spent(reserved=False) == 55.0
        # Failed: released, it counts no more.
        assert reserve_budget(book, "o-3", 40.0, "forty", None).decision == "confirm"  # 95 %
        assert book.release("o-3") and book.spent() == 55.0
        # Killed and never resumed: after its hold it counts no more, and cannot be renewed.
        reserve_budget(book, "o-4", 40.0, "forty", None)
        later = time.time() + 7 * 3600
        assert book.spent(now=later) == 55.0
        assert book.renew("o-4", hold_s=60.0)  # still held now
        assert not book.renew("o-4", hold_s=60.0, now=later)
        # Reserving again replaces an objective's own reservation (it is not against itself).
        assert reserve_budget(book, "o-4", 45.0, "forty-five", None).decision == "confirm"
        assert book.spent() == 100.0
        states = sorted((r.objective, r.state) for r in book.spend_records())
        assert states == [("o-1", "settled"), ("o-4", "reserved")]


def test_an_unknown_cost_reserves_nothing_and_a_limit_change_is_audited(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as store:
        book = BudgetBook(store)
        book.set_limits({"monthly": 10.0, "daily": None})
        verdict = reserve_budget(book, "o-1", None, "no price", None)
        assert verdict.decision == "confirm" and book.spend_records() == []
        (entry,) = AuditTrail(store).entries()
        assert (entry.kind, entry.payload) == ("budget", {"set": {"monthly": 10.0, "daily": None}})
        assert AuditTrail(store).verify() == []


def test_budget_show_keeps_the_digits_of_a_small_spend_and_lists_reservations(
    tmp_path: Path,
) -> None:
    """A blob's month costs a fraction of a cent: `budget show` says $1.19e-05, not $0.00, and
    tells a reservation of an objective under way from spend made."""
    with Store.for_repo(tmp_path) as store:
        book = BudgetBook(store)
        book.set_limits({"monthly": 0.00002})
        book.settle("o-done", 0.0000119, "two reports")
        reserve_budget(book, "o-busy", 0.000005, "one more report", None)
    shown = subprocess.run(
        [sys.executable, "-m", "council.cli", "budget", "show"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "monthly              $2e-05  used $1.69e-05 (84%)" in out, out
    assert "(of which $5e-06 reserved by objectives under way)" in out
    assert "o-done: $1.19e-05/month  two reports" in out
    assert "o-busy: $5e-06/month reserved, 6.0 h left  one more report" in out
