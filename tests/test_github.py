"""Pushing a run's branch to a real (local bare) remote and opening PRs against a fake GitHub."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from council.errors import UsageError, WorkspaceError
from council.events import CommandRun
from council.workspace import commit_all, create_worktree, file_sha256
from council.workspace.github import (
    GitHubError,
    PullRequest,
    create_pull_request,
    github_api_url,
    github_token,
    open_pull_request,
    parse_remote,
    push_branch,
)
from tests.fakes.github_server import FakeGitHub

TOKEN = "ghp_" + "T" * 36  # shaped like a real token so redaction patterns would also see it


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    bare = tmp_path / "origin.git"
    sh(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(bare))
    return bare


@pytest.fixture
def repo(tmp_path: Path, origin: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    sh(path, "init", "--quiet", "-b", "main")
    sh(path, "config", "user.name", "Dev")
    sh(path, "config", "user.email", "dev@example.com")
    (path / "app.py").write_text("print('hi')\n")
    sh(path, "add", ".")
    sh(path, "commit", "--quiet", "-m", "init")
    sh(path, "remote", "add", "origin", str(origin))
    sh(path, "push", "--quiet", "origin", "main")
    return path


@pytest.fixture
def ws(repo: Path):
    ws = create_worktree(repo, "add greeting")
    (ws.path / "greet.py").write_text("def greet():\n    return 'hello'\n")
    commit_all(ws, "feat: greet")
    return ws


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/octo/demo.git",
        "https://github.com/octo/demo",
        "https://github.com/octo/demo/",
        "https://x-access-token:abc@github.com/octo/demo.git",
        "git@github.com:octo/demo.git",
        "git@github.com:octo/demo",
        "ssh://git@github.com/octo/demo.git",
        "ssh://git@github.com:22/octo/demo.git",
        "https://github.example.com/octo/demo.git",  # GitHub Enterprise
    ],
)
def test_parse_remote(url: str) -> None:
    assert parse_remote(url) == ("octo", "demo")


def test_parse_remote_keeps_dots_in_names() -> None:
    assert parse_remote("git@github.com:octo/my.site.git") == ("octo", "my.site")


@pytest.mark.parametrize("url", ["/srv/git/demo.git", "./demo", "file:///srv/demo.git", "demo"])
def test_parse_remote_rejects_non_github(url: str) -> None:
    with pytest.raises(UsageError, match="not a GitHub remote"):
        parse_remote(url)


def test_token_and_api_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="GITHUB_TOKEN or GH_TOKEN"):
        github_token()
    monkeypatch.setenv("GH_TOKEN", "from-gh")
    assert github_token() == "from-gh"
    monkeypatch.setenv("GITHUB_TOKEN", "from-github")
    assert github_token() == "from-github"
    assert github_api_url() == "https://api.github.com"
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9/api/v3/")
    assert github_api_url() == "http://127.0.0.1:9/api/v3"


def test_push_branch_to_a_bare_origin(ws, repo: Path, origin: Path) -> None:
    index_before = file_sha256(repo / ".git" / "index")
    status_before = sh(repo, "status", "--porcelain")
    events: list = []
    push_branch(ws, emit=events.append)
    assert sh(origin, "rev-parse", f"refs/heads/{ws.branch}") == sh(ws.path, "rev-parse", "HEAD")
    assert sh(ws.path, "rev-parse", "--abbrev-ref", "@{upstream}") == f"origin/{ws.branch}"
    # The user's checkout didn't move.
    assert sh(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert file_sha256(repo / ".git" / "index") == index_before
    assert sh(repo, "status", "--porcelain") == status_before
    runs = [e for e in events if isinstance(e, CommandRun)]
    assert len(runs) == 1 and runs[0].exit_code == 0 and "push" in runs[0].argv


def test_push_is_never_forced(ws, origin: Path, tmp_path: Path) -> None:
    push_branch(ws)
    # Someone else moves the remote branch; our push must be refused, not overwrite it.
    other = tmp_path / "other"
    sh(tmp_path, "clone", "--quiet", "--branch", ws.branch, str(origin), str(other))
    (other / "x.txt").write_text("theirs")
    sh(other, "add", ".")
    sh(other, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "--quiet", "-m", "theirs")
    sh(other, "push", "--quiet")
    theirs = sh(origin, "rev-parse", f"refs/heads/{ws.branch}")
    (ws.path / "y.txt").write_text("ours")
    commit_all(ws, "feat: ours")
    with pytest.raises(WorkspaceError, match="push"):
        push_branch(ws)
    assert sh(origin, "rev-parse", f"refs/heads/{ws.branch}") == theirs


def test_push_with_token_sends_it_to_git_but_never_logs_it(ws, repo: Path) -> None:
    with FakeGitHub(token=TOKEN) as gh:
        sh(repo, "remote", "add", "gh", f"{gh.url}/octo/demo.git")
        events: list = []
        with pytest.raises(WorkspaceError) as failure:
            push_branch(ws, "gh", token=TOKEN, emit=events.append)
        git_requests = [r for r in gh.requests if r.path.startswith("/octo/demo.git/")]
    # git did present the token (as GitHub expects for https pushes) ...
    expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert git_requests and git_requests[0].headers.get("Authorization") == expected
    # ... but it is nowhere in what we report.
    message = str(failure.value)
    assert TOKEN not in message and expected.split()[1] not in message
    for event in events:
        dumped = event.model_dump_json()
        assert TOKEN not in dumped and expected.split()[1] not in dumped
    # Not on git's command line either (visible to every user through `ps`).
    assert all(TOKEN not in a for e in events for a in e.argv)


def test_push_without_remote_is_a_clear_error(ws) -> None:
    with pytest.raises(UsageError, match="no remote named 'upstream'"):
        push_branch(ws, "upstream")


def test_create_pull_request(ws) -> None:
    with FakeGitHub(token=TOKEN) as gh:
        pr = create_pull_request(
            "octo", "demo", ws.branch, "main", "feat: greet", "Body", TOKEN, gh.url
        )
        assert pr == PullRequest(number=1, url="https://github.test/octo/demo/pull/1")
        (request,) = gh.api_requests()
    assert request.method == "POST" and request.path == "/repos/octo/demo/pulls"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.body == {
        "title": "feat: greet",
        "head": ws.branch,
        "base": "main",
        "body": "Body",
    }


def test_existing_pull_request_is_found_not_duplicated(ws) -> None:
    with FakeGitHub(token=TOKEN) as gh:
        first = create_pull_request("octo", "demo", ws.branch, "main", "t", "b", TOKEN, gh.url)
        again = create_pull_request("octo", "demo", ws.branch, "main", "t2", "b", TOKEN, gh.url)
        assert len(gh.pulls) == 1
        lookup = gh.api_requests()[-1]
    assert first.created and not again.created
    assert (again.number, again.url) == (first.number, first.url)
    assert lookup.method == "GET"
    assert lookup.query == {"head": f"octo:{ws.branch}", "base": "main", "state": "open"}


def test_api_url_defaults_to_environment(ws, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeGitHub(token=TOKEN) as gh:
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        pr = create_pull_request("octo", "demo", ws.branch, "main", "t", "b", TOKEN)
        assert pr.number == 1 and len(gh.api_requests()) == 1


@pytest.mark.parametrize(
    ("token", "name", "status", "words"),
    [
        ("wrong-token-123456", "demo", 401, "rejected the token"),
        ("read-only-token-1", "demo", 403, "refused access"),
        (TOKEN, "missing", 404, "not found"),
    ],
)
def test_api_errors_are_clear_and_never_echo_the_token(ws, token, name, status, words) -> None:
    with FakeGitHub(token=TOKEN, read_only_tokens=("read-only-token-1",)) as gh:
        with pytest.raises(GitHubError, match=words) as failure:
            create_pull_request("octo", name, ws.branch, "main", "t", "b", token, gh.url)
        assert gh.pulls == []
    assert failure.value.status == status
    assert token not in str(failure.value)
    assert "GITHUB_TOKEN" in str(failure.value) or status == 403


def test_pull_request_for_an_unpushed_branch_is_refused(ws, origin: Path) -> None:
    with FakeGitHub(token=TOKEN, repos={"octo/demo": origin}) as gh:
        with pytest.raises(GitHubError, match="422") as failure:
            create_pull_request("octo", "demo", ws.branch, "main", "t", "b", TOKEN, gh.url)
        assert "pushed" in str(failure.value)
        push_branch(ws)
        pr = create_pull_request("octo", "demo", ws.branch, "main", "t", "b", TOKEN, gh.url)
    assert pr.number == 1


def test_unreachable_api_is_a_clear_error(ws) -> None:
    with pytest.raises(GitHubError, match="cannot reach the GitHub API"):
        create_pull_request(
            "octo", "demo", ws.branch, "main", "t", "b", TOKEN, "http://127.0.0.1:9"
        )


def test_open_pull_request_pushes_then_opens(ws, origin: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with FakeGitHub(token=TOKEN, repos={"octo/demo": origin}) as gh:
        events: list = []
        pr = open_pull_request(
            ws,
            title="feat: greet",
            body="Adds greet()",
            base="main",
            repo_slug="octo/demo",
            api_url=gh.url,
            emit=events.append,
        )
        assert gh.pulls[0].head == f"octo:{ws.branch}" and gh.pulls[0].title == "feat: greet"
    assert pr.created and pr.number == 1
    assert sh(origin, "rev-parse", f"refs/heads/{ws.branch}") == sh(ws.path, "rev-parse", "HEAD")
    assert any(isinstance(e, CommandRun) for e in events)


def test_open_pull_request_needs_a_github_remote_and_token(ws, monkeypatch) -> None:
    with pytest.raises(UsageError, match="GITHUB_TOKEN"):
        open_pull_request(ws, title="t", body="b", base="main")
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    # origin is a local path: without repo_slug there is no owner/repo to address.
    with pytest.raises(UsageError, match="not a GitHub remote"):
        open_pull_request(ws, title="t", body="b", base="main")
