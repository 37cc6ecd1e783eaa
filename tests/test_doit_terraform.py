"""The Terraform strategy's generated HCL (parsed back with python-hcl2, formatted by terraform
where it is installed) and the ranking of strategies."""

from __future__ import annotations

import subprocess
from pathlib import Path

from council.cloud.intent import CloudIntent, CloudResource
from council.cloud.strategies.select import rank
from council.cloud.strategies.terraform import TerraformStrategy, find_terraform, parse_hcl
from council.cloud.target import CloudTarget

AZURE = CloudTarget("azure")


def _intent() -> CloudIntent:
    return CloudIntent(
        operation="create",
        summary="storage with reports",
        region="westeurope",
        resource_group="rg-reports",
        confidence=0.9,
        resources=[
            CloudResource(type="resource_group", name="rg-reports"),
            CloudResource(type="storage_account", name="reportsacct"),
            CloudResource(type="blob_container", name="reports"),
            CloudResource(
                type="blob_upload", parameters={"container": "reports", "files": "*.csv"}
            ),
        ],
    )


def test_the_generated_configuration_parses_and_names_every_resource(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("x\n")
    plan = TerraformStrategy(AZURE, tmp_path, tmp_path / "tf").plan(_intent())
    text = plan.actions[0].call["text"]
    doc = parse_hcl(text)
    kinds = sorted(kind for block in doc["resource"] for kind in block)
    assert kinds == [
        "azurerm_resource_group",
        "azurerm_storage_account",
        "azurerm_storage_blob",
        "azurerm_storage_container",
    ]
    account = next(b for b in doc["resource"] if "azurerm_storage_account" in b)
    settings = account["azurerm_storage_account"]["r_reportsacct"]
    assert settings["account_replication_type"] == "LRS"
    assert settings["allow_nested_items_to_be_public"] is False
    assert settings["shared_access_key_enabled"] is False
    assert [a.id for a in plan.actions] == ["write-config", "fmt", "init", "apply"]
    # checkov scanned it (an isolated uv tool): public access, shared keys and soft delete hold.
    findings = [n for n in plan.notes if n.startswith("checkov: CKV")]
    assert any(n.startswith("checkov: ") and "finding(s)" in n for n in plan.notes), plan.notes
    for check in ("CKV_AZURE_190", "CKV2_AZURE_40", "CKV2_AZURE_38", "CKV_AZURE_44"):
        assert not any(check + " " in n for n in findings), findings
    assert plan.actions[-1].undo["argv"][2:4] == ["destroy", "-auto-approve"]
    binary = find_terraform()
    if binary is None:
        assert TerraformStrategy(AZURE, tmp_path, tmp_path).unavailable()
        return
    main = tmp_path / "main.tf"
    main.write_text(text)
    done = subprocess.run(
        [binary, f"-chdir={tmp_path}", "fmt", "-check", "-diff"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr  # terraform's own formatting


def test_terraform_is_unavailable_without_a_binary_and_unsupported_on_the_emulator(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("COUNCIL_TERRAFORM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    strategy = TerraformStrategy(AZURE, tmp_path, tmp_path)
    assert strategy.unavailable() == "neither terraform nor tofu is installed"
    local = TerraformStrategy(CloudTarget("local", "http://127.0.0.1:1/x"), tmp_path, tmp_path)
    assert "cannot reach the local emulator" in local.unsupported(_intent())


def test_strategies_are_ranked_by_target_and_operation(tmp_path: Path) -> None:
    local = CloudTarget("local", "http://127.0.0.1:1/x")
    assert [s.name for s in rank(_intent(), local, tmp_path, tmp_path)] == [
        "sdk",
        "azure-cli",
        "mcp",
        "terraform",
    ]
    assert [s.name for s in rank(_intent(), AZURE, tmp_path, tmp_path)] == [
        "mcp",
        "terraform",
        "azure-cli",
        "sdk",
    ]
    small = _intent()
    small.resources = small.resources[2:3]
    assert [s.name for s in rank(small, AZURE, tmp_path, tmp_path)][:2] == ["mcp", "azure-cli"]
    assert [s.name for s in rank(small, AZURE, tmp_path, tmp_path, only="sdk")] == ["sdk"]
