"""The run lifecycle's registry: which stored runs resume, and how a refusal reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from council.config import CouncilConfig
from council.errors import UsageError
from council.events import Emitter
from council.pipelines.flows import FLOWS, flow_class, resumable, resume_run
from council.pipelines.lifecycle import Outcome, params_of
from council.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.for_repo(tmp_path) as s:
        yield s


def _resume(store: Store, run_id: str):
    return resume_run(run_id, config=CouncilConfig(), store=store, emit=Emitter())


def test_every_registered_kind_imports_a_resumable_flow() -> None:
    for kind in FLOWS:
        cls = flow_class(kind)
        assert callable(cls.resume)
        assert getattr(cls, "kind", kind) == kind  # a Flow says its kind


def test_an_unknown_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown run kind 'nope'"):
        flow_class("nope")


def test_resume_refuses_a_missing_run_a_green_run_and_an_unknown_kind(store: Store) -> None:
    with pytest.raises(UsageError, match="no run 'r-none'"):
        _resume(store, "r-none")
    green = store.create_run(feature="f", repo="/r", config={})
    store.update_run(green, status="green")
    with pytest.raises(UsageError, match="already finished green"):
        _resume(store, green)
    heal = store.create_run(feature="heal: lint", repo="/r", config={}, kind="heal")
    store.update_run(heal, status="failed")
    assert resumable(store.get_run(heal)).kind == "heal"
    odd = replace(store.get_run(heal), kind="deploy-v0")
    with pytest.raises(UsageError, match="is a deploy-v0, which `council resume` cannot"):
        resumable(odd)


def test_params_come_from_their_own_key_and_from_rows_written_before_it(store: Store) -> None:
    new = store.create_run(
        feature="f", repo="/r", config={"limits": {}, "params": {"open_pr": True}}
    )
    old = store.create_run(
        feature="f", repo="/r", config={"limits": {}, "open_pr": True, "given_tests": ["t.py"]}
    )
    assert params_of(store.get_run(new)) == {"open_pr": True}
    assert params_of(store.get_run(old)) == {"open_pr": True, "given_tests": ["t.py"]}


def test_the_outcome_prints_its_flow_details_beside_the_common_fields() -> None:
    outcome = Outcome(run_id="r-1", kind="run", status="failed", details={"pr_url": "u"})
    assert outcome.exit_code == 1
    assert outcome.as_dict()["pr_url"] == "u" and "details" not in outcome.as_dict()
    assert Outcome(run_id="r-1", kind="run", status="green").exit_code == 0
