"""Attacks on `council doit`'s intent and plans: names the model read (or was fed) that would
become options of a command or templates of the generated Terraform are questions, never run."""

# ruff: noqa: F811 - test_doit_flow's fixtures (workdir, prices) are imported, then requested

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from council.cloud.intent import CloudIntent, CloudResource, questions
from council.cloud.strategies.terraform import parse_hcl, render_hcl
from council.cloud.target import CloudTarget
from tests.test_doit_flow import (  # noqa: F401 (fixtures: workdir, prices)
    ANALYSIS,
    _blobs,
    _env,
    council,
    intent_reply,
    prices,
    workdir,
)


def _intent(operation: str, resource: CloudResource, resource_group: str = "rg-ok") -> CloudIntent:
    return CloudIntent(
        operation=operation,
        summary="as read",
        region="westeurope",
        resource_group=resource_group,
        confidence=0.95,
        resources=[resource],
    )


@pytest.mark.parametrize(
    ("operation", "resource", "group", "named"),
    [
        # The resource group an account goes in is an argument of `az ... --resource-group` and
        # a string of main.tf: an option or a template there is a question.
        ("create", CloudResource(type="storage_account", name="acct1"), "--subscription=x", "--"),
        ("create", CloudResource(type="storage_account", name="acct1"), "rg-${path.cwd}", "${"),
        ("create", CloudResource(type="resource_group", name="-rg"), "", "'-rg'"),
        # A delete's or a listing's name is as much an argument as a create's.
        ("delete", CloudResource(type="blob_container", name="--help"), "rg-ok", "'--help'"),
        ("list", CloudResource(type="blob_container", name="-h"), "rg-ok", "'-h'"),
    ],
)
def test_a_name_that_is_an_option_or_a_template_is_a_question(operation, resource, group, named):
    asked = questions(_intent(operation, resource, group))
    assert any(named in q and "not valid" in q for q in asked), asked


def test_a_file_named_like_a_template_stays_text_in_the_terraform(tmp_path: Path) -> None:
    (tmp_path / "price-${var.x}.csv").write_text("a,b\n")
    intent = _intent(
        "create",
        CloudResource(type="blob_upload", parameters={"container": "reports", "files": "*.csv"}),
    )
    intent.resources[:0] = [
        CloudResource(type="storage_account", name="acct1"),
        CloudResource(type="blob_container", name="reports"),
    ]
    text = render_hcl(intent, CloudTarget("azure"), tmp_path)
    assert '"price-$${var.x}.csv"' in text and "price-${var" not in text.replace("$${", "")
    parse_hcl(text)  # still a valid configuration


def test_an_upload_reaching_outside_the_folder_is_asked_not_run(
    workdir,
    model_server,
    azurite,
    prices,
):
    """The model names a file outside the folder (a secret beside it): with --yes nothing is
    uploaded; the objective stops with the question."""
    (workdir.parent / "secret.env").write_text("TOKEN=do-not-upload\n")
    reply = intent_reply("reports-outside", files="../secret.env")
    model_server.script("devops", reply)
    env = _env(workdir, azurite, prices)
    result = council(workdir, env, "doit", "upload ./out/*.csv to reports-outside", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'../secret.env' reaches outside" in result.stdout
    assert _blobs(azurite, "reports-outside") is None


def test_resuming_a_failed_create_never_takes_over_and_removes_a_container_not_ours(
    workdir, model_server, azurite, prices
):
    """The user's container exists; creating one of that name failed (name taken). A resume
    of that objective must not read the failure as "made by this objective before a kill",
    or the rollback of a later failure deletes the user's container and its data."""
    service = BlobServiceClient.from_connection_string(
        CloudTarget("local", azurite.blob_endpoint).connection_string
    )
    service.create_container("theirs-1").upload_blob("keep.txt", b"the user's data")
    model_server.script("devops", intent_reply("theirs-1", upload_to="archive"), ANALYSIS)
    env = _env(workdir, azurite, prices)
    first = council(workdir, env, "doit", "put the reports in theirs-1", "--yes")
    assert first.returncode == 1 and "already exists" in first.stdout, first.stdout
    objective = json.loads(council(workdir, env, "audit", "--json").stdout.splitlines()[0])
    model_server.script("devops", ANALYSIS)
    again = council(workdir, env, "doit", "--resume", objective["objective"], "--yes")
    assert again.returncode == 1, again.stdout + again.stderr
    assert _blobs(azurite, "theirs-1") == {"keep.txt": 15}
