"""apply_edits refuses paths outside the root, through symlinks, in .git, frozen or too big."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from council.edits import (
    EditPolicy,
    FileEdit,
    apply_edits,
    changed_frozen,
    feedback_for,
    freeze,
    parse_edits,
)


def _whole(path: str, content: str = "pwned\n") -> FileEdit:
    return FileEdit(path=path, kind="whole", content=content)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A repository root and a sibling folder that must never be written."""
    root = tmp_path / "repo"
    outside = tmp_path / "outside"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "app").mkdir()
    (root / "app" / "a.py").write_text("A = 1\n")
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    return root, outside


@pytest.mark.parametrize(
    ("path", "phrase"),
    [
        ("../outside/secret.txt", "outside the repository"),
        ("app/../../outside/secret.txt", "outside the repository"),
        ("..\\outside\\secret.txt", "outside the repository"),
        ("/etc/passwd", "absolute path"),
        ("C:\\Windows\\win.ini", "absolute path"),
        ("~/.bashrc", "absolute path"),
        (".git/config", ".git/"),
        ("app/.git/hooks/pre-commit", ".git/"),
        (".GIT/config", ".git/"),
        ("app/a\0.py", "NUL"),
        ("", "empty"),
        (".", "does not name a file"),
    ],
)
def test_unsafe_paths_are_refused(layout: tuple[Path, Path], path: str, phrase: str) -> None:
    root, outside = layout
    result = apply_edits(root, [_whole(path)], EditPolicy())
    assert result.applied == [] and result.failed == []
    (refusal,) = result.refused
    assert refusal.path == path
    assert phrase in refusal.reason
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert (root / ".git" / "config").read_text() == "[core]\n"


def test_dotdot_that_stays_inside_is_allowed(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    result = apply_edits(root, [_whole("app/../app/b.py", "B = 1\n")], EditPolicy())
    assert result.ok and result.applied == ["app/b.py"]
    assert (root / "app" / "b.py").read_text() == "B = 1\n"


def test_symlinked_folder_to_outside_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    os.symlink(outside, root / "linked")
    answer = (
        "**linked/secret.txt**\n```\npwned\n```\n\n"
        "linked/secret.txt\n```\n<<<<<<< SEARCH\nsecret\n=======\npwned\n>>>>>>> REPLACE\n```\n\n"
        "**linked/new.txt**\n```\npwned\n```\n"
    )
    result = apply_edits(root, parse_edits(answer), EditPolicy())
    assert len(result.refused) == 3 and result.applied == []
    assert all("symbolic link" in r.reason for r in result.refused)
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_symlinked_file_is_refused_even_inside_root(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    os.symlink(root / "app" / "a.py", root / "alias.py")
    result = apply_edits(root, [_whole("alias.py")], EditPolicy())
    assert "symbolic link" in result.refused[0].reason
    assert (root / "app" / "a.py").read_text() == "A = 1\n"
    assert os.path.islink(root / "alias.py")


def test_frozen_test_file_is_refused_with_a_reason_for_the_model(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    test_file = tmp_path / "tests" / "test_calc.py"
    test_file.write_text("def test_add():\n    assert add(1, 2) == 3\n")
    policy = EditPolicy(frozen=freeze(tmp_path, ["tests/test_calc.py"]))
    answer = (
        "tests/test_calc.py\n```python\n<<<<<<< SEARCH\n    assert add(1, 2) == 3\n=======\n"
        "    assert True\n>>>>>>> REPLACE\n```\n\n"
        "```diff\n--- a/tests/test_calc.py\n+++ /dev/null\n@@\n-def test_add():\n```\n\n"
        "**./tests/test_calc.py**\n```python\n```\n\n"
        "**app/calc.py**\n```python\ndef add(a, b):\n    return a + b\n```\n"
    )
    result = apply_edits(tmp_path, parse_edits(answer), policy)
    assert [r.path for r in result.refused] == [
        "tests/test_calc.py",
        "tests/test_calc.py",
        "tests/test_calc.py",
    ]
    reason = result.refused[0].reason
    assert "frozen test file" in reason and "must not be edited" in reason
    assert "Change the code" in reason
    assert result.applied == ["app/calc.py"]
    assert test_file.read_text() == "def test_add():\n    assert add(1, 2) == 3\n"
    assert changed_frozen(tmp_path, policy.frozen) == []
    assert "frozen test file" in feedback_for(result)


def test_changed_frozen_reports_tampering_and_deletion(tmp_path: Path) -> None:
    (tmp_path / "t1.py").write_text("a\n")
    (tmp_path / "t2.py").write_text("b\n")
    frozen = freeze(tmp_path, ["t1.py", "t2.py"])
    (tmp_path / "t1.py").write_text("changed\n")
    (tmp_path / "t2.py").unlink()
    assert changed_frozen(tmp_path, frozen) == ["t1.py", "t2.py"]


def test_oversize_whole_file_and_growth_past_the_limit_are_refused(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("x\n")
    policy = EditPolicy(max_file_bytes=100)
    edits = [
        _whole("big.txt", "y" * 101),
        FileEdit(path="small.txt", kind="search_replace", search="x\n", replace="z" * 200 + "\n"),
        _whole("ok.txt", "y" * 100),
    ]
    result = apply_edits(tmp_path, edits, policy)
    assert [r.path for r in result.refused] == ["big.txt", "small.txt"]
    assert "over the limit of 100 bytes" in result.refused[0].reason
    assert result.applied == ["ok.txt"]
    assert not (tmp_path / "big.txt").exists()
    assert (tmp_path / "small.txt").read_text() == "x\n"


def test_forbidden_globs(tmp_path: Path) -> None:
    policy = EditPolicy(forbidden_globs=["**/*.pem", ".github/workflows", "secrets/*"])
    edits = [
        _whole("certs/server.pem"),
        _whole("root.pem"),
        _whole(".github/workflows/ci.yml"),
        _whole("secrets/token.txt"),
        _whole("app/ok.py", "OK = 1\n"),
    ]
    result = apply_edits(tmp_path, edits, policy)
    assert [r.path for r in result.refused] == [
        "certs/server.pem",
        "root.pem",
        ".github/workflows/ci.yml",
        "secrets/token.txt",
    ]
    assert all("forbidden pattern" in r.reason for r in result.refused)
    assert result.applied == ["app/ok.py"]
    assert not (tmp_path / ".github").exists()


def test_refusals_do_not_stop_valid_edits_in_the_same_answer(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    answer = (
        "**../outside/secret.txt**\n```\npwned\n```\n\n"
        "app/a.py\n```python\n<<<<<<< SEARCH\nA = 1\n=======\nA = 2\n>>>>>>> REPLACE\n```\n"
    )
    result = apply_edits(root, parse_edits(answer), EditPolicy())
    assert result.applied == ["app/a.py"] and len(result.refused) == 1
    assert (root / "app" / "a.py").read_text() == "A = 2\n"
    assert (outside / "secret.txt").read_text() == "secret\n"
    message = feedback_for(result)
    assert "## Refused: `../outside/secret.txt`" in message
    assert "outside the repository" in message


def test_directory_target_is_a_failure(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    result = apply_edits(root, [_whole("app")], EditPolicy())
    assert "not a regular file" in result.failed[0].reason
    assert (root / "app").is_dir()
