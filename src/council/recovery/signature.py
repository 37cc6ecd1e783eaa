"""Reduce a failed gate run to a stable `ErrorSignature`, so one failure is recognised every time.

Two runs of the same broken project differ in temp dirs, timings, pids, object addresses, line
numbers and the machine's home folder; the signature keeps only what names the failure: the tool,
the error type, the file it points at (relative, no line) and the message with the varying parts
replaced by placeholders. Its `hash` keys fix memory and no-progress detection.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from council.sandbox import CommandResult
from council.toolchains.gates import GateResult
from council.toolchains.report import TestReport

HASH_CHARS = 16
MESSAGE_CHARS = 300  # a long message is cut: its head says what it is, the rest is data


@dataclass(frozen=True)
class GateRun:
    """What one gate run left behind, whatever ran it: the input to signatures and the catalogue.

    `signal` is the signal that killed the command (None when it exited); `timed_out` means the
    runner killed it at its time limit.
    """

    gate: str
    exit_code: int | None
    output: str
    timed_out: bool = False
    signal: int | None = None
    duration_s: float = 0.0
    tool: str = ""  # the program (basename) when known; the gate name stands in otherwise

    @property
    def failed(self) -> bool:
        return self.timed_out or self.signal is not None or self.exit_code != 0


def gate_run(subject: Any, gate: str = "") -> GateRun:
    """Accept what the toolchains and the sandbox hand back and make it a `GateRun`.

    A `TestReport` keeps its failing tests' messages and tracebacks (the JUnit report has them,
    the output tail may not); a `GateResult` keeps its findings; plain text is a failed run with
    an unknown exit code.
    """
    if isinstance(subject, GateRun):
        return subject
    if isinstance(subject, CommandResult):
        # `python3.11` here is `python3` elsewhere: the version is the machine, not the failure.
        tool = PurePosixPath(subject.argv[0]).name if subject.argv else ""
        tool = re.sub(r"(?<=[A-Za-z])[\d.]+$", "", tool.removesuffix(".exe")) or tool
        return GateRun(
            gate or tool,
            subject.exit_code,
            subject.output,
            subject.timed_out,
            subject.signal,
            subject.duration_s,
            tool,
        )
    if isinstance(subject, TestReport):
        parts = []
        for case in subject.not_passing:
            parts.append(f"{case.outcome.upper()} {case.id}")
            parts += [text for text in (case.message, case.traceback, case.output) if text]
        parts.append(subject.output_tail)
        exit_code = None if subject.timed_out else subject.exit_code
        return GateRun(
            gate or "test",
            exit_code,
            "\n".join(parts),
            subject.timed_out,
            duration_s=subject.duration_s,
            tool={"python": "pytest"}.get(subject.language, subject.language),
        )
    if isinstance(subject, GateResult):
        lines = [finding.render() for finding in subject.findings]
        if subject.output_tail:
            lines.append(subject.output_tail)
        return GateRun(gate or subject.name, 0 if subject.passed else 1, "\n".join(lines))
    if isinstance(subject, str):
        return GateRun(gate or "command", None, subject)
    raise TypeError(f"cannot read a gate run from {type(subject).__name__}")


@dataclass(frozen=True)
class ErrorSignature:
    """What a failure is, without what merely differs between two runs of it."""

    tool: str
    error_type: str
    file: str
    message: str
    extra: tuple[str, ...] = field(default=(), compare=False)  # further distinct errors, shown only

    @property
    def hash(self) -> str:
        blob = "\x1f".join((self.tool, self.error_type, self.file, self.message))
        return hashlib.sha256(blob.encode()).hexdigest()[:HASH_CHARS]

    def render(self) -> str:
        where = f" in {self.file}" if self.file else ""
        return f"{self.tool}: {self.error_type}{where}: {self.message} [{self.hash}]"

    def to_dict(self) -> dict[str, str]:
        return {
            "tool": self.tool,
            "error_type": self.error_type,
            "file": self.file,
            "message": self.message,
            "hash": self.hash,
        }


# -- normalisation ---------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TEMP_DIR = tempfile.gettempdir()
_HOME = str(Path.home())

# Order matters: whole timestamps before their numbers, paths before the numbers inside them,
# addresses and hex ids before plain numbers. Numbers only match as whole words, so rule codes
# (F401, E501), identifiers (py311, utf8) and parametrised test ids keep their digits.
_NORMALISERS: list[tuple[re.Pattern[str], str]] = [
    # 2026-01-31T12:34:56.789Z, 2026-01-31 12:34:56,123 +0000
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|\s?[+-]\d{2}:?\d{2})?"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b\d{4}(?:0[1-9]|1[0-2])\d{2}[_-]?\d{6}\b"), "<time>"),  # 20260131_123456
    # Temp dirs on Linux, macOS and Windows; pytest's basetemp
    (re.compile(r"(?:/private)?/(?:tmp|var/folders|var/tmp|dev/shm)/[^\s'\":,)\]]*"), "<tmp>"),
    (re.compile(r"[A-Za-z]:\\[^\s'\"]*?\\Temp\\[^\s'\":,)\]]*", re.IGNORECASE), "<tmp>"),
    (re.compile(r"pytest-of-[^\s/]+/pytest-\d+/[^\s'\":,)\]]*"), "<tmp>"),
    # Other absolute paths: a machine's layout is not the failure; the file name is kept.
    (re.compile(r"(?<![\w.~])(?:/[\w.@+-]+)+/(?=[\w.@+-]+)"), "<path>/"),
    (re.compile(r"[A-Za-z]:\\(?:[^\\\s'\"]+\\)+(?=[^\\\s'\"]+)"), "<path>\\\\"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    # Hex ids (commit shas, object ids, container ids): long runs with at least one digit
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{10,}\b"), "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|sec|secs|seconds|min|minutes|m|h)\b"), "<dur>"),
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)*(?!\w|\.\d)"), "<n>"),
    (re.compile(r"[ \t]+"), " "),
]


def normalise(text: str, root: Path | str | None = None) -> str:
    """Replace what changes between two runs of one failure with placeholders.

    `root` (the project or worktree) is made relative first, so `/w/r-1/app/x.py` and
    `/w/r-2/app/x.py` both read `app/x.py`.
    """
    text = _ANSI.sub("", text)
    if root is not None:
        base = str(root).rstrip("/\\")
        if len(base) > 1:
            text = text.replace(base + "/", "").replace(base, ".")
    if len(_TEMP_DIR) > 4:
        text = text.replace(_TEMP_DIR, "/tmp")
    if len(_HOME) > 1:
        text = re.sub(re.escape(_HOME) + r"(?=/|\b)", "~", text)
    for pattern, replacement in _NORMALISERS:
        text = pattern.sub(replacement, text)
    return text.strip()


def stable_path(path: str, root: Path | str | None = None) -> str:
    """A file path as the same on every machine: relative to `root`, else the last two parts.

    Installed packages read `site-packages/<pkg>/...`; temp files read `<tmp>/<name>`.
    """
    posix = path.replace("\\", "/").strip()
    if not posix:
        return ""
    if root is not None:
        base = str(root).replace("\\", "/").rstrip("/") + "/"
        if posix.startswith(base):
            return posix[len(base) :]
    for marker in ("site-packages/", "dist-packages/", "node_modules/"):
        if marker in posix:
            return marker + posix.rsplit(marker, 1)[1]
    if not posix.startswith("/") and not re.match(r"^[A-Za-z]:/", posix):
        return posix.removeprefix("./")
    parts = [p for p in posix.split("/") if p]
    tmp = posix.startswith(("/tmp/", "/var/folders/", "/private/", "/var/tmp/")) or (
        len(_TEMP_DIR) > 4 and posix.startswith(_TEMP_DIR.replace("\\", "/") + "/")
    )
    return ("<tmp>/" + parts[-1]) if tmp else "/".join(parts[-2:])


# -- extraction ------------------------------------------------------------------------------

_EXC_LINE = re.compile(
    r"^(?:E\s+)?(?:Uncaught\s+)?"
    r"(?P<type>(?:[A-Za-z_][\w.$]*)?(?:Error|Exception|Exit|Interrupt|Failure|Failed))"
    r"(?:\s*\[(?P<code>[A-Z][A-Z0-9_]+)\])?"
    r"(?::\s*(?P<msg>.*))?$"
)
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+')
_PYTEST_LOC = re.compile(r"^(?P<file>[^\s:]+\.py):\d+: (?:in \S+|\w+)")
_JS_FRAME = re.compile(
    r"\(?(?P<file>(?:/|\.{1,2}/|[A-Za-z]:\\)[^\s():]+\.[cm]?[jt]sx?):\d+(?::\d+)?"
)
_JAVA_FRAME = re.compile(r"^\s*at [\w.$]+\((?P<file>\w+\.java):\d+\)")
_LINT_LINE = re.compile(
    r"^(?P<file>[^\s:]+):\d+(?::\d+)?: (?:\[\w+\] )?(?P<code>[A-Z]+\d+)\b ?(?P<msg>.*)$"
)
_GENERIC_ERROR = re.compile(r"^(?:error|fatal|ERROR|FATAL|Error)(?:\[[^\]]*\])?:?\s+(?P<msg>.+)$")
_NOISE = re.compile(
    r"^(?:=+|-+|_+|\s*\^+\s*|short test summary info|\d+ (?:passed|failed|error)|\[\.\.\. .*\])",
    re.IGNORECASE,
)


def _is_library(path: str) -> bool:
    return any(
        marker in path
        for marker in ("site-packages", "dist-packages", "node_modules", "<frozen", "/lib/python")
    ) or path.startswith(("node:", "internal/"))


def _own_frame(lines: list[str]) -> str:
    """The innermost frame in the project's own code (not a library, not the stdlib)."""
    found = ""
    for line in lines:
        for pattern in (_PY_FRAME, _PYTEST_LOC, _JAVA_FRAME):
            match = pattern.match(line)
            if match and not _is_library(match.group("file")):
                found = match.group("file")
        for match in _JS_FRAME.finditer(line):
            if not _is_library(match.group("file")):
                found = found or match.group("file")  # JS stacks list the innermost first
    return found


def _exception(lines: list[str]) -> tuple[str, str, int] | None:
    """(type, message, line index) of the error the output is about.

    Python prints the exception last, after its traceback; Node, Java and most tools print it
    first, before the stack. So: the last one after the last Python traceback, else the first.
    """
    start = 0
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            start = index
    python = start > 0 or (lines and lines[0].startswith("Traceback"))
    candidates = []
    for index in range(start, len(lines)):
        match = _EXC_LINE.match(lines[index].strip())
        if match:
            err_type = match.group("type")
            if match.group("code"):
                err_type = f"{err_type}[{match.group('code')}]"
            candidates.append((err_type, (match.group("msg") or "").strip(), index))
    if not candidates:
        return None
    return candidates[-1] if python else candidates[0]


def _last_meaningful_line(lines: list[str]) -> str:
    for line in reversed(lines):
        stripped = line.strip()
        if stripped and not _NOISE.match(stripped):
            return stripped
    return ""


def _exit_type(run: GateRun) -> str:
    if run.timed_out:
        return "timeout"
    if run.signal is not None:
        return f"signal {run.signal}"
    if run.exit_code is None:
        return "failed"
    return f"exit {run.exit_code}"


def signatures(
    subject: Any, *, gate: str = "", root: Path | str | None = None, limit: int = 20
) -> list[ErrorSignature]:
    """Every distinct failure in a gate run, most telling first (at most `limit`).

    A lint gate yields one per finding (rule code + file); a test report one per failing test;
    other output one for the error it ends in.
    """
    run = gate_run(subject, gate)
    tool = (run.tool or run.gate or "command").lower()
    if isinstance(subject, GateResult) and subject.findings:
        found = [
            ErrorSignature(
                tool,
                finding.code,
                stable_path(finding.file, root),
                _clip(normalise(finding.message, root)),
            )
            for finding in subject.findings
        ]
        return _unique(found)[:limit]
    if isinstance(subject, TestReport) and subject.not_passing and not subject.timed_out:
        found = []
        for case in subject.not_passing:
            text = "\n".join(p for p in (case.message, case.traceback) if p)
            case_run = GateRun(run.gate, run.exit_code, text, tool=run.tool)
            sig = _signature_of(case_run, tool, root)
            file = stable_path(case.file, root) if case.file else sig.file
            found.append(ErrorSignature(tool, sig.error_type, file, sig.message))
        return _unique(found)[:limit]
    return [_signature_of(run, tool, root)]


def signature(subject: Any, *, gate: str = "", root: Path | str | None = None) -> ErrorSignature:
    """The one signature of a failed gate run: its first failure, the others listed in `extra`.

    The hash covers the whole set of failures, so fixing one of three failing tests gives a new
    signature (progress) while the same three failing again give the same one.
    """
    found = signatures(subject, gate=gate, root=root)
    first = found[0]
    if len(found) == 1:
        return first
    rest = tuple(sorted({s.hash for s in found[1:]} - {first.hash}))
    return ErrorSignature(
        first.tool,
        first.error_type,
        first.file,
        first.message + f" (+{len(rest)} more: {','.join(rest)})",
        extra=tuple(s.render() for s in found[1:]),
    )


def _signature_of(run: GateRun, tool: str, root: Path | str | None) -> ErrorSignature:
    lines = _ANSI.sub("", run.output).splitlines()
    if run.timed_out:
        # Where it hung is in the output, but it varies with timing; the gate timing out is the
        # failure.
        return ErrorSignature(tool, "timeout", "", "timed out")
    exc = _exception(lines)
    if exc is not None:
        err_type, message, index = exc
        file = _own_frame(lines[: index + 1]) or _own_frame(lines)
        if err_type.endswith(("SyntaxError", "IndentationError", "TabError")):
            # The file with the bad syntax is the last `File "..."` line, even a library's.
            files = [m.group("file") for ln in lines if (m := _PY_FRAME.match(ln))]
            file = files[-1] if files else file
        return ErrorSignature(
            tool, err_type, stable_path(file, root), _clip(normalise(message, root))
        )
    for line in lines:
        lint = _LINT_LINE.match(line.strip())
        if lint:
            return ErrorSignature(
                tool,
                lint.group("code"),
                stable_path(lint.group("file"), root),
                _clip(normalise(lint.group("msg"), root)),
            )
    for line in lines:
        generic = _GENERIC_ERROR.match(line.strip())
        if generic:
            message = normalise(generic.group("msg"), root)
            return ErrorSignature(tool, _exit_type(run), "", _clip(message))
    message = normalise(_last_meaningful_line(lines), root)
    return ErrorSignature(tool, _exit_type(run), "", _clip(message))


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS]


def _unique(found: list[ErrorSignature]) -> list[ErrorSignature]:
    return list(dict.fromkeys(found))
