"""Tests the code under test cannot beat: read-only during the run, compared and reverted after.

Code that a test imports runs with the worktree writable, so it could rewrite a frozen test,
delete it, or drop a conftest.py that skips everything, and the next run would go green. Every
test run goes through `TestGuard.watch()`:

- before: the worktree's state (a git tree of every tracked and untracked file, plus the list
  of ignored ones, so a new `.gitignore` cannot hide a planted file);
- during: the frozen tests and `.git` are bound read-only in the sandbox (`read_only`);
- after: the state again; whatever changed that no edit made is reverted and returned, and the
  caller fails that run with the message ("the code under test modified tests/x.py while the
  tests ran"). What test tools legitimately write (caches, build output, coverage) is no
  finding.

Parallel language tracks edit and test at the same time, so a watch compares only its own
track's folder (the only part of the worktree its sandbox can write) and leaves the others'
edits alone; the frozen tests of every track are checked by hash after every run, wherever
they live. At commit time `verify()` checks the frozen hashes once more.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from council.errors import CouncilError
from council.sandbox import read_only
from council.workspace.changes import scratch_index, tree_of
from council.workspace.git import git, out
from council.workspace.worktree import file_sha256

# Folders test tools write into (caches, build output, coverage): changes there are expected.
TOOL_DIRS = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        "node_modules",
        ".gradle",
        "target",
        "build",
        "dist",
        "coverage",
        ".nyc_output",
        "htmlcov",
    }
)
# A new file of these kinds can change what a test run does (a conftest.py, a config, a module
# that shadows another); a new log or data file cannot, and is left alone.
_INFLUENTIAL = frozenset(
    ".py .pth .pyc .js .cjs .mjs .ts .tsx .jsx .json .java .kt .class .jar .toml .ini .cfg .yaml"
    " .yml .xml .properties .gradle .kts .snap .sh".split()
)
_VERBS = {"M": "modified", "D": "deleted", "A": "added", "T": "modified"}


@dataclass
class Change:
    status: str  # M modified, D deleted, A added
    path: str  # relative to the worktree

    def __str__(self) -> str:
        return f"{_VERBS.get(self.status, 'changed')} {self.path}"


@dataclass
class Findings:
    """What one watched test run changed behind the edits' back (filled when the run ends)."""

    changes: list[Change] = field(default_factory=list)

    @property
    def message(self) -> str:
        if not self.changes:
            return ""
        what = ", ".join(str(c) for c in self.changes[:8])
        more = f" and {len(self.changes) - 8} more" if len(self.changes) > 8 else ""
        return (
            f"the code under test {what}{more} while the tests ran; council reverted it and "
            "counts the run as failed"
        )


def _tool_output(path: str) -> bool:
    parts = PurePosixPath(path.rstrip("/")).parts
    # A Python file is never tool output: pytest would collect a conftest.py in target/.
    return any(p in TOOL_DIRS for p in parts) and not path.endswith(".py")


def _matters(change: Change, tracked: set[str]) -> bool:
    if _tool_output(change.path):
        return False
    if change.path in tracked:
        return True  # a committed file changed or went away
    # Untracked: new code (Builder's, not yet committed) or a planted file matter; a log or
    # data file the tests write does not.
    name = PurePosixPath(change.path.rstrip("/")).name
    return (
        change.path.endswith("/")
        or name.startswith(".")
        or PurePosixPath(name).suffix in (_INFLUENTIAL)
    )


@dataclass(frozen=True)
class _State:
    tree: str
    ignored: frozenset[str]


class TestGuard:
    """Guards every test run in one worktree (see the module's docstring)."""

    __test__ = False  # not a pytest class

    def __init__(self, root: Path) -> None:
        self.root = root
        self.frozen: dict[str, str] = {}  # worktree-relative path -> sha256
        self._content: dict[str, bytes] = {}  # what the frozen files held, to put back

    def freeze(self, frozen: Mapping[str, str]) -> None:
        """From now on these test files (path -> sha256) are read-only and checked."""
        self.frozen = dict(frozen)
        self._content = {
            p: (self.root / p).read_bytes() for p in frozen if (self.root / p).is_file()
        }

    @contextmanager
    def watch(self, scope: str = "") -> Iterator[Findings]:
        """Run the block (a test run in the `scope` folder, "" for all) guarded; the Findings
        fill in when the block ends."""
        found = Findings()
        link = self._git_link()
        before = self._state(scope)
        protected = [self.root / p for p in self.frozen if (self.root / p).exists()]
        with read_only([*protected, self.root / ".git"]):
            yield found
        # First the worktree's link to its repository (a file): git needs it to look.
        if link is not None and self._git_link() != link:
            (self.root / ".git").unlink(missing_ok=True)
            (self.root / ".git").write_bytes(link)
            found.changes.append(Change("M", ".git"))
        found.changes += self._restore_frozen()
        self._drop_test_bytecode()
        if before is not None:
            after = self._state(scope)
            if after is not None and after != before:
                found.changes += self._revert(before, after, scope)

    def _restore_frozen(self) -> list[Change]:
        changes = []
        for rel in self.verify():
            rel = rel.removesuffix(" (deleted)")
            path = self.root / rel
            changes.append(Change("M" if path.exists() else "D", rel))
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self._content.get(rel, b""))
        return changes

    def _git_link(self) -> bytes | None:
        path = self.root / ".git"
        try:
            return path.read_bytes() if path.is_file() and not path.is_symlink() else None
        except OSError:
            return None

    def verify(self) -> list[str]:
        """Frozen test files whose content is not what was frozen ("path (deleted)" if gone)."""
        bad = []
        for rel, digest in sorted(self.frozen.items()):
            path = self.root / rel
            if not path.is_file():
                bad.append(f"{rel} (deleted)")
            elif file_sha256(path) != digest:
                bad.append(rel)
        return bad

    def _state(self, scope: str) -> _State | None:
        try:
            ignored = out(
                self.root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                "--directory", "--", scope or ".",
            )  # fmt: skip
            return _State(tree_of(self.root), frozenset(p for p in ignored.split("\0") if p))
        except CouncilError:
            return None  # not a git worktree (a scratch copy): the read-only binds still hold

    def _revert(self, before: _State, after: _State, scope: str) -> list[Change]:
        listed = out(
            self.root, "diff-tree", "-r", "--no-renames", "--name-status", "-z", before.tree,
            after.tree, "--", scope or ".",
        )  # fmt: skip
        fields = [f for f in listed.split("\0") if f]
        changes = [Change(fields[i][0], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]
        changes += [Change("A", p) for p in sorted(after.ignored - before.ignored)]
        tracked = set(out(self.root, "ls-files", "-z").split("\0"))
        changes = [c for c in changes if _matters(c, tracked)]
        restore = [c.path for c in changes if c.status != "A"]
        if restore:
            with scratch_index(self.root) as env:
                git(self.root, "read-tree", before.tree, extra_env=env)
                git(
                    self.root,
                    "checkout-index",
                    "-f",
                    "-z",
                    "--stdin",
                    extra_env=env,
                    input="\0".join(restore) + "\0",
                )
        for change in changes:
            if change.status == "A":
                target = self.root / change.path.rstrip("/")
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
                self._drop_empty_parents(target)
        return changes

    def _drop_empty_parents(self, path: Path) -> None:
        # A folder that held only planted files (a renamed copy of tests/) goes with them; git
        # keeps no empty folder, so none of these was part of the tree.
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                return  # not empty (or gone): stop
            parent = parent.parent

    def _drop_test_bytecode(self) -> None:
        # pytest keeps rewritten test modules as .pyc next to them and trusts their mtime and
        # size: a forged one would run instead of the frozen source next time.
        for folder in {(self.root / p).parent / "__pycache__" for p in self.frozen}:
            if folder.is_dir():
                for pyc in folder.glob("*-pytest-*.pyc"):
                    pyc.unlink(missing_ok=True)


_guards: dict[str, TestGuard] = {}
_guards_lock = threading.Lock()


def guard_for(worktree: Path) -> TestGuard:
    """The one guard of this worktree (created on first use)."""
    key = os.path.realpath(worktree)
    with _guards_lock:
        if key not in _guards:
            _guards[key] = TestGuard(Path(key))
        return _guards[key]
