"""The contract every language toolchain meets, and picking one for a project.

Python is the first; Node and Java toolchains implement the same protocol and return the same
`TestReport` / `GateResult`, so pipelines never branch on the language.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from council.events import EventSink
from council.toolchains.gates import GateResult
from council.toolchains.report import TestReport


@runtime_checkable
class Toolchain(Protocol):
    """Detect, prepare, test and gate one language's projects."""

    language: str

    @staticmethod
    def detect(root: Path) -> bool: ...

    def prepare(self, root: Path, *, cache_dir: Path, emit: EventSink = ...) -> Any: ...

    def run_tests(
        self,
        root: Path,
        env: Any,
        *,
        paths: Sequence[str] = (),
        timeout_s: float = 300,
        emit: EventSink = ...,
    ) -> TestReport: ...

    def lint(
        self, root: Path, env: Any, *, paths: Sequence[str] = (), emit: EventSink = ...
    ) -> GateResult: ...

    def format_check(
        self, root: Path, env: Any, *, paths: Sequence[str] = (), emit: EventSink = ...
    ) -> GateResult: ...

    def sast(
        self, root: Path, env: Any, *, paths: Sequence[str] = (), emit: EventSink = ...
    ) -> GateResult: ...

    def is_test_file(self, path: str) -> bool: ...


def toolchain_classes() -> list[type]:
    """Known toolchains, most specific first (a Node project may hold a stray .py script)."""
    from council.toolchains.java import JavaToolchain
    from council.toolchains.node import NodeToolchain
    from council.toolchains.python import PythonToolchain

    return [JavaToolchain, NodeToolchain, PythonToolchain]


def detect_toolchains(root: Path) -> list[str]:
    """Languages whose toolchain recognises the project at `root`."""
    return [cls.language for cls in toolchain_classes() if cls.detect(root)]


def toolchain_for(language: str, **options: Any) -> Toolchain:
    for cls in toolchain_classes():
        if cls.language == language:
            return cls(**options)
    raise KeyError(f"no toolchain for language {language!r}")
