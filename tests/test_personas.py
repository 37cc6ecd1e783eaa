"""Personas are data files; a repository's `.council/prompts/` overrides what they are told."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from council.config import PERSONAS, parse_config, preset
from council.events import Emitter
from council.personas import SCHEMAS, DeploymentDiagnosis, Prompts, load_personas
from council.pipelines.run import TddFlow
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[1]


def test_every_persona_file_is_known_to_config_and_names_real_templates_and_schemas() -> None:
    personas = load_personas()
    assert set(personas) == set(PERSONAS)
    names = Prompts().names()
    for persona in personas.values():
        assert persona.role.startswith(f"You are {persona.title}")
        assert persona.templates, persona.name
        for template, schema in persona.templates.items():
            assert template in names, (persona.name, template)
            assert schema is None or schema in SCHEMAS, (persona.name, schema)


def test_presets_take_each_persona_s_default_model_from_its_file() -> None:
    doc = preset("openai")
    assert {p: doc["personas"][p]["model"] for p in PERSONAS} == {
        p: load_personas()[p].model for p in PERSONAS
    }
    assert doc["personas"]["maven"]["model"] == "council-fast"
    assert parse_config(json.dumps(doc)).persona("devops").model == "council-strong"


def test_devops_templates_render_and_its_diagnosis_schema_validates() -> None:
    prompts = Prompts()
    artefacts = prompts.render(
        "devops",
        "deploy_artifacts",
        service="profile-service",
        target="azure-container-apps",
        languages=[{"language": "python", "root": "."}],
        artifacts=["Dockerfile", "infra/main.bicep", ".github/workflows/deploy.yml"],
        requirements=["health endpoint at /health"],
        repo_map="app/main.py: app, get_profile",
        files={"pyproject.toml": "[project]\nname = 'x'\n"},
        feedback="",
    )
    assert artefacts[0]["content"].startswith("You are DevOps")
    assert "infra/main.bicep" in artefacts[1]["content"]
    assert "SEARCH/REPLACE" in artefacts[1]["content"]  # the shared edit format is included
    diagnosis = prompts.text(
        "deploy_diagnosis",
        service="profile-service",
        target="local",
        stage="health",
        command="curl -f http://127.0.0.1:8000/health",
        log="connection refused",
        files={},
        previous=["restart the service"],
    )
    assert "connection refused" in diagnosis and "restart the service" in diagnosis
    answer = DeploymentDiagnosis.model_validate(
        {
            "stage": "deploy",
            "category": "configuration",
            "cause": "the container listens on 5000, the app expects 8000",
            "evidence": ["Listening at: http://0.0.0.0:5000"],
            "fix": "set PORT=8000 in the container app's environment",
            "files": ["infra/app.bicep"],
        }
    )
    assert answer.retry is False and answer.commands == []


def test_an_override_wins_and_its_includes_resolve_from_the_package(tmp_path: Path) -> None:
    own = tmp_path / ".council" / "prompts"
    own.mkdir(parents=True)
    (own / "refine.j2").write_text(
        "HOUSE RULE: keep functions short.\n{% include '_edit_format.j2' %}\n", encoding="utf-8"
    )
    prompts = Prompts(tmp_path)
    text = prompts.text("refine")
    assert text.startswith("HOUSE RULE: keep functions short.")
    assert "SEARCH/REPLACE" in text
    assert prompts.override("refine") == own / "refine.j2"
    assert (
        Prompts(tmp_path)
        .text("scope_note", language="java", root="core")
        .startswith("You work on the java part only")
    )  # not overridden: the package's


def test_a_prompt_override_changes_what_the_model_receives(
    tmp_path: Path, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path / "cache"))
    repo = cs.make_repo(tmp_path / "profile-service")
    own = repo / ".council" / "prompts"
    own.mkdir(parents=True)
    (own / "plan.j2").write_text(
        "HOUSE PLANNING RULES: one task per endpoint.\nFeature: {{ feature }}\n", encoding="utf-8"
    )
    # Pacer answers nonsense twice: the run stops at the plan, after the prompt was sent.
    model_server.script("pacer", "no plan today", "still no plan")
    config = parse_config(cs.council_yaml(model_server))
    pipeline = TddFlow.start(
        repo=repo, feature=cs.FEATURE, config=config, store=Store.for_repo(repo), emit=Emitter()
    )
    pipeline.execute()
    sent = model_server.requests_for("pacer")[0]["messages"]
    assert sent[0]["content"] == load_personas()["pacer"].role
    assert sent[1]["content"].startswith("HOUSE PLANNING RULES: one task per endpoint.")
    assert cs.FEATURE in sent[1]["content"]
    assert "Plan this feature for the repository below." not in sent[1]["content"]


def _prompts(*args: str, cwd: Path, **env: str) -> str:
    """`council prompts ...` in-process (typer's runner), for speed; stdout of a clean run."""
    from typer.testing import CliRunner

    from council.cli import app

    result = CliRunner().invoke(app, ["prompts", *args, "--repo", str(cwd)], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_prompts_list_show_and_edit(tmp_path: Path) -> None:
    rows = {line.split()[0]: line for line in _prompts("list", cwd=tmp_path).splitlines()}
    assert "pacer" in rows["plan"] and rows["plan"].endswith("package")
    assert "devops" in rows["deploy_diagnosis"]
    assert _prompts("show", "plan", cwd=tmp_path) == Prompts().packaged("plan")

    # EDITOR is any command: here one that rewrites the copy in place, as a user would.
    _prompts("edit", "plan", cwd=tmp_path, EDITOR="sed -i s/Plan\\ this\\ feature/Plan\\ THIS/")
    copy = tmp_path / ".council" / "prompts" / "plan.j2"
    assert copy.read_text(encoding="utf-8").startswith("Plan THIS for the repository below.")
    assert _prompts("show", "plan", cwd=tmp_path).startswith("Plan THIS")
    assert "override: .council/prompts/plan.j2" in _prompts("list", cwd=tmp_path)


def test_an_unknown_template_is_a_usage_error_listing_the_known_ones(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "council.cli", "prompts", "show", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown prompt template 'nope' (known: _edit_format,")
    assert "Traceback" not in done.stderr
