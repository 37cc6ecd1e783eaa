"""Fix memory: a fix that turned a signature green is found again, after the store is reopened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from council.recovery.memory import Fix, FixMemory
from council.recovery.signature import ErrorSignature, GateRun, signature
from council.store import Store

DIFF = """\
--- a/app/calc.py
+++ b/app/calc.py
@@ -1,2 +1,2 @@
 def total(items):
-    return sum(items) - 1
+    return sum(items)
"""


def _sig(output: str) -> ErrorSignature:
    return signature(GateRun("test", 1, output))


def test_record_reopen_and_look_up(tmp_path: Path) -> None:
    failure = _sig("E   AssertionError: assert 5 == 6 at 0x7f00aa in /tmp/w1/app/calc.py")
    with Store.for_repo(tmp_path) as store:
        FixMemory(store).record(failure, Fix.patch(DIFF, files=["app/calc.py"]))

    # The same failure seen in a later run, elsewhere: other temp dir, address and numbers.
    again = _sig("E   AssertionError: assert 7 == 8 at 0x55aa01 in /tmp/w9/app/calc.py")
    assert again.hash == failure.hash
    with Store.for_repo(tmp_path) as store:
        memory = FixMemory(store)
        hit = memory.lookup(again)
        assert hit is not None
        assert hit.kind == "patch"
        assert hit.payload == {"diff": DIFF, "files": ["app/calc.py"]}
        assert hit.success_count == 1
        assert (hit.tool, hit.error_type) == ("test", "AssertionError")
        assert memory.lookup(_sig("E   KeyError: 'total'")) is None  # another signature misses


def test_the_rows_are_really_on_disk(tmp_path: Path) -> None:
    sig = _sig("ModuleNotFoundError: No module named 'yaml'")
    with Store.for_repo(tmp_path) as store:
        FixMemory(store).record(
            sig, Fix.action("add_python_dependency", distribution="PyYAML", file="pyproject.toml")
        )
    db = sqlite3.connect(tmp_path / ".council" / "council.db")
    rows = db.execute("SELECT signature, kind, success_count FROM fixes").fetchall()
    db.close()
    assert rows == [(sig.hash, "add_python_dependency", 1)]


def test_successes_count_and_the_best_fix_comes_first(tmp_path: Path) -> None:
    sig = _sig("E   AssertionError: assert 1 == 2")
    with Store.for_repo(tmp_path) as store:
        memory = FixMemory(store)
        first = memory.record(sig, Fix.patch(DIFF))
        other = memory.record(sig, Fix.patch(DIFF.replace("sum(items)\n", "sum(items) + 0\n")))
        again = memory.record(sig, Fix.patch(DIFF))
        assert again.payload_hash == first.payload_hash and again.success_count == 2
        assert other.success_count == 1
        assert [f.success_count for f in memory.candidates(sig)] == [2, 1]
        assert memory.lookup(sig).payload_hash == first.payload_hash  # type: ignore[union-attr]

        # The favourite stops working: after failing as often as it worked it is not offered.
        memory.failed(sig, first)
        memory.failed(sig, first)
        best = memory.lookup(sig)
        assert best is not None and best.payload_hash == other.payload_hash


def test_secrets_in_a_payload_are_redacted(tmp_path: Path) -> None:
    sig = _sig("fatal: Authentication failed")
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"
    with Store.for_repo(tmp_path) as store:
        FixMemory(store).record(sig, Fix.patch(f"+TOKEN = '{token}'\n"))
        hit = FixMemory(store).lookup(sig)
    assert hit is not None and token not in hit.payload["diff"]


def test_lookup_by_hash_string(tmp_path: Path) -> None:
    sig = _sig("E   AssertionError: assert 1 == 2")
    with Store.for_repo(tmp_path) as store:
        FixMemory(store).record(sig, Fix.action("rerun"))
        assert FixMemory(store).lookup(sig.hash) is not None
        assert FixMemory(store).lookup("0" * 16) is None
