"""The dashboard in a real headless browser (Playwright driving Debian's chromium): the runs
list, a run's live page (timeline, tests red then green, review, diff) and the cost charts,
with the data of a real run. Screenshots go to tests/artifacts/dashboard/ (not committed)."""

from __future__ import annotations

import pytest

from tests.fakes import council_script as cs
from tests.fakes import heal_corpus as hc
from tests.fakes import serve as sv
from tests.fakes.model_server import Reply
from tests.serve_fixtures import SHOTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def green_run(served, serve_model, tmp_path_factory):
    """A run submitted with a slow Builder, so its page is open while it runs."""
    repo = sv.leap_repo(tmp_path_factory.mktemp("dash") / "leap", serve_model)
    serve_model.script("pacer", sv.PLAN)
    serve_model.script("maven", sv.CONTEXT)
    serve_model.script("builder", Reply(content=sv.RIGHT, delay_s=4))
    serve_model.script("guardian", sv.REVIEW)
    run = served.client().post(
        "/api/runs",
        json={"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]},
    )
    assert run.status_code == 201, run.text
    return run.json()["id"]


def test_a_runs_page_follows_it_live_to_green_with_its_timeline_tests_review_and_diff(
    served, green_run, page
):
    page.goto(f"{served.url}/runs/{green_run}")
    # Opened while queued or running: the status changes on the page by itself (SSE + htmx).
    assert page.inner_text("#run-status") in ("queued", "running")
    page.wait_for_function(
        "document.querySelector('#run-status').textContent === 'green'", timeout=180_000
    )
    page.screenshot(path=str(SHOTS / "run.png"), full_page=True)
    timeline = page.inner_text("#timeline")
    for step in ("plan", "context", "tests", "iteration-1", "review", "commit"):
        assert step in timeline
    plan_row = page.locator("#timeline tr", has_text="plan").first.inner_text()
    assert "pacer" in plan_row and "openai/pacer" in plan_row
    tests = page.locator("#tests tbody tr")
    assert tests.count() >= 2
    assert "failed" in (tests.first.get_attribute("class") or "")  # red first
    assert "green" in (tests.last.get_attribute("class") or "")  # then green
    assert "approve" in page.inner_text("#review-verdict")
    assert "year % 400 == 0" in page.inner_text("#diff")


def test_the_runs_list_and_the_cost_charts_show_the_runs_data(served, green_run, page):
    served.client().get(f"/api/runs/{green_run}")
    page.goto(served.url)
    row = page.locator(f"#run-{green_run}")
    row.wait_for()
    assert "green" in row.inner_text() or "running" in row.inner_text()
    page.wait_for_function(
        f"document.querySelector('#run-{green_run} .status').textContent === 'green'",
        timeout=180_000,
    )
    assert "$0.0" in row.inner_text()
    page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)

    page.goto(f"{served.url}/costs")
    for chart, label in (("#by-persona", "pacer"), ("#by-model", "openai/builder")):
        svg = page.locator(f"{chart} svg")
        assert svg.count() == 1
        assert label in svg.text_content()
        assert page.locator(f"{chart} svg rect").count() >= 4  # pacer, maven, builder, guardian
    page.screenshot(path=str(SHOTS / "costs.png"), full_page=True)


def test_a_heal_runs_page_shows_its_classification_patch_and_review(
    served, serve_model, tmp_path, page
):
    # A failing assertion: classified, patched by the Builder, approved, applied, green.
    repo = hc.make_project(tmp_path / "calc", hc.BROKEN)
    (repo / "council.yaml").write_text(cs.council_yaml(serve_model))
    (repo / ".git" / "info" / "exclude").write_text("council.yaml\n.council/\n")
    serve_model.script("builder", hc.FIX_DIFF)
    serve_model.script("guardian", hc.APPROVE)
    http = served.client()
    body = {"repo": str(repo), "kind": "heal", "gates": ["install", "test"]}
    run = http.post("/api/runs", json=body)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    sv.wait_until(lambda: http.get(f"/api/runs/{run_id}").json()["job_status"] == "done", 240)
    assert http.get(f"/api/runs/{run_id}").json()["status"] == "green"

    page.goto(f"{served.url}/runs/{run_id}")
    heal = page.locator("#heal tbody tr")
    rows = [heal.nth(i).inner_text() for i in range(heal.count())]
    classified = next(r for r in rows if "failure classified" in r)
    assert "\ttest\t" in classified and "catalogue: failing_assertion" in classified, classified
    proposed = next(r for r in rows if "patch proposed" in r)
    assert "builder: calc.py" in proposed and "a + b" in proposed
    assert any("patch reviewed" in r and "approve" in r for r in rows)
    assert any("patch applied" in r and "calc.py" in r for r in rows)
    assert "a + b" in page.inner_text("#diff")  # the heal's branch
    page.screenshot(path=str(SHOTS / "heal.png"), full_page=True)
