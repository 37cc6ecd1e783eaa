"""Fix memory: the recovery or patch that turned an error signature green, looked up first the
next time that signature appears (before any model call).

Persisted in the store's `fixes` table, so it survives the process and is shared by every run on
the repository. Payloads are redacted like everything else the store keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from council.recovery.signature import ErrorSignature
from council.store import FixRecord, Store

PATCH = "patch"  # kind of a remembered model patch; deterministic recoveries use Recovery values


@dataclass(frozen=True)
class Fix:
    """What turned a failure green: a recovery kind with its facts, or a unified diff."""

    kind: str
    payload: dict[str, Any]

    @classmethod
    def patch(cls, diff: str, **extra: Any) -> Fix:
        return cls(PATCH, {"diff": diff, **extra})

    @classmethod
    def action(cls, kind: str, **facts: Any) -> Fix:
        return cls(kind, dict(facts))


class FixMemory:
    """Remember fixes per signature hash; recall the best one for a signature."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, signature: ErrorSignature | str, fix: Fix) -> FixRecord:
        """Count a success of `fix` for `signature` (call once the gate went green with it)."""
        key, tool, error_type = _key(signature)
        return self.store.remember_fix(key, fix.kind, fix.payload, tool=tool, error_type=error_type)

    def lookup(self, signature: ErrorSignature | str) -> FixRecord | None:
        """The best remembered fix for the signature, or None: a miss means ask a model."""
        found = self.candidates(signature)
        usable = [f for f in found if f.success_count > f.failure_count]
        return usable[0] if usable else None

    def candidates(self, signature: ErrorSignature | str) -> list[FixRecord]:
        return self.store.fixes_for(_key(signature)[0])

    def failed(self, signature: ErrorSignature | str, fix: FixRecord) -> None:
        """A remembered fix did not work this time: it ranks lower, and stops being offered once
        it failed as often as it worked."""
        self.store.fix_failed(_key(signature)[0], fix.payload_hash)


def _key(signature: ErrorSignature | str) -> tuple[str, str, str]:
    if isinstance(signature, ErrorSignature):
        return signature.hash, signature.tool, signature.error_type
    return signature, "", ""
