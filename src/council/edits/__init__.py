"""Parse edits out of model answers and apply them safely inside a repository root.

`parse_edits` reads whole files, SEARCH/REPLACE blocks and unified diffs; `apply_edits` checks
every path against an `EditPolicy` and writes atomically; `feedback_for` words the re-ask.
"""

from council.edits.apply import apply_edits
from council.edits.feedback import feedback_for
from council.edits.model import (
    ApplyResult,
    EditKind,
    EditPolicy,
    Failure,
    FileEdit,
    Hunk,
    Refusal,
)
from council.edits.parse import parse_edits
from council.edits.validate import changed_frozen, freeze

__all__ = [
    "ApplyResult",
    "EditKind",
    "EditPolicy",
    "Failure",
    "FileEdit",
    "Hunk",
    "Refusal",
    "apply_edits",
    "changed_frozen",
    "feedback_for",
    "freeze",
    "parse_edits",
]
