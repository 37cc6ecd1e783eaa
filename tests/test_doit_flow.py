"""`council doit` end to end, run as a user runs it (a subprocess), with the real gateway against
the scripted model server, prices from a local server in the Retail Prices API's format, and the
session's Azurite: dry run, the round trip, budget refusal before any command, a question
instead of a guess, rollback with failure analysis, and resume after kill -9 without a
duplicate create."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from council.cloud.target import CloudTarget
from tests.fakes.model_server import ScriptedModelServer
from tests.fakes.prices_server import PricesServer

ROOT = Path(__file__).resolve().parents[1]


def intent_reply(container: str, *, upload_to: str | None = None, confidence: float = 0.93,
                 files: str = "out/*.csv", region: str = "westeurope") -> str:  # fmt: skip
    """DevOps's answer as a model writes it: prose around a fenced JSON block."""
    doc = {
        "operation": "create",
        "summary": f"storage account with a private container '{container}' and the reports",
        "region": region,
        "resource_group": "rg-reports",
        "confidence": confidence,
        "resources": [
            {"type": "storage_account", "name": "reportsacct", "parameters": {}},
            {"type": "blob_container", "name": container, "parameters": {"public_access": "off"}},
            {
                "type": "blob_upload",
                "name": "",
                "parameters": {"container": upload_to or container, "files": [files]},
            },
        ],
        "missing": [],
        "question": "" if confidence >= 0.7 else "Do you want a new account or an existing one?",
    }
    return f"Here is the intent:\n```json\n{json.dumps(doc, indent=2)}\n```\n"


ANALYSIS = json.dumps(
    {
        "cause": "the upload names container 'archive', which the objective does not create",
        "evidence": "ContainerNotFound",
        "fix": "upload into 'reports-rb' or create 'archive' first",
        "retry_worth_it": False,
        "docs": ["https://example.invalid/made-up"],
    }
)


@pytest.fixture
def prices():
    with PricesServer() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path, model_server: ScriptedModelServer) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "jan.csv").write_text("month,total\njan,10\n")
    (tmp_path / "out" / "feb.csv").write_text("month,total\nfeb,12\n")
    config = {
        "models": [
            {
                "model_name": "devops",
                "litellm_params": {
                    "model": "openai/devops",
                    "api_base": model_server.base_url,
                    "api_key": "test-key-not-secret",
                },
                "model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
            }
        ],
        "router_settings": {"num_retries": 0, "timeout": 30},
        "personas": {"devops": {"model": "devops", "temperature": 0.0, "max_tokens": 2000}},
        "limits": {"budget_usd": 1.0},
        "cache": {"enabled": False},
    }
    (tmp_path / "council.yaml").write_text(json.dumps(config))
    return tmp_path


def _env(workdir: Path, azurite, prices: PricesServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "AZURE_"))}
    env.update(
        COUNCIL_CACHE_DIR=str(workdir / "cache"),
        COUNCIL_AZURITE_BLOB_ENDPOINT=azurite.blob_endpoint,
        COUNCIL_PRICES_URL=prices.url,
        COUNCIL_LEARN_URL="http://127.0.0.1:9/api/search",  # nothing listens: no documents
        COUNCIL_AZ="/nonexistent/az",  # the CLI strategy is unavailable: the SDK carries it out
        PYTHONPATH=str(ROOT),
    )
    return env


def council(workdir: Path, env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=180, check=False,
        stdin=subprocess.DEVNULL, **kw,
    )  # fmt: skip


def _blobs(azurite, container: str) -> dict[str, int] | None:
    service = BlobServiceClient.from_connection_string(
        CloudTarget("local", azurite.blob_endpoint).connection_string
    )
    client = service.get_container_client(container)
    return {b.name: b.size for b in client.list_blobs()} if client.exists() else None


def _audit(workdir: Path, env) -> list[dict]:
    out = council(workdir, env, "audit", "--json", "--limit", "1000").stdout
    return [json.loads(line) for line in out.splitlines()]


REQUEST = "create a storage account in westeurope with a private container and upload ./out/*.csv"


def test_dry_run_shows_everything_and_changes_nothing(workdir, model_server, azurite, prices):
    model_server.script("devops", intent_reply("reports-dry"))
    env = _env(workdir, azurite, prices)
    result = council(workdir, env, "doit", REQUEST, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "strategy: sdk" in out and "(azure-cli: unavailable" in out
    assert "1. get_account_information()" in out
    assert "create_container(container='reports-dry', public_access=None)" in out
    assert "upload_blob(blob='feb.csv'" in out
    assert "Hot LRS Data Stored" in out and "assumes:" in out and "/month" in out
    assert "USD 0.0000/month" not in out and re.search(r"cost: +USD \d\.\d+e-05/month", out)
    assert "(terraform: fallback, )" not in out  # no empty reason after a strategy's status
    assert _blobs(azurite, "reports-dry") is None  # nothing was created
    kinds = [e["kind"] for e in _audit(workdir, env)]
    assert kinds[:5] == ["intent", "strategy", "plan", "cost", "budget"]
    assert "command" not in kinds
    shown = json.loads(council(workdir, env, "budget", "show", "--json").stdout)
    assert shown["spend"] == [] and shown["reserved_usd"] == 0  # a dry run reserves nothing
    runs = council(workdir, env, "runs").stdout
    assert "green" in runs and "doit: create a storage account" in runs


def test_round_trip_creates_uploads_validates_and_audits(workdir, model_server, azurite, prices):
    model_server.script("devops", intent_reply("reports-e2e"))
    env = _env(workdir, azurite, prices)
    result = council(workdir, env, "doit", REQUEST, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _blobs(azurite, "reports-e2e") == {"feb.csv": 19, "jan.csv": 19}
    entries = _audit(workdir, env)
    commands = [e["payload"]["action"] for e in entries if e["kind"] == "command"]
    assert commands == [
        "check-account:reportsacct",
        "create-container:reports-e2e",
        "upload:reports-e2e/feb.csv",
        "upload:reports-e2e/jan.csv",
    ]
    assert entries[-1]["kind"] == "outcome" and entries[-1]["payload"]["status"] == "done"
    shown = json.loads(council(workdir, env, "budget", "show", "--json").stdout)
    assert shown["spend"][0]["monthly_usd"] > 0  # the estimate is recorded as spend
    verify = council(workdir, env, "audit", "--verify")
    assert verify.returncode == 0 and "intact" in verify.stdout
    shown = council(workdir, env, "show", entries[-1]["objective"])
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "strategy: sdk" in shown.stdout and "cost: USD" in shown.stdout
    assert "objective done with sdk" in shown.stdout


def test_the_budget_refuses_before_any_command(workdir, model_server, azurite, prices):
    model_server.script("devops", intent_reply("reports-refused"))
    env = _env(workdir, azurite, prices)
    assert council(workdir, env, "budget", "set", "--monthly", "0.0000001").returncode == 0
    result = council(workdir, env, "doit", REQUEST, "--yes")
    assert result.returncode == 1
    assert "refused by the budget before anything ran" in result.stdout
    assert _blobs(azurite, "reports-refused") is None
    entries = _audit(workdir, env)
    assert "command" not in [e["kind"] for e in entries]
    # Once the limit is raised, the same objective resumes: the budget is checked again (now
    # 80 %+ of the limit: `--yes` on the resume confirms it), and it runs.
    estimate = float(re.search(r"over the monthly limit \S+: \$([\d.e-]+)", result.stdout)[1])
    raised = f"{estimate / 0.9:.3g}"  # the estimate is 90 % of it
    assert council(workdir, env, "budget", "set", "--monthly", raised).returncode == 0
    objective = next(e["objective"] for e in entries if e["objective"])  # not the limit's
    again = council(workdir, env, "doit", "--resume", objective, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _blobs(azurite, "reports-refused") == {"feb.csv": 19, "jan.csv": 19}
    assert model_server.pending("devops") == 0 and len(model_server.requests) == 1


def test_a_doubtful_intent_asks_instead_of_guessing(workdir, model_server, azurite, prices):
    model_server.script("devops", intent_reply("reports-ask", confidence=0.4))
    env = _env(workdir, azurite, prices)
    result = council(workdir, env, "doit", "make me some storage", "--yes")
    assert result.returncode == 1
    assert "a question must be answered first: Do you want a new account" in result.stdout
    assert "answer it at a terminal with `council doit --resume r-" in result.stdout
    assert _blobs(azurite, "reports-ask") is None


def test_a_later_failure_rolls_back_and_is_analysed(workdir, model_server, azurite, prices):
    model_server.script("devops", intent_reply("reports-rb", upload_to="archive"), ANALYSIS)
    env = _env(workdir, azurite, prices)
    result = council(workdir, env, "doit", REQUEST, "--yes")
    assert result.returncode == 1, result.stdout
    assert _blobs(azurite, "reports-rb") is None  # the container it made is gone again
    entries = _audit(workdir, env)
    assert [e["payload"]["action"] for e in entries if e["kind"] == "rollback"] == [
        "create-container:reports-rb"
    ]
    outcome = entries[-1]["payload"]
    assert outcome["status"] == "failed"
    analysis = outcome["analysis"]
    assert analysis["category"] == "not_found" and "archive" in analysis["cause"]
    assert analysis["cited"] == []  # a link the search did not return is never passed on
    assert analysis["docs_source"].startswith("no documentation")
    assert "objective failed: the upload names container 'archive'" in result.stdout


def _step_done(db: Path, run_id: str, name: str) -> bool:
    try:
        conn = sqlite3.connect(db)
        row = conn.execute(
            "SELECT status FROM steps WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        conn.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0] == "ok")


def test_kill_9_mid_upload_resumes_without_a_duplicate_create(
    workdir, model_server, azurite, prices
):
    for n in range(60):  # enough uploads that the kill lands among them
        (workdir / "out" / f"m{n:03d}.csv").write_text(f"n\n{n}\n")
    model_server.script("devops", intent_reply("reports-kill"))
    env = _env(workdir, azurite, prices)
    process = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "doit", REQUEST, "--yes", "--json"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    run_id = ""
    for line in process.stdout:
        event = json.loads(line)
        run_id = event.get("run_id") or run_id
        if event.get("kind") == "cloud_action" and event.get("action", "").startswith("upload:"):
            break  # the container exists and uploads have begun
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    db = workdir / ".council" / "council.db"
    assert _step_done(db, run_id, "sdk:create-container:reports-kill")
    assert not _step_done(db, run_id, "spend")
    # The killed objective still holds its budget reservation (until resumed, or it lapses).
    held = json.loads(council(workdir, env, "budget", "show", "--json").stdout)
    assert [(s["objective"], s["state"]) for s in held["spend"]] == [(run_id, "reserved")]
    resumed = council(workdir, env, "doit", "--resume", run_id, "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    blobs = _blobs(azurite, "reports-kill")
    assert blobs is not None and len(blobs) == 62
    creates = [
        e for e in _audit(workdir, env)
        if e["kind"] == "command" and e["payload"]["action"].startswith("create-container")
    ]  # fmt: skip
    assert len(creates) == 1  # made once, never again
    spend = json.loads(council(workdir, env, "budget", "show", "--json").stdout)["spend"]
    assert [(s["objective"], s["state"]) for s in spend] == [(run_id, "settled")]
    assert council(workdir, env, "audit", "--verify").returncode == 0
    assert model_server.pending("devops") == 0 and len(model_server.requests) == 1


def test_yes_never_approves_a_deletion(workdir, model_server, azurite, prices):
    BlobServiceClient.from_connection_string(
        CloudTarget("local", azurite.blob_endpoint).connection_string
    ).create_container("reports-keep")
    intent = {
        "operation": "delete",
        "summary": "delete the container reports-keep",
        "region": "",
        "resource_group": "",
        "confidence": 0.97,
        "resources": [{"type": "blob_container", "name": "reports-keep", "parameters": {}}],
    }
    model_server.script("devops", f"```json\n{json.dumps(intent)}\n```")
    env = _env(workdir, azurite, prices)
    result = council(workdir, env, "doit", "delete the container reports-keep", "--yes")
    assert result.returncode == 1
    assert "delete is destructive: it needs its name typed at a terminal" in result.stdout
    assert _blobs(azurite, "reports-keep") == {}  # still there
    entries = _audit(workdir, env)
    approvals = [e["payload"] for e in entries if e["kind"] == "approval"]
    assert [(a["subject"], a["approved"]) for a in approvals] == [("destructive", False)]
    assert "delete reports-keep" in approvals[0]["question"]
    # Nor does `--resume OBJ --yes`: the deletion is asked again, and refused again.
    again = council(workdir, env, "doit", "--resume", entries[0]["objective"], "--yes")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "it needs its name typed at a terminal" in again.stdout
    assert _blobs(azurite, "reports-keep") == {}


def test_a_listing_through_an_mcp_server_started_read_only(workdir, model_server, azurite, prices):
    service = BlobServiceClient.from_connection_string(
        CloudTarget("local", azurite.blob_endpoint).connection_string
    )
    service.create_container("reports-mcp").upload_blob("q4.csv", b"q,4\n")
    intent = {
        "operation": "list",
        "summary": "list the blobs in reports-mcp",
        "confidence": 0.95,
        "resources": [{"type": "blob_container", "name": "reports-mcp", "parameters": {}}],
    }
    model_server.script("devops", json.dumps(intent))
    env = {**_env(workdir, azurite, prices), "AZURITE_BLOB_ENDPOINT": azurite.blob_endpoint}
    server = f"{sys.executable} {ROOT / 'tests' / 'fakes' / 'mcp_storage_server.py'}"
    result = council(
        workdir, env, "doit", "what is in reports-mcp?", "--strategy", "mcp",
        "--mcp-command", server, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    plan = next(e for e in events if e.get("kind") == "cloud_plan")
    assert "the server was started read-only" in plan["notes"]
    assert plan["calls"] == ['storage_blob_list({"account": "", "container": "reports-mcp"})']
    (listed,) = [e for e in events if e.get("kind") == "cloud_action"]
    assert json.loads(listed["detail"]) == {"blobs": [{"name": "q4.csv", "size": 4}]}
