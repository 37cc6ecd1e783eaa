"""The strategies against a real Azurite: the SDK and `az storage` round trips, rollback of what
an objective created when a later step fails, resume without a duplicate create, retry with
backoff, and fallback to the next strategy."""

from __future__ import annotations

import random
import stat
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from council.cloud.actions import render_call
from council.cloud.execute import Hooks, ObjectiveFailed, RetryPolicy, carry_out
from council.cloud.failures import CloudFailure, classify, failure_signature
from council.cloud.intent import CloudIntent, CloudResource
from council.cloud.strategies.azcli import AzCliStrategy, find_az
from council.cloud.strategies.sdk import SdkStrategy
from council.cloud.target import CloudTarget

FAST = RetryPolicy(attempts=3, base_s=0.01, max_s=0.05)


def _intent(container: str, files: str = "out/*.csv") -> CloudIntent:
    return CloudIntent(
        operation="create",
        summary="storage account with a private container and the reports in it",
        region="westeurope",
        resource_group="rg-reports",
        confidence=0.95,
        resources=[
            CloudResource(type="resource_group", name="rg-reports"),
            CloudResource(type="storage_account", name="reportsacct"),
            CloudResource(type="blob_container", name=container),
            CloudResource(type="blob_upload", parameters={"container": container, "files": files}),
        ],
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("id,total\n1,10\n")
    (out / "b.csv").write_text("id,total\n2,20\n3,30\n")
    return tmp_path


@pytest.fixture
def target(azurite) -> CloudTarget:
    return CloudTarget("local", azurite.blob_endpoint)


def _blobs(target: CloudTarget, container: str) -> dict[str, int] | None:
    service = BlobServiceClient.from_connection_string(target.connection_string)
    client = service.get_container_client(container)
    if not client.exists():
        return None
    return {b.name: b.size for b in client.list_blobs()}


class Units:
    """The flow's persistence in miniature: unit outputs by name, and units that started."""

    def __init__(self) -> None:
        self.done: dict[str, dict] = {}
        self.started: set[str] = set()
        self.notices: list[str] = []
        self.sleeps: list[float] = []

    def hooks(self) -> Hooks:
        def unit(name, fn):
            if name in self.done:
                return self.done[name]
            self.started.add(name)
            self.done[name] = fn()
            return self.done[name]

        return Hooks(
            unit=unit,
            started_before=lambda name: name in self.started and name not in self.done,
            notice=self.notices.append,
            sleep=self.sleeps.append,
        )


def test_sdk_round_trip_creates_uploads_and_validates(target, project) -> None:
    strategy = SdkStrategy(target, project)
    used, plan, attempts = carry_out(_intent("reports-sdk"), [strategy], Units().hooks(), FAST)
    assert used is strategy and attempts[-1].status == "ok"
    assert _blobs(target, "reports-sdk") == {"a.csv": 14, "b.csv": 19}
    assert [a.id for a in plan.actions] == [
        "check-account:reportsacct",
        "create-container:reports-sdk",
        "upload:reports-sdk/a.csv",
        "upload:reports-sdk/b.csv",
    ]
    assert any("emulator" in note for note in plan.notes)


def test_a_later_failure_rolls_back_what_was_created(target, project) -> None:
    strategy = SdkStrategy(target, project)
    plan = strategy.plan(_intent("reports-rollback"))
    (project / "out" / "b.csv").unlink()  # the second upload will fail

    class Planned(SdkStrategy):
        def plan(self, intent):  # the plan made before the file went away
            return plan

    with pytest.raises(ObjectiveFailed) as caught:
        carry_out(_intent("reports-rollback"), [Planned(target, project)], Units().hooks(), FAST)
    (attempt,) = caught.value.attempts
    assert attempt.rolled_back == ["blob:reports-rollback/a.csv", "blob_container:reports-rollback"]
    assert _blobs(target, "reports-rollback") is None  # nothing left behind


def test_a_container_made_before_a_kill_is_not_created_twice(target, project) -> None:
    units = Units()
    # The earlier process started the create and died after Azure made the container.
    units.started.add("sdk:create-container:reports-resume")
    BlobServiceClient.from_connection_string(target.connection_string).create_container(
        "reports-resume"
    )
    carry_out(_intent("reports-resume"), [SdkStrategy(target, project)], units.hooks(), FAST)
    assert units.done["sdk:create-container:reports-resume"]["output"] == {
        "existed_after_restart": True
    }
    assert _blobs(target, "reports-resume") == {"a.csv": 14, "b.csv": 19}


def test_an_existing_container_that_is_not_ours_is_a_name_taken_failure(target, project) -> None:
    BlobServiceClient.from_connection_string(target.connection_string).create_container(
        "reports-taken"
    )
    with pytest.raises(ObjectiveFailed) as caught:
        carry_out(_intent("reports-taken"), [SdkStrategy(target, project)], Units().hooks(), FAST)
    assert caught.value.failure.category == "name_taken"
    assert _blobs(target, "reports-taken") == {}  # someone else's container stays untouched


def test_a_create_that_timed_out_after_azure_made_it_is_ours_and_rolled_back(
    target, project
) -> None:
    """The first create call reaches Azure, which makes the container, but the answer times
    out. Its retry meets "already exists": that is this objective's own container (the outcome
    of the time-out was unknown), so a later failure rolls it back; nothing is left behind."""

    class TimesOutOnce(SdkStrategy):
        timed_out = False

        def run(self, action, *, resumed=False):
            result = super().run(action, resumed=resumed)
            if action.id.startswith("create-container") and not self.timed_out:
                self.timed_out = True
                raise CloudFailure("the operation timed out", category="transient")
            return result

    strategy = TimesOutOnce(target, project)
    intent = _intent("reports-timeout")
    intent.resources[-1].parameters["container"] = "archive-missing"  # the upload will fail
    with pytest.raises(ObjectiveFailed) as caught:
        carry_out(intent, [strategy], Units().hooks(), FAST)
    (attempt,) = caught.value.attempts
    assert strategy.timed_out
    assert attempt.created == [] and "blob_container:reports-timeout" in attempt.rolled_back
    assert _blobs(target, "reports-timeout") is None


def test_a_resume_whose_every_strategy_failed_before_says_so(project) -> None:
    """Resuming an objective whose strategies all failed runs nothing and says why, instead of
    "no strategy can carry this out here"."""
    nowhere = CloudTarget("local", "http://127.0.0.1:9/devstoreaccount1")
    strategies = [SdkStrategy(nowhere, project), AzCliStrategy(nowhere, project)]
    with pytest.raises(ObjectiveFailed) as caught:
        skip = {"sdk", "azure-cli"}
        carry_out(_intent("reports-x"), strategies, Units().hooks(), FAST, skip=skip)
    message = str(caught.value)
    assert "failed before in this objective (sdk, azure-cli)" in message
    assert "start a new objective" in message


def _fake_az(tmp_path: Path, script: str) -> str:
    path = tmp_path / "az"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_failed_strategy_falls_back_to_the_next(target, project, tmp_path, monkeypatch) -> None:
    # An az that is not signed in: a failure of the CLI strategy, not of the request.
    monkeypatch.setenv(
        "COUNCIL_AZ",
        _fake_az(tmp_path, "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1"),
    )
    units = Units()
    cli, sdk = AzCliStrategy(target, project), SdkStrategy(target, project)
    used, _plan, attempts = carry_out(_intent("reports-fallback"), [cli, sdk], units.hooks(), FAST)
    assert used is sdk
    assert [(a.strategy, a.status, a.category) for a in attempts] == [
        ("azure-cli", "failed", "auth"),
        ("sdk", "ok", ""),
    ]
    assert any("strategy azure-cli failed (auth)" in n for n in units.notices)
    # Retried on the next run of the objective, the failed strategy is skipped.
    _used, _plan, again = carry_out(
        _intent("reports-fallback"), [cli, sdk], units.hooks(), FAST, skip={"azure-cli"}
    )
    assert again[0].status == "skipped"


def test_a_missing_az_is_unavailable_and_the_next_strategy_runs(
    target, project, monkeypatch
) -> None:
    monkeypatch.setenv("COUNCIL_AZ", "/nonexistent/az")
    cli = AzCliStrategy(target, project)
    assert "Azure CLI (az) is not installed" in (cli.unavailable() or "")
    used, _plan, attempts = carry_out(
        _intent("reports-noaz"), [cli, SdkStrategy(target, project)], Units().hooks(), FAST
    )
    assert used.name == "sdk" and attempts[0].status == "unavailable"


def test_transient_errors_are_retried_with_backoff(target, project) -> None:
    calls = []

    class Flaky(SdkStrategy):
        def run(self, action, *, resumed=False):
            calls.append(action.id)
            if action.id.startswith("create-container") and calls.count(action.id) < 3:
                raise CloudFailure("ServerBusy: The server is currently unable to respond")
            return super().run(action, resumed=resumed)

    units = Units()
    carry_out(_intent("reports-retry"), [Flaky(target, project)], units.hooks(), FAST)
    assert calls.count("create-container:reports-retry") == 3
    assert len(units.sleeps) == 2 and units.sleeps[0] < units.sleeps[1]
    policy = RetryPolicy(base_s=2, max_s=60, jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(1, 8)]
    assert 1.6 <= delays[0] <= 2.4 and 3.2 <= delays[1] <= 4.8 and max(delays) <= 72


def test_cloud_errors_are_classified_and_signed_stably() -> None:
    assert (
        classify("ERROR: (StorageAccountAlreadyTaken) The storage account named x is taken.")[0]
        == "name_taken"
    )
    assert classify("(SkuNotAvailable) The requested VM size is not available")[0] == "sku"
    assert classify("(LocationNotAvailableForResourceType) nope")[0] == "region"
    assert classify("(QuotaExceeded) Operation could not be completed")[0] == "quota"
    assert classify("429 TooManyRequests") == ("transient", True)
    one = failure_signature("name_taken", "account 'acct1' taken at 2026-11-30T00:01:02Z")
    two = failure_signature("name_taken", "account 'other9' taken at 2026-12-01T10:11:12Z")
    assert one == two


def test_the_cli_plan_is_argv_with_no_secret(target, project) -> None:
    plan = AzCliStrategy(target, project).plan(_intent("reports"))
    lines = [render_call(a.call) for a in plan.actions]
    assert lines[1] == (
        "az storage container create --name=reports --public-access=off --fail-on-exist "
        "--output=json"
    )
    assert all(target.connection_string not in line for line in lines)
    azure = AzCliStrategy(CloudTarget("azure"), project).plan(_intent("reports"))
    assert [a.id for a in azure.actions][:2] == [
        "create-group:rg-reports",
        "create-account:reportsacct",
    ]
    assert "--allow-blob-public-access=false" in render_call(azure.actions[1].call)
    assert "--auth-mode=login" in render_call(azure.actions[2].call)


# The flags the az plan may use; any other word starting with '-' would be a value az's parser
# takes for an option.
AZ_FLAGS = {
    "--name", "--location", "--yes", "--output", "--resource-group", "--sku", "--kind",
    "--access-tier", "--allow-blob-public-access", "--min-tls-version", "--public-access",
    "--fail-on-exist", "--account-name", "--auth-mode", "--container-name", "--file",
    "--no-progress", "--num-results",
}  # fmt: skip


def test_az_storage_round_trip_with_names_that_look_like_options(target, project, tmp_path):
    """`az storage` against Azurite: create, upload, validate, undo. A blob named after a file
    like `-jan.csv` or `--debug.csv` is a value of --name, never an option of az: every value
    is glued to its flag (`--name=-jan.csv`), in every argv the strategy builds: create,
    upload, undo, and the validation's show and list."""
    odd = project / "odd"
    odd.mkdir()
    (odd / "-jan.csv").write_text("id\n1\n")
    (odd / "--debug.csv").write_text("id\n2\n22\n")
    strategy = AzCliStrategy(target, project, state_dir=tmp_path / "az")
    intent = _intent("reports-dash", files="odd/*")
    plan = strategy.plan(intent)
    for action in plan.actions:
        for argv in (action.call.get("argv", []), (action.undo or {}).get("argv", [])):
            options = [w.split("=", 1)[0] for w in argv if w.startswith("-")]
            assert set(options) <= AZ_FLAGS, argv
    assert find_az(), "az is not installed: scripts/setup --dev installs it (uv tool)"
    used, plan, _ = carry_out(intent, [strategy], Units().hooks(), FAST)
    assert used is strategy
    assert _blobs(target, "reports-dash") == {"-jan.csv": 5, "--debug.csv": 8}
    upload = next(a for a in plan.actions if a.id == "upload:reports-dash/-jan.csv")
    strategy.undo(upload)
    assert _blobs(target, "reports-dash") == {"--debug.csv": 8}
    # Undo through az too: removing the container removes its blob (one az run, not two).
    strategy.undo(next(a for a in plan.actions if a.id == "create-container:reports-dash"))
    assert _blobs(target, "reports-dash") is None
