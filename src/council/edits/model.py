"""Plain data passed between the edit parser, the applier and the pipelines that use them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

EditKind = Literal["whole", "search_replace", "udiff"]


@dataclass
class Hunk:
    """One @@ hunk of a unified diff: lines keep their ' ', '-' or '+' prefix."""

    lines: list[str] = field(default_factory=list)
    # Line number from the @@ header when the model gave one; a hint only, models get it wrong.
    old_start: int | None = None

    @property
    def before(self) -> list[str]:
        """The lines the hunk expects in the file (context and removed lines)."""
        return [line[1:] for line in self.lines if line[:1] in (" ", "-")]

    @property
    def after(self) -> list[str]:
        """The lines the hunk leaves in the file (context and added lines)."""
        return [line[1:] for line in self.lines if line[:1] in (" ", "+")]

    @property
    def changes(self) -> bool:
        return any(line[:1] in ("-", "+") for line in self.lines)


@dataclass
class FileEdit:
    """One edit to one file, in the form the model wrote it."""

    path: str
    kind: EditKind
    content: str | None = None  # whole: the full new content
    search: str | None = None  # search_replace: "" means create the file or append to it
    replace: str | None = None
    hunks: list[Hunk] | None = None  # udiff
    is_new_file: bool = False  # udiff from /dev/null
    is_delete: bool = False  # udiff to /dev/null


@dataclass
class EditPolicy:
    """What the applier may touch."""

    max_file_bytes: int = 2048 * 1024  # council.yaml `limits.max_file_kb`
    # relpath -> sha256 of the content when the file was frozen (accepted tests).
    frozen: Mapping[str, str] = field(default_factory=dict)
    forbidden_globs: Sequence[str] = ()  # extra paths nobody may touch
    # Set for the personas that write the code under test (Builder, Artisan): which paths are
    # tests. They may write no test file, new or old (a new conftest.py is a test file too), and
    # nothing the interpreter runs before the tests (`sitecustomize.py`, a `.pth` file).
    is_test_file: Callable[[str], bool] | None = None


@dataclass
class Refusal:
    """An edit the policy does not allow; nothing was written for it."""

    path: str
    reason: str


@dataclass
class Failure:
    """An allowed edit that could not be applied (text not found, ambiguous, I/O error)."""

    edit: FileEdit
    reason: str
    closest: str = ""  # the real lines nearest to what the model searched for, for the re-ask
    search: str = ""  # the text that did not match (SEARCH section, or a hunk's old lines)


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)  # relpaths written or deleted, in order
    refused: list[Refusal] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was refused or failed."""
        return not self.refused and not self.failed
