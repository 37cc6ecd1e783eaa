"""Attacks on `council audit --verify`: a tampered trail is reported as altered (exit 1), never
a traceback, however the tampering broke the row (text where JSON or a number was)."""

from __future__ import annotations

import pytest

from tests.test_doit_ledger import _sql, _trail, council


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE audit SET payload = 'rm -rf (not JSON)' WHERE seq = 2", "entry 2 (command)"),
        ("UPDATE audit SET ts = 'yesterday' WHERE seq = 3", "entry 3 (command)"),
        ("UPDATE audit SET payload = X'00ff' WHERE seq = 1", "entry 1 (command)"),  # a blob
    ],
)
def test_a_row_broken_by_tampering_is_reported_not_a_traceback(tmp_path, statement, expected):
    _sql(_trail(tmp_path), statement)
    verify = council("audit", "--verify", cwd=tmp_path)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert f"ALTERED: {expected} was altered" in verify.stdout
    assert "Traceback" not in verify.stderr
    listing = council("audit", cwd=tmp_path)  # the listing still shows what is there
    assert "Traceback" not in listing.stderr, listing.stderr
    assert listing.returncode == 0 and "step3" in listing.stdout
    as_json = council("audit", "--json", cwd=tmp_path)
    assert as_json.returncode == 0 and len(as_json.stdout.splitlines()) == 4, as_json.stderr
