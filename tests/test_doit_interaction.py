"""A doit objective that talks with its user (in-process, the user's side scripted): a missing
region is asked and the intent read again with the answer; a budget confirmation is asked and
the answer recorded; both are in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from council.config import parse_config
from council.events import CloudBudgetChecked, Emitter
from council.pipelines.flows import start_flow
from council.store import Store
from council.store.ledger import AuditTrail, BudgetBook
from tests.fakes.prices_server import PricesServer
from tests.test_doit_flow import intent_reply


class User:
    """The person at the terminal: answers and confirmations given in order, questions kept."""

    def __init__(self, answers: list[str], confirms: list[bool]) -> None:
        self.answers, self.confirms, self.asked = answers, confirms, []

    def answer(self, question: str) -> str | None:
        self.asked.append(question)
        return self.answers.pop(0) if self.answers else None

    def confirm(self, text: str) -> bool:
        self.asked.append(text)
        return self.confirms.pop(0)

    def confirm_destructive(self, text: str, name: str) -> bool:
        raise AssertionError("nothing destructive was asked for")


def _config(model_server):
    return parse_config(
        json.dumps(
            {
                "models": [
                    {
                        "model_name": "devops",
                        "litellm_params": {
                            "model": "openai/devops",
                            "api_base": model_server.base_url,
                            "api_key": "test-key-not-secret",
                        },
                    }
                ],
                "router_settings": {"num_retries": 0, "timeout": 30},
                "cache": {"enabled": False},
            }
        )
    )


def test_a_missing_region_is_asked_and_the_budget_confirmed(
    tmp_path: Path, model_server, azurite, monkeypatch
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "q1.csv").write_text("quarter,total\nq1,10\n")
    monkeypatch.setenv("COUNCIL_AZURITE_BLOB_ENDPOINT", azurite.blob_endpoint)
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COUNCIL_LEARN_URL", "http://127.0.0.1:9/api/search")
    monkeypatch.setenv("COUNCIL_AZ", "/nonexistent/az")
    model_server.script(
        "devops",
        intent_reply("reports-ask2", region=""),  # the request names no region
        intent_reply("reports-ask2"),
    )
    config = _config(model_server)
    user = User(answers=["westeurope"], confirms=[True])
    with PricesServer() as prices, Store.for_repo(tmp_path) as store:
        # The estimate (~0.0000119 USD a month) is 88 % of this limit: confirm before running.
        BudgetBook(store).set_limits({"monthly": 0.0000135})
        emit = Emitter()
        seen = []
        emit.subscribe(seen.append)
        flow = start_flow(
            "doit", repo=tmp_path, feature="put out/*.csv in a new private container",
            config=config, store=store, emit=emit, target="local", base=str(tmp_path),
            prices_url=prices.url,
        )  # fmt: skip
        flow.interaction = user
        outcome = flow.execute()
        entries = AuditTrail(store).entries()
    assert outcome.status == "green", outcome.reason
    assert user.asked[0] == "which region for the storage account reportsacct?"
    assert "$1.19e-05 (88%) of the monthly limit $1.35e-05: confirm to go on" in user.asked[1]
    # The second reading of the intent was given the answer.
    second = model_server.requests_for("devops")[1]["messages"][-1]["content"]
    assert "which region for the storage account reportsacct? westeurope" in second
    budget = next(e for e in seen if isinstance(e, CloudBudgetChecked))
    assert budget.decision == "confirm" and budget.approved is True
    approvals = [e.payload for e in entries if e.kind == "approval"]
    assert approvals[0]["subject"] == "question"
    assert approvals[0]["question"] == "which region for the storage account reportsacct?"
    assert approvals[0]["answer"] == "westeurope"
    assert approvals[1]["approved"] is True and approvals[1]["by"] == "the user"
    client = BlobServiceClient.from_connection_string(flow.target.connection_string)
    assert [b.name for b in client.get_container_client("reports-ask2").list_blobs()] == ["q1.csv"]


def test_an_upload_that_matches_no_file_is_a_question(tmp_path: Path, model_server) -> None:
    model_server.script("devops", intent_reply("reports-none", files="out/*.csv"))
    with Store.for_repo(tmp_path) as store:
        flow = start_flow(
            "doit", repo=tmp_path, feature="upload out/*.csv", config=_config(model_server),
            store=store, emit=Emitter(), target="local", base=str(tmp_path),
        )  # fmt: skip
        flow.interaction = User(answers=[], confirms=[])
        outcome = flow.execute()
    assert outcome.status == "stopped"
    assert f"no file matches 'out/*.csv' in {tmp_path}: which files?" in outcome.reason
