"""Resuming a doit objective whose create failed (in-process, Azurite, the SDK strategy): a
create that failed for certain (name taken) runs again as a first try, so the user's
container is never claimed nor removed; a create interrupted mid-way (its outcome unknown) is
taken as the objective's own when it is found there, and not made twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from council.cloud.strategies.sdk import SdkStrategy
from council.events import CloudActionDone, Emitter
from council.pipelines.flows import resume_run, start_flow
from council.store import Store
from council.store.ledger import BudgetBook
from tests.fakes.prices_server import PricesServer
from tests.test_doit_flow import ANALYSIS
from tests.test_doit_interaction import _config


def _reply(*containers: str) -> str:
    doc = {
        "operation": "create",
        "summary": "private containers and the reports",
        "region": "westeurope",
        "resource_group": "rg-reports",
        "confidence": 0.95,
        "resources": [
            {"type": "storage_account", "name": "reportsacct", "parameters": {}},
            *({"type": "blob_container", "name": c, "parameters": {}} for c in containers),
            {
                "type": "blob_upload",
                "name": "",
                "parameters": {"container": containers[0], "files": ["out/*.csv"]},
            },
        ],
        "missing": [],
        "question": "",
    }
    return f"```json\n{json.dumps(doc)}\n```"


@pytest.fixture
def objective(tmp_path: Path, azurite, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "q1.csv").write_text("quarter,total\nq1,10\n")
    monkeypatch.setenv("COUNCIL_AZURITE_BLOB_ENDPOINT", azurite.blob_endpoint)
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COUNCIL_LEARN_URL", "http://127.0.0.1:9/api/search")
    monkeypatch.setenv("COUNCIL_AZ", "/nonexistent/az")
    with PricesServer() as prices, Store.for_repo(tmp_path) as store:

        def start(model_server, *containers: str):
            model_server.script("devops", _reply(*containers))
            return start_flow(
                "doit", repo=tmp_path, feature="put the reports up", config=_config(model_server),
                store=store, emit=Emitter(), target="local", base=str(tmp_path),
                prices_url=prices.url, yes=True,
            )  # fmt: skip

        def resume(model_server, run_id: str):
            return resume_run(run_id, config=_config(model_server), store=store, emit=Emitter())

        yield start, resume, store


def _service(azurite) -> BlobServiceClient:
    from council.cloud.target import CloudTarget

    return BlobServiceClient.from_connection_string(
        CloudTarget("local", azurite.blob_endpoint).connection_string
    )


def _blobs(azurite, container: str) -> list[str] | None:
    client = _service(azurite).get_container_client(container)
    return [b.name for b in client.list_blobs()] if client.exists() else None


def test_a_create_that_failed_for_certain_is_never_claimed_on_resume(
    objective, model_server, azurite, monkeypatch
) -> None:
    """Container theirs-r is the user's: creating it fails (name taken), and the rollback of
    ours-r is interrupted. The resume re-runs that create as a first try: it fails again, the
    rollback finishes, and the user's container and blob stay."""
    start, resume, store = objective
    _service(azurite).create_container("theirs-r").upload_blob("keep.txt", b"the user's")
    real_undo = SdkStrategy.undo

    def undo_interrupted(self, action):
        monkeypatch.setattr(SdkStrategy, "undo", real_undo)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(SdkStrategy, "undo", undo_interrupted)
    flow = start(model_server, "ours-r", "theirs-r")
    with pytest.raises(KeyboardInterrupt):
        flow.execute()
    assert _blobs(azurite, "ours-r") == []  # made, and its rollback was cut short
    model_server.script("devops", ANALYSIS)
    outcome = resume(model_server, flow.run_id).execute()
    assert outcome.status == "failed", outcome.reason
    assert "already exists" in outcome.reason
    assert _blobs(azurite, "ours-r") is None  # the rollback finished
    assert _blobs(azurite, "theirs-r") == ["keep.txt"]  # never taken over, never removed
    claimed = [
        e for e in store.events(flow.run_id, kinds=["cloud_action"])
        if isinstance(e, CloudActionDone) and "theirs-r" in e.action and e.created
    ]  # fmt: skip
    assert claimed == []
    assert BudgetBook(store).spend_records() == []  # the reservation was released


def test_a_create_interrupted_mid_way_is_the_objectives_own_on_resume(
    objective, model_server, azurite, monkeypatch
) -> None:
    """The create reached Azure and the process was interrupted before it heard back: the
    resume finds the container there, takes it as made by this objective (no second create,
    no name-taken failure) and carries on; the reservation is settled once."""
    start, resume, store = objective
    real_run = SdkStrategy.run

    def run_interrupted(self, action, *, resumed=False):
        result = real_run(self, action, resumed=resumed)
        if action.id.startswith("create-container"):
            monkeypatch.setattr(SdkStrategy, "run", real_run)  # once
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(SdkStrategy, "run", run_interrupted)
    flow = start(model_server, "ours-i")
    with pytest.raises(KeyboardInterrupt):
        flow.execute()
    book = BudgetBook(store)
    assert [r.state for r in book.spend_records()] == ["reserved"]  # held for the resume
    outcome = resume(model_server, flow.run_id).execute()
    assert outcome.status == "green", outcome.reason
    assert _blobs(azurite, "ours-i") == ["q1.csv"]
    (create,) = [
        e for e in store.events(flow.run_id, kinds=["cloud_action"])
        if isinstance(e, CloudActionDone) and e.action == "create-container:ours-i"
    ]  # fmt: skip
    assert create.created and create.output["output"] == {"existed_after_restart": True}
    (spend,) = book.spend_records()
    assert spend.state == "settled" and spend.monthly_usd > 0
