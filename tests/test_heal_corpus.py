"""`council heal` on the seeded corpus (tests/fakes/heal_corpus.py): real git, real uv and
pytest, the real sandbox, the scripted model server. Each case checks what the heal did, not
only how it ended."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fakes import heal_corpus as hc


@pytest.fixture
def seeded(request, tmp_path, model_server):
    """The corpus case named by the test's parameter, built in tmp_path; cleaned up after."""
    built = hc.CASES[request.param].build(tmp_path / "p", model_server)
    yield built
    built.close()


def report(outcome) -> dict:
    return json.loads(Path(outcome.report_path).read_text())


def recoveries(outcome) -> list[str]:
    return [
        (it.get("recovery") or {}).get("action") or (it.get("recovery") or {}).get("kind", "")
        for it in outcome.iterations
        if it.get("recovery")
    ]


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("env_cache")]


@pytest.mark.parametrize("seeded", ["lint failure"], indirect=True)
def test_lint_failure_fixed_by_a_reviewed_patch(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert outcome.iterations[0]["gate"] == "lint"
    assert "`os` imported but unused" in outcome.iterations[0]["failures"][0]["message"]
    (attempt,) = outcome.iterations[0]["recovery"]["attempts"]
    assert attempt["applied_with"] == "git apply"  # wrong hunk counts: --recount took them
    assert "import os" not in hc.git(seeded.repo, "show", f"{outcome.branch}:calc.py")
    assert len(model_server.requests_for("guardian")) == 1


@pytest.mark.parametrize("seeded", ["syntax error"], indirect=True)
def test_syntax_error_fixed_by_a_model_patch(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    first = outcome.iterations[0]
    assert (
        "python_syntax_error" in first["classification"]
        or "lint_findings" in (first["classification"])
    )
    assert first["result"] == "patch applied (git apply)"
    code = hc.git(seeded.repo, "show", f"{outcome.branch}:calc.py")
    assert code == hc.GOOD
    assert "model_patch" in hc.git(seeded.repo, "log", "-1", "--format=%B", outcome.branch)


@pytest.mark.parametrize("seeded", ["format drift"], indirect=True)
def test_format_drift_fixed_by_the_formatter_without_a_model(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert model_server.requests == []
    assert recoveries(outcome) == ["run_formatter"]
    assert hc.git(seeded.repo, "show", f"{outcome.branch}:calc.py") == hc.GOOD


@pytest.mark.parametrize("seeded", ["gate timeout"], indirect=True)
def test_timed_out_gate_retried_once_with_a_longer_limit(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert recoveries(outcome) == ["retry_longer"]
    assert outcome.iterations[0]["recovery"]["facts"]["timeout_s"] == 2
    assert outcome.commits == [] and model_server.requests == []


@pytest.mark.parametrize("seeded", ["port held by council"], indirect=True)
def test_port_held_by_a_process_council_started_is_freed(seeded, model_server):
    holder = seeded.facts["holder"]
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert outcome.iterations[0]["classification"][0] == "port_in_use"
    assert recoveries(outcome) == ["free_port"]
    assert hc.wait_gone(holder.pid)
    assert model_server.requests == [] and outcome.commits == []


@pytest.mark.parametrize("seeded", ["port held by someone else"], indirect=True)
def test_port_held_by_another_process_is_reported_not_stopped(seeded, model_server):
    holder = seeded.facts["holder"]
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "failed"
    assert f"pid {holder.pid}" in outcome.reason
    assert "did not start" in outcome.reason
    assert holder.poll() is None  # still running: not council's to stop
    assert model_server.requests == []  # no model patch for a port clash


@pytest.mark.parametrize("seeded", ["out of memory, then enough"], indirect=True)
def test_gate_out_of_memory_retried_once_with_more(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert outcome.iterations[0]["classification"][0] == "killed_for_memory"
    assert outcome.iterations[0]["recovery"]["facts"]["memory_mb"] == 512
    assert model_server.requests == []


@pytest.mark.parametrize("seeded", ["killed every time"], indirect=True)
def test_gate_killed_again_with_more_memory_gives_up_clearly(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "failed"
    assert recoveries(outcome) == ["retry_more_memory", "retry_more_memory"]
    assert outcome.reason == "bench ran out of memory again: giving up"
    assert outcome.iterations[0]["failures"][0]["error_type"] == "signal 9"
    assert outcome.iterations[0]["recovery"]["facts"]["memory_mb"] == 4096
    assert model_server.requests == []


@pytest.mark.parametrize("seeded", ["flaky test"], indirect=True)
def test_flaky_test_recognised_by_a_rerun_and_not_edited(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert outcome.flaky == ["tests/test_calc.py::test_add_under_load"]
    assert "flaky" in outcome.reason
    assert outcome.commits == []
    assert model_server.requests == []
    assert hc.git(seeded.repo, "show", f"{outcome.branch}:tests/test_calc.py") == hc.FLAKY_TEST
    assert report(outcome)["iterations"][0]["recovery"] == {
        "kind": "rerun",
        "flaky": outcome.flaky,
        "edited": False,
    }


@pytest.mark.parametrize(
    ("seeded", "rule", "command"),
    [
        ("forbidden command", "download-to-shell", "curl -fsSL https://example.invalid/fix.sh"),
        ("denied by council.yaml", "deny-list", "pip install --user calc-helpers"),
    ],
    indirect=["seeded"],
)
def test_forbidden_command_from_the_model_stops_the_heal(seeded, rule, command, model_server):
    """The built-in rules and council.yaml's `policy.deny` alike: stopped at once, before any
    review, nothing applied, and the report says which command and which rule."""
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "stopped"
    assert "forbidden command" in outcome.reason and rule in outcome.reason
    assert model_server.requests_for("guardian") == []
    assert outcome.commits == []
    assert len(model_server.requests_for("builder")) == 1  # stopped at once, no second ask
    forbidden = report(outcome)["iterations"][-1]["recovery"]["forbidden"]
    assert forbidden["rule"] == rule and forbidden["command"].startswith(command)
    assert hc.git(seeded.repo, "show", f"{outcome.branch}:calc.py") == hc.BROKEN


@pytest.mark.parametrize("seeded", ["allowed model command"], indirect=True)
def test_allowed_model_command_runs_in_the_sandbox_and_is_reported(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    recovery = next(it["recovery"] for it in report(outcome)["iterations"] if "recovery" in it)
    (ran,) = recovery["commands"]
    assert ran["command"] == "ls calc.py" and ran["exit_code"] == 0
    assert ran["output_tail"].strip() == "calc.py"  # ran in the worktree


@pytest.mark.parametrize("seeded", ["missing tool"], indirect=True)
def test_missing_tool_needs_a_person(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "failed"
    assert "council-no-such-tool" in outcome.reason and "Install the tool" in outcome.reason
    assert model_server.requests == []


# --- held-out shapes ---------------------------------------------------------------------------


def _worktree(repo: Path, branch: str) -> Path:
    listing = hc.git(repo, "worktree", "list", "--porcelain").split("\n\n")
    (entry,) = [e for e in listing if f"branch refs/heads/{branch}" in e]
    return Path(entry.splitlines()[0].removeprefix("worktree "))


def _reruns(outcome) -> list[str]:
    return [it["rerun"] for it in outcome.iterations if "rerun" in it]


@pytest.mark.parametrize("seeded", ["flaky every other run"], indirect=True)
def test_a_test_proven_flaky_stays_flaky_for_the_whole_heal(seeded, model_server):
    """Fails on runs 1 and 3, passes on 2 and 4: one re-run proves it flaky, and its next
    failure is reported as flaky again, never sent to Builder."""
    outcome = hc.heal(seeded, model_server)
    test = "tests/test_calc.py::test_add_under_load"
    assert outcome.status == "green", outcome.reason
    assert outcome.flaky == [test] and "flaky" in outcome.reason
    assert model_server.requests == [] and outcome.commits == []
    # Runs 1 (failed), 2 (the re-run: passed), 3 (failed again: known flaky, not patched).
    assert (_worktree(seeded.repo, outcome.branch) / "flaky-count.log").read_text() == "3"
    assert [it.get("result") for it in outcome.iterations] == [
        "flaky: passed on a re-run of the same code; nothing edited",
        "green",
    ]


@pytest.mark.parametrize("seeded", ["import the index resolves (dns)"], indirect=True)
def test_an_import_missing_from_the_table_is_resolved_by_the_index_and_pinned(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert model_server.requests == []
    index = seeded.facts["index"]
    assert "/pypi/dns/json" in index.requests and "/pypi/dnspython/json" in index.requests
    recovery = outcome.iterations[0]["recovery"]
    assert recovery["action"] == "add_python_dependency"
    installed = recovery["installed"]
    major, minor = installed.split(".")[:2]
    assert recovery["pinned"] == f"dnspython>={major}.{minor},<{int(major) + 1}"
    pyproject = hc.git(seeded.repo, "show", f"{outcome.branch}:pyproject.toml")
    assert f'"dnspython>={major}.{minor},<{int(major) + 1}"' in pyproject
    assert '"dns"' not in pyproject


@pytest.mark.parametrize("seeded", ["import that does not install"], indirect=True)
def test_a_dependency_that_does_not_install_is_taken_back(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "failed"
    assert "python-councilheal-nonesuch" in outcome.reason
    assert "installing it failed" in outcome.reason and "reverted" in outcome.reason
    assert outcome.commits == [] and model_server.requests == []
    assert outcome.iterations[0]["recovery"]["reverted"] is True
    # Taken back in the heal's worktree itself, not merely left uncommitted.
    worktree = _worktree(seeded.repo, outcome.branch)
    assert (worktree / "pyproject.toml").read_text() == hc.PYPROJECT
    assert "nonesuch" not in hc.git(seeded.repo, "show", f"{outcome.branch}:pyproject.toml")


@pytest.mark.parametrize("seeded", ["infinite loop"], indirect=True)
def test_code_that_loops_forever_goes_to_builder_with_where_it_hangs(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    first, second = outcome.iterations[:2]
    assert first["recovery"]["action"] == "retry_longer"
    assert re.search(r"calc\.py:[345] in add", second["hang"]), second["hang"]  # the loop
    prompt = model_server.requests_for("builder")[0]["messages"][-1]["content"]
    assert "The tests hang (killed at the time limit twice)" in prompt
    assert "calc.py:" in prompt.split("The tests hang", 1)[1].split("\n\n", 1)[0]
    assert hc.git(seeded.repo, "show", f"{outcome.branch}:calc.py").count("b -= 1") == 1


@pytest.mark.parametrize("seeded", ["port in use, no number in the output"], indirect=True)
def test_a_port_clash_without_a_number_names_the_holder(seeded, model_server):
    holder, port = seeded.facts["holder"], seeded.facts["port"]
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "failed"
    assert outcome.iterations[0]["classification"][0] == "port_in_use"
    assert f"port {port} is held by pid {holder.pid}" in outcome.reason
    assert "did not start" in outcome.reason
    assert outcome.iterations[0]["recovery"]["facts"]["found_in"] == "the failing code's source"
    assert holder.poll() is None and model_server.requests == []


@pytest.mark.parametrize(
    ("seeded", "row"),
    [
        ("javac compile error", "java_compile_error"),
        ("circular import", "circular_import"),
        ("unsatisfiable pin", "unsatisfiable_pin"),
    ],
    indirect=["seeded"],
)
def test_compile_errors_circular_imports_and_bad_pins_go_to_builder_without_a_rerun(
    seeded, row, model_server
):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    first = outcome.iterations[0]
    assert first["classification"][0] == row
    assert _reruns(outcome) == []  # no re-run of the same code before Builder was asked
    assert first["result"].startswith("patch applied")
    assert len(model_server.requests_for("builder")) == 1


@pytest.mark.parametrize("seeded", ["missing npm package"], indirect=True)
def test_a_missing_npm_package_is_installed_and_pinned_to_a_caret_range(seeded, model_server):
    outcome = hc.heal(seeded, model_server)
    assert outcome.status == "green", outcome.reason
    assert model_server.requests == []
    recovery = outcome.iterations[0]["recovery"]
    assert recovery["action"] == "add_npm_dependency"
    installed = recovery["installed"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", installed)
    package = json.loads(hc.git(seeded.repo, "show", f"{outcome.branch}:package.json"))
    assert package["dependencies"] == {"left-pad": f"^{installed}"}  # never "latest"
