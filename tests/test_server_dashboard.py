"""The dashboard in a real headless browser (Playwright driving Debian's chromium): the runs
list, a run's live page (timeline, tests red then green, review, diff) and the cost charts,
with the data of a real run. Screenshots go to tests/artifacts/dashboard/ (not committed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fakes import serve as sv
from tests.fakes.model_server import Reply

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).parent / "artifacts" / "dashboard"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="scripts/setup --dev installs chromium"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, serve_cache):
    with sv.serve(tmp_path_factory.mktemp("dash-server")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


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
