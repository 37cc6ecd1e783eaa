"""JUnit XML parsing (real pytest output, Surefire and jest-junit samples) and the TestReport."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from council.toolchains.junit import JUnitError, parse_junit
from council.toolchains.report import TestCase, TestReport, normalise_message

PYTEST_SUITE = {
    "tests/test_mixed.py": """
        import pytest

        def test_ok():
            assert True

        def test_fail():
            print("debug line from test_fail")
            assert 404 == 200, "wrong status"

        @pytest.fixture
        def boom():
            raise RuntimeError("fixture broke")

        def test_err(boom):
            pass

        @pytest.mark.skip(reason="later")
        def test_skip():
            pass

        class TestGroup:
            @pytest.mark.parametrize("n", [1, 2])
            def test_param(self, n):
                assert n == 1
    """,
    "tests/test_missing.py": "from app.profile import get_profile\n",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")


def _pytest_xml(root: Path, family: str) -> Path:
    """Run the real pytest on `root` and return the JUnit XML it wrote."""
    xml = root / f"junit-{family}.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"]
        + ["-o", f"junit_family={family}", "-o", "junit_logging=all"]
        + ["-o", "junit_log_passing_tests=false", "--continue-on-collection-errors", "tests"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    assert xml.is_file()
    return xml


@pytest.fixture(scope="module")
def pytest_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("junit-project")
    _write(root, PYTEST_SUITE)
    return root


def test_real_pytest_xunit1_report(pytest_project: Path) -> None:
    cases = parse_junit(_pytest_xml(pytest_project, "xunit1"), root=pytest_project)
    by_id = {case.id: case for case in cases}

    assert by_id["tests/test_mixed.py::test_ok"].outcome == "passed"
    fail = by_id["tests/test_mixed.py::test_fail"]
    assert fail.outcome == "failed"
    assert fail.message.startswith("AssertionError: wrong status")
    assert "tests/test_mixed.py:9: AssertionError" in fail.traceback
    assert "debug line from test_fail" in fail.output
    assert fail.file == "tests/test_mixed.py"

    err = by_id["tests/test_mixed.py::test_err"]
    assert err.outcome == "error"
    assert "fixture broke" in err.message

    skip = by_id["tests/test_mixed.py::test_skip"]
    assert (skip.outcome, skip.message, skip.traceback) == ("skipped", "later", "")

    assert by_id["tests/test_mixed.py::TestGroup::test_param[1]"].outcome == "passed"
    assert by_id["tests/test_mixed.py::TestGroup::test_param[2]"].outcome == "failed"

    collect = by_id["tests/test_missing.py"]
    assert collect.outcome == "error"
    assert collect.message == "collection failure"
    assert "ModuleNotFoundError: No module named 'app'" in collect.traceback
    assert len(collect.traceback.splitlines()) <= 16  # short: the tail of the traceback


def test_real_pytest_xunit2_ids_recover_the_file_from_classname(pytest_project: Path) -> None:
    """xunit2 drops the file attribute; with the project root the ids are the same."""
    xunit1 = parse_junit(_pytest_xml(pytest_project, "xunit1"), root=pytest_project)
    xunit2 = parse_junit(_pytest_xml(pytest_project, "xunit2"), root=pytest_project)
    assert sorted((c.id, c.outcome) for c in xunit2) == sorted((c.id, c.outcome) for c in xunit1)
    assert {c.file for c in xunit2 if c.id.startswith("tests/test_mixed.py")} == {
        "tests/test_mixed.py"
    }


SUREFIRE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="com.example.UserServiceTest"
    time="0.412" tests="5" errors="1" skipped="1" failures="1">
  <properties><property name="java.version" value="21.0.2"/></properties>
  <testcase name="returnsUser" classname="com.example.UserServiceTest" time="0.021"/>
  <testcase name="returnsProfile" classname="com.example.UserServiceTest" time="0.034">
    <failure message="expected: &lt;200&gt; but was: &lt;404&gt;"
        type="org.opentest4j.AssertionFailedError">
org.opentest4j.AssertionFailedError: expected: &lt;200&gt; but was: &lt;404&gt;
	at org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:151)
	at com.example.UserServiceTest.returnsProfile(UserServiceTest.java:42)
</failure>
    <system-out><![CDATA[GET /api/v1/users/me/profile -> 404
]]></system-out>
  </testcase>
  <testcase name="loadsRepository" classname="com.example.UserServiceTest" time="0.002">
    <error message="Connection refused" type="java.net.ConnectException">
java.net.ConnectException: Connection refused
	at com.example.Repo.open(Repo.java:10)</error>
  </testcase>
  <testcase name="later" classname="com.example.UserServiceTest" time="0">
    <skipped message="not yet"/>
  </testcase>
  <testcase name="flaky" classname="com.example.UserServiceTest" time="0.1">
    <flakyFailure message="timing" type="AssertionError">first attempt failed</flakyFailure>
  </testcase>
</testsuite>
"""

JEST = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1" errors="0" time="1.2">
  <testsuite name="profile.test.js" errors="0" failures="1" skipped="1" tests="3" time="0.9">
    <testcase classname="profile API returns 200" name="profile API returns 200" time="0.01"
        file="/work/app/src/profile.test.js">
    </testcase>
    <testcase classname="profile API returns the join date" name="profile API returns the join date"
        time="0.02" file="/work/app/src/profile.test.js">
      <failure>Error: expect(received).toBe(expected) // Object.is equality

Expected: "2021-03-14"
Received: undefined
    at Object.toBe (/work/app/src/profile.test.js:12:30)</failure>
    </testcase>
    <testcase classname="profile API todo" name="profile API todo" time="0">
      <skipped/>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_surefire_testsuite_root() -> None:
    cases = parse_junit(SUREFIRE)
    by_id = {case.id: case for case in cases}
    assert list(by_id) == [
        "com.example.UserServiceTest::returnsUser",
        "com.example.UserServiceTest::returnsProfile",
        "com.example.UserServiceTest::loadsRepository",
        "com.example.UserServiceTest::later",
        "com.example.UserServiceTest::flaky",
    ]
    failed = by_id["com.example.UserServiceTest::returnsProfile"]
    assert failed.outcome == "failed"
    assert failed.message == "expected: <200> but was: <404>"
    assert "UserServiceTest.java:42" in failed.traceback
    assert "GET /api/v1/users/me/profile -> 404" in failed.output
    assert by_id["com.example.UserServiceTest::loadsRepository"].outcome == "error"
    assert by_id["com.example.UserServiceTest::later"].outcome == "skipped"
    # A test that failed once and passed on rerun passed.
    assert by_id["com.example.UserServiceTest::flaky"].outcome == "passed"


def test_jest_testsuites_root_message_from_text() -> None:
    cases = parse_junit(JEST.encode(), root=Path("/work/app"))
    assert [(c.id, c.outcome) for c in cases] == [
        ("profile API returns 200", "passed"),
        ("profile API returns the join date", "failed"),
        ("profile API todo", "skipped"),
    ]
    failed = cases[1]
    assert failed.message == "Error: expect(received).toBe(expected) // Object.is equality"
    assert failed.file == "src/profile.test.js"
    assert "Received: undefined" in failed.traceback


def test_failure_wins_over_a_later_error_on_the_same_case() -> None:
    xml = """<testsuite><testcase classname="m" name="t">
      <failure message="call failed">x</failure><error message="teardown failed">y</error>
    </testcase></testsuite>"""
    (case,) = parse_junit(xml)
    assert (case.outcome, case.message) == ("failed", "call failed")


@pytest.mark.parametrize(
    "text",
    ["", "not xml at all", "<testsuite><testcase name='a'>", "<html><body/></html>"],
)
def test_unreadable_reports_raise(text: str) -> None:
    with pytest.raises(JUnitError):
        parse_junit(text)


# --- TestReport -------------------------------------------------------------------------------


def _report(*cases: TestCase, exit_code: int | None = 1, **kw: object) -> TestReport:
    return TestReport("python", list(cases), exit_code, 1.0, **kw)  # type: ignore[arg-type]


def test_counts_and_green() -> None:
    ok = TestCase("t::a", "passed")
    report = _report(ok, TestCase("t::b", "skipped"), exit_code=0)
    assert (report.passed, report.skipped, report.failed, report.errors) == (1, 1, 0, 0)
    assert report.green
    assert not _report(ok, TestCase("t::c", "failed"), exit_code=1).green
    assert not _report(ok, TestCase("t::c", "error"), exit_code=1).green
    assert not _report(exit_code=5).green  # no tests
    assert not _report(TestCase("t::s", "skipped"), exit_code=0).green  # nothing passed
    assert not _report(ok, exit_code=0, timed_out=True).green
    broken = TestCase("tests/test_x.py", "error", "SyntaxError: invalid syntax")
    assert not _report(ok, exit_code=0, collection_errors=[broken]).green


def test_signature_ignores_noise_but_not_which_test_fails() -> None:
    def failing(test_id: str, where: str, address: str, took: str) -> TestReport:
        message = f"AssertionError: {where}/data.json at {address} took {took}, got 404"
        return _report(TestCase("t::ok", "passed"), TestCase(test_id, "failed", message))

    first = failing("t::a", "/tmp/pytest-of-me/pytest-3/test_a0", "0x7f39b9bba350", "0.31s")
    second = failing("t::a", "/tmp/pytest-of-me/pytest-9/test_a1", "0x7fabcdef0011", "12.5s")
    third = failing("t::b", "/tmp/pytest-of-me/pytest-3/test_a0", "0x7f39b9bba350", "0.31s")
    assert first.signature() == second.signature()
    assert first.signature() != third.signature()
    assert first.signature() != _report(TestCase("t::ok", "passed"), exit_code=0).signature()


def test_signature_tells_a_timeout_and_a_crash_apart() -> None:
    timed_out = _report(exit_code=None, timed_out=True)
    crashed = _report(exit_code=3, output_tail="INTERNALERROR> boom")
    assert timed_out.signature() != crashed.signature()


def test_normalise_message() -> None:
    assert normalise_message("at 0xDEADbeef in /tmp/x/y.py: 3 != 4 after 1.5s") == (
        "at <addr> in <tmp>: <n> != <n> after <dur>"
    )


def test_failure_summary_is_compact_and_bounded() -> None:
    cases = [TestCase("t::ok", "passed")] + [
        TestCase(f"t::fail_{i}", "failed", f"assert {i} == 0", "line\n" * 10) for i in range(50)
    ]
    broken = TestCase("tests/test_b.py", "error", "NameError: name 'x' is not defined")
    report = _report(*cases, collection_errors=[broken])
    summary = report.failure_summary(max_chars=1500)
    assert len(summary) <= 1500
    assert summary.startswith("1 passed, 50 failed, 0 errors, 0 skipped, 1 collection errors")
    assert "COLLECTION ERROR tests/test_b.py" in summary
    assert "FAILED t::fail_0\n  assert 0 == 0" in summary
    assert "more not passing" in summary
    assert "t::ok" not in summary


def test_failure_summary_without_cases_shows_the_output() -> None:
    report = _report(exit_code=5, output_tail="no tests ran in 0.01s")
    summary = report.failure_summary()
    assert "No test ran." in summary
    assert "no tests ran in 0.01s" in summary


def test_event_carries_counts_and_failing_ids() -> None:
    report = _report(TestCase("t::ok", "passed"), TestCase("t::bad", "failed", "boom"))
    event = report.event(phase="red")
    assert (event.phase, event.passed, event.failed, event.failures) == ("red", 1, 1, ["t::bad"])
    assert event.signature == report.signature()
