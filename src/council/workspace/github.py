"""Publish a run's branch: push it with git and open a pull request through the GitHub REST API.

The token comes from the environment (GITHUB_TOKEN or GH_TOKEN). It reaches git only through
environment-borne config (never argv, so never `ps`) and is masked in every message and event.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from council.errors import UsageError, WorkspaceError
from council.events import CommandRun, EventSink, null_sink
from council.redact import redact
from council.workspace.git import git
from council.workspace.worktree import Workspace

DEFAULT_API_URL = "https://api.github.com"
TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")

_REMOTE_PATTERNS = [
    # https://[user[:pass]@]host[:port]/owner/repo[.git][/]
    re.compile(r"^https?://(?:[^@/]+@)?[^/]+/(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$"),
    # ssh://git@host[:port]/owner/repo[.git] and git://host/owner/repo
    re.compile(r"^(?:ssh|git)://(?:[^@/]+@)?[^/]+/(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$"),
    # scp-like: git@host:owner/repo[.git]
    re.compile(r"^(?:[^@/]+@)?[^:/]+:(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$"),
]


class GitHubError(WorkspaceError):
    """The GitHub API refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class PullRequest:
    number: int
    url: str
    created: bool = True  # False when an open PR for the branch already existed


def github_token(env: Mapping[str, str] | None = None) -> str:
    source = os.environ if env is None else env
    for name in TOKEN_VARS:
        if source.get(name):
            return source[name]
    raise UsageError(
        "no GitHub token: set GITHUB_TOKEN or GH_TOKEN to open a pull request",
        hint="A fine-grained token needs Contents and Pull requests: read and write.",
    )


def github_api_url(env: Mapping[str, str] | None = None) -> str:
    source = os.environ if env is None else env
    return (source.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def parse_remote(url: str) -> tuple[str, str]:
    """(owner, repo) from an https, ssh or scp-style GitHub remote URL."""
    url = url.strip()
    if not url.startswith(("/", ".", "file:")):
        for pattern in _REMOTE_PATTERNS:
            if match := pattern.match(url):
                return match["owner"], match["repo"]
    raise UsageError(f"{redact(url)} is not a GitHub remote (expected owner/repo in its URL)")


def remote_url(ws: Workspace, remote: str = "origin") -> str:
    done = git(ws.path, "remote", "get-url", remote, check=False)
    if done.returncode != 0:
        raise UsageError(f"the repository has no remote named {remote!r}")
    return done.stdout.strip()


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _auth_env(url: str, token: str | None) -> dict[str, str]:
    """Config passed through the environment, so the token is not in git's argv."""
    if not token or not url.startswith(("http://", "https://")):
        return {}
    basic = _basic(token)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def push_branch(
    ws: Workspace,
    remote: str = "origin",
    *,
    token: str | None = None,
    emit: EventSink = null_sink,
    timeout_s: float = 300,
) -> None:
    """Push the run's branch to `remote` and set it as upstream (never forced)."""
    url = remote_url(ws, remote)
    if token is None:
        token = next((os.environ[n] for n in TOKEN_VARS if os.environ.get(n)), None)
    auth = _auth_env(url, token)
    secrets = {"TOKEN": token or "", "AUTH_BASIC": _basic(token) if token else ""}
    args = ["-c", "core.hooksPath=/dev/null", "push", "--porcelain", "--set-upstream", remote]
    args.append(f"refs/heads/{ws.branch}:refs/heads/{ws.branch}")
    started = time.monotonic()
    done = git(ws.path, *args, check=False, extra_env=auth, timeout_s=timeout_s)
    output = redact((done.stdout + done.stderr).strip(), {**os.environ, **secrets})
    emit(
        CommandRun(
            argv=["git", *(redact(a, secrets) for a in args)],
            cwd=str(ws.path),
            exit_code=done.returncode,
            duration_s=round(time.monotonic() - started, 3),
            output_tail="\n".join(output.splitlines()[-40:]),
        )
    )
    if done.returncode != 0:
        raise WorkspaceError(
            f"git push of {ws.branch} to {remote} ({redact(url, secrets)}) failed: {output}"
        )


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(data, dict):
        return str(data)[:200]
    parts = [str(data.get("message", ""))]
    for err in data.get("errors") or []:
        if isinstance(err, dict):
            parts.append(err.get("message") or f"{err.get('field', '')} {err.get('code', '')}")
        else:
            parts.append(str(err))
    return "; ".join(p.strip() for p in parts if p and p.strip())


def _raise_for(response: httpx.Response, owner: str, repo: str, token: str) -> None:
    status = response.status_code
    detail = redact(_message(response), {"TOKEN": token})
    if status == 401:
        raise GitHubError(
            f"GitHub rejected the token (401: {detail})",
            status=status,
            hint="Set a valid GITHUB_TOKEN or GH_TOKEN.",
        )
    if status == 403:
        raise GitHubError(
            f"GitHub refused access to {owner}/{repo} (403: {detail})",
            status=status,
            hint="The token needs Pull requests: write on this repository (or wait out a rate "
            "limit).",
        )
    if status == 404:
        raise GitHubError(
            f"GitHub repository {owner}/{repo} not found (404), or the token cannot see it",
            status=status,
            hint="Check the remote and that GITHUB_TOKEN / GH_TOKEN has access to it.",
        )
    if status == 422:
        raise GitHubError(
            f"GitHub refused the pull request (422: {detail})",
            status=status,
            hint="Was the branch pushed, and does the base branch exist?",
        )
    raise GitHubError(f"GitHub API error {status}: {detail}", status=status)


def _already_exists(response: httpx.Response) -> bool:
    return response.status_code == 422 and "already exists" in _message(response).lower()


def create_pull_request(
    owner: str,
    repo: str,
    head: str,
    base: str,
    title: str,
    body: str,
    token: str,
    api_url: str | None = None,
    *,
    timeout_s: float = 30,
) -> PullRequest:
    """Open a PR from `head` into `base`; an already-open PR for the same head is returned."""
    api = (api_url or github_api_url()).rstrip("/")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "ai-council",
    }
    payload = {"title": title, "head": head, "base": base, "body": body}
    try:
        with httpx.Client(base_url=api, headers=headers, timeout=timeout_s) as client:
            response = client.post(f"/repos/{owner}/{repo}/pulls", json=payload)
            if response.status_code == 201:
                data = response.json()
                return PullRequest(number=int(data["number"]), url=str(data["html_url"]))
            if not _already_exists(response):
                _raise_for(response, owner, repo, token)
            qualified = head if ":" in head else f"{owner}:{head}"
            found = client.get(
                f"/repos/{owner}/{repo}/pulls",
                params={"head": qualified, "base": base, "state": "open"},
            )
            if found.status_code != 200:
                _raise_for(found, owner, repo, token)
            pulls = found.json()
            if not pulls:
                _raise_for(response, owner, repo, token)  # exists, yet not open for this base
            return PullRequest(
                number=int(pulls[0]["number"]), url=str(pulls[0]["html_url"]), created=False
            )
    except httpx.HTTPError as exc:
        raise GitHubError(f"cannot reach the GitHub API at {api}: {redact(str(exc))}") from exc


def open_pull_request(
    ws: Workspace,
    *,
    title: str,
    body: str,
    base: str,
    remote: str = "origin",
    repo_slug: str | None = None,
    token: str | None = None,
    api_url: str | None = None,
    emit: EventSink = null_sink,
) -> PullRequest:
    """Push the run's branch and open (or find) its PR; `repo_slug` ("owner/repo") overrides
    the owner and name read from the remote's URL."""
    token = token or github_token()
    if repo_slug:
        owner, _, name = repo_slug.partition("/")
        if not owner or not name:
            raise UsageError(f"{repo_slug!r} is not owner/repo")
    else:
        owner, name = parse_remote(remote_url(ws, remote))
    push_branch(ws, remote, token=token, emit=emit)
    return create_pull_request(owner, name, ws.branch, base, title, body, token, api_url)
