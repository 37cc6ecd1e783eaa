"""The known-error catalogue: well-known failures, how to recognise them and which recovery applies.

Each row is data: regexes over the output and/or exit codes, signals and the timed-out flag, a
classification, the recovery kind and whether that recovery is safe to run without a model.
Named groups in a row's patterns become the match's facts (the module, the port, the tool). The
rows cover seed 003's "Error Recovery Patterns" table and seed 001's failure types; a flaky test
is no pattern at all but a verdict from a re-run (`is_flaky`).
"""

from __future__ import annotations

import re
import signal
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from council.recovery.signature import GateRun, gate_run
from council.toolchains.gates import GateResult
from council.toolchains.report import TestReport


class Recovery(StrEnum):
    """What to do about a classified failure."""

    ADD_PYTHON_DEPENDENCY = "add_python_dependency"  # declare it; the toolchain installs it
    ADD_NPM_DEPENDENCY = "add_npm_dependency"
    FREE_PORT = "free_port"  # only a process council started; else report who holds it
    RETRY_LONGER = "retry_longer"  # once, with a longer time limit
    RETRY_MORE_MEMORY = "retry_more_memory"  # once, with a larger memory limit
    RETRY_BACKOFF = "retry_backoff"  # transient: the same command again, later
    RERUN = "rerun"  # flaky: re-run to confirm, never edit the test to hide it
    RUN_FORMATTER = "run_formatter"
    MODEL_PATCH = "model_patch"  # a model writes a diff, another reviews it
    REPORT = "report"  # nothing council may do: a person must act (credentials, installs)


@dataclass(frozen=True)
class Row:
    """One known error: how it shows, what it is, what to do."""

    id: str
    description: str
    classification: str
    recovery: Recovery
    safe_without_model: bool
    retriable: bool = False  # seed 001: worth the same command again (network, quota, ...)
    patterns: tuple[str, ...] = ()  # regexes over the output (multiline, case-sensitive)
    exit_codes: tuple[int, ...] = ()
    signals: tuple[int, ...] = ()
    timed_out: bool = False  # matches a run killed at its time limit
    confidence: float = 0.8  # of a pattern match; exit code alone counts for less
    excludes: tuple[str, ...] = ()  # a pattern here in the output vetoes the row
    hint: str = ""  # what a person should do when the recovery is REPORT
    compiled: tuple[re.Pattern[str], ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        flags = re.MULTILINE
        object.__setattr__(self, "compiled", tuple(re.compile(p, flags) for p in self.patterns))


@dataclass(frozen=True)
class Match:
    """A catalogue row that fits a failure, with what it found out."""

    row: Row
    facts: dict[str, str]
    confidence: float
    evidence: str = ""  # the output line that matched, for a human

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def recovery(self) -> Recovery:
        return self.row.recovery


# Import name -> distribution name, where they differ. Looked up by the full dotted name, then
# its parents (google.protobuf before google), so namespace packages resolve to the right one.
IMPORT_TO_DISTRIBUTION: dict[str, str] = {
    "yaml": "PyYAML",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "jwt": "PyJWT",
    "dotenv": "python-dotenv",
    "magic": "python-magic",
    "Crypto": "pycryptodome",
    "Cryptodome": "pycryptodomex",
    "google.protobuf": "protobuf",
    "attr": "attrs",
    "serial": "pyserial",
    "usb": "pyusb",
    "git": "GitPython",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "PyMuPDF",
    "OpenSSL": "pyOpenSSL",
    "jose": "python-jose",
    "multipart": "python-multipart",
    "slugify": "python-slugify",
    "Levenshtein": "python-Levenshtein",
    "MySQLdb": "mysqlclient",
    "psycopg2": "psycopg2-binary",
    "zmq": "pyzmq",
    "gi": "PyGObject",
    "wx": "wxPython",
    "win32api": "pywin32",
    "websocket": "websocket-client",
    "lxml": "lxml",
    "nacl": "PyNaCl",
    "markdown": "Markdown",
    "pkg_resources": "setuptools",
    "setuptools": "setuptools",
    "tomli_w": "tomli-w",
    "ruamel": "ruamel.yaml",
    "ruamel.yaml": "ruamel.yaml",
    "azure.identity": "azure-identity",
    "azure.storage.blob": "azure-storage-blob",
    "azure.keyvault.secrets": "azure-keyvault-secrets",
    "google.cloud.storage": "google-cloud-storage",
    "jinja2": "Jinja2",
    "flask_cors": "Flask-Cors",
    "flask_sqlalchemy": "Flask-SQLAlchemy",
}

_NODE_BUILTINS = frozenset(
    "assert async_hooks buffer child_process cluster console constants crypto dgram "
    "diagnostics_channel dns domain events fs http http2 https inspector module net os path "
    "perf_hooks process punycode querystring readline repl stream string_decoder sys timers tls "
    "trace_events tty url util v8 vm wasi worker_threads zlib test".split()
)
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][\w.~-]*/)?[a-z0-9][\w.~-]*$")
_PY_MODULE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")

_SIGKILL = int(signal.SIGKILL)

CATALOGUE: tuple[Row, ...] = (
    Row(
        "missing_python_module",
        "A Python import of a module that is not installed",
        "dependency",
        Recovery.ADD_PYTHON_DEPENDENCY,
        safe_without_model=True,
        patterns=(
            r"(?:ModuleNotFoundError|ImportError): No module named '(?P<module>[\w.]+)'",
            r"ImportError: No module named (?P<module>[\w.]+)\s*$",
        ),
        confidence=0.95,
    ),
    Row(
        "missing_project_module",
        "An import of the project's own (or the standard library's) module that does not exist",
        "missing_code",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        confidence=0.9,  # produced from missing_python_module when the module is not a package
    ),
    Row(
        "missing_npm_module",
        "A Node require/import of a package that is not installed",
        "dependency",
        Recovery.ADD_NPM_DEPENDENCY,
        safe_without_model=True,
        patterns=(
            r"Cannot find (?:module|package) '(?P<package>[^'./][^']*)'",
            r"Module not found: (?:Error: )?Can't resolve '(?P<package>[^'./][^']*)'",
        ),
        confidence=0.95,
    ),
    Row(
        "python_syntax_error",
        "Python source that does not parse",
        "syntax",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r'File "(?P<file>[^"]+)", line (?P<line>\d+)(?:[^\n]*\n){1,4}?\s*'
            r"(?:E\s+)?(?:SyntaxError|IndentationError|TabError): (?P<detail>.*)",
            r"^(?:E\s+)?(?P<type>SyntaxError|IndentationError|TabError): (?P<detail>.*)$",
            # ruff's finding for code that does not parse (the lint gate sees it first)
            r"^(?P<file>[^\s:]+\.pyi?):(?P<line>\d+): \[error\] invalid-syntax (?P<detail>.*)$",
        ),
        confidence=0.9,
    ),
    Row(
        "js_syntax_error",
        "JavaScript/TypeScript source that does not parse",
        "syntax",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"^(?P<file>/?[^\s:]+\.[cm]?[jt]sx?):(?P<line>\d+)\n(?:.*\n){0,4}?"
            r"SyntaxError: (?P<detail>.*)$",
            r"SyntaxError: (?P<detail>(?:Unexpected (?:token|identifier|end of input|string)|"
            r"missing \) after|Invalid or unexpected token|Cannot use import statement).*)$",
            r"error TS1\d{3}: (?P<detail>.*)$",
        ),
        confidence=0.9,
    ),
    # Compile errors, circular imports and pins nothing satisfies are never flaky: Builder is
    # asked at once, without a re-run of the same code first.
    Row(
        "java_compile_error",
        "Java source that does not compile (javac)",
        "compile",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"^(?P<file>[^\s:][^:\n]*\.java):(?P<line>\d+): error: (?P<detail>.*)$",
            r"^\[ERROR\]\s+(?P<file>\S+\.java):\[(?P<line>\d+)(?:,\d+)?\]\s+(?P<detail>.*)$",
        ),
        confidence=0.9,
    ),
    Row(
        "typescript_compile_error",
        "TypeScript that does not type-check (tsc)",
        "compile",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"^(?P<file>[^\s(:]+\.[cm]?tsx?)[(:](?P<line>\d+)[,:]\d+\)?:? "
            r"-? ?error (?P<code>TS[2-9]\d{3}): (?P<detail>.*)$",
            r"error (?P<code>TS[2-9]\d{3}): (?P<detail>.*)$",
        ),
        confidence=0.9,
    ),
    Row(
        "circular_import",
        "Two modules import each other (a circular import)",
        "missing_code",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"ImportError: cannot import name '(?P<name>[\w.]+)' from partially initialized "
            r"module '(?P<module>[\w.]+)'",
            r"partially initialized module '(?P<module>[\w.]+)'[^\n]*circular import",
            r"Warning: Accessing non-existent property '(?P<name>[^']+)' of module exports "
            r"inside circular dependency",
        ),
        confidence=0.95,
    ),
    Row(
        "unsatisfiable_pin",
        "A dependency pin no released version satisfies (or pins that conflict)",
        "dependency",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"No solution found when resolving (?:dependencies|`--with` dependencies)",
            r"Because (?:there is no version of |only )?(?P<package>[\w.-]+)[^\n]*"
            r"(?:cannot be used|we can conclude|is unsatisfiable)",
            r"Could not find a version that satisfies the requirement (?P<package>[\w.-]+)",
            r"ResolutionImpossible",
            r"npm (?:ERR!|error) code (?:ETARGET|ERESOLVE)",
            r"No matching version found for (?P<package>@?[\w./-]+)@",
        ),
        confidence=0.9,
    ),
    Row(
        "failing_assertion",
        "A test assertion failed: the code (or the test) is wrong",
        "test_failure",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"^(?:E\s+)?AssertionError\b(?P<detail>.*)$",
            r"^E\s+assert (?P<detail>.*)$",
            r"^FAILED (?P<test>\S+)",
            r"expect\(received\)\.(?P<detail>\w+)\(",
            r"(?:org\.opentest4j\.AssertionFailedError|java\.lang\.AssertionError|"
            r"junit\.framework\.AssertionFailedError|org\.junit\.ComparisonFailure)(?P<detail>.*)",
            r"^\s*AssertionError \[ERR_ASSERTION\]: (?P<detail>.*)$",
        ),
        confidence=0.7,
    ),
    Row(
        "port_in_use",
        "A server could not bind its port: another process holds it",
        "environment",
        Recovery.FREE_PORT,
        safe_without_model=True,
        patterns=(
            r"EADDRINUSE[^\n]*?:(?P<port>\d{1,5})\b",
            r"\(['\"][^'\"]*['\"], (?P<port>\d{1,5})\)[^\n]*[Aa]ddress already in use",
            r"[Pp]ort (?P<port>\d{1,5}) (?:is|was) already in use",
            r"[Aa]ddress already in use[^\n]*?(?:port |:)(?P<port>\d{1,5})\b",
            r"bind(?:\(\))?[^\n]*?:(?P<port>\d{1,5})[^\n]*[Aa]ddress already in use",
            r"EADDRINUSE",
            r"[Aa]ddress already in use",
        ),
        confidence=0.9,
    ),
    Row(
        "timeout",
        "The gate was killed at its time limit",
        "timeout",
        Recovery.RETRY_LONGER,
        safe_without_model=True,
        retriable=True,
        timed_out=True,
        confidence=1.0,
    ),
    Row(
        "killed_for_memory",
        "The process ran out of memory or was killed by the kernel (OOM killer, exit 137)",
        "resource",
        Recovery.RETRY_MORE_MEMORY,
        safe_without_model=True,
        retriable=True,
        patterns=(
            r"^(?:E\s+)?MemoryError\b",
            r"^Killed\s*$",
            r"JavaScript heap out of memory",
            r"java\.lang\.OutOfMemoryError",
            r"Cannot allocate memory",
            r"std::bad_alloc",
            r"\bOOMKilled\b",
            r"Out of memory: Killed process",
        ),
        exit_codes=(137,),
        signals=(_SIGKILL,),
        confidence=0.9,
    ),
    Row(
        "authentication_failed",
        "Credentials were missing, wrong or expired (401/403, failed login, ssh key refused)",
        "auth",
        Recovery.REPORT,
        safe_without_model=False,
        patterns=(
            r"\b(?:HTTP(?:/[\d.]+)?|status(?: code)?:?|error:?|returned)\s*(?P<status>401|403)\b",
            r"\b(?P<status>401) Unauthorized\b",
            r"\b(?P<status>403) Forbidden\b",
            r"[Aa]uthentication (?:failed|required|error)",
            r"[Pp]ermission denied \(publickey",
            r"could not read Username for",
            r"AADSTS\d+",
            r"Please run 'az login'",
            r"\b(?:InvalidAuthenticationToken|ExpiredAuthenticationToken|invalid_grant)\b",
        ),
        confidence=0.85,
        hint="Check the credentials (az login, a token in the environment, the ssh key).",
    ),
    Row(
        "missing_tool",
        "A command-line tool the gate runs is not installed",
        "tooling",
        Recovery.REPORT,
        safe_without_model=False,
        patterns=(
            r"\b(?:sh|bash|dash|ksh)(?:\[\d+\])?: (?:line \d+: |\d+: )?(?P<tool>[\w.+-]+): "
            r"(?:command )?not found\s*$",
            r"^(?:[\w/.-]*: )?(?:line \d+: )?(?P<tool>[\w.+-]+): command not found\s*$",
            r"zsh: command not found: (?P<tool>[\w.+-]+)",
            r"^command not found: (?P<tool>[\w.+/-]+)",
            r"spawn (?P<tool>[\w.+/-]+) ENOENT",
            r"execute_child[\s\S]{0,400}?FileNotFoundError: \[Errno 2\] No such file or "
            r"directory: '(?P<tool>[^'/]+)'",
            r"exec: \"(?P<tool>[\w.+-]+)\": executable file not found",
        ),
        exit_codes=(127,),
        confidence=0.9,
        hint="Install the tool on this machine (or the CI image), then run heal again.",
    ),
    Row(
        "bad_dockerfile_instruction",
        "A Dockerfile with an unknown instruction or a parse error",
        "config",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"[Dd]ockerfile parse error (?:on )?line (?P<line>\d+): unknown instruction: "
            r"(?P<instruction>\S+)",
            r"unknown instruction: (?P<instruction>\S+)",
            r"[Dd]ockerfile parse error[^\n]*?line (?P<line>\d+)",
            r"failed to solve: (?:failed to process )?[^\n]*[Dd]ockerfile[^\n]*",
        ),
        confidence=0.9,
    ),
    Row(
        "lint_findings",
        "The linter reported rule violations",
        "lint",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"^\s*(?P<file>[^\s:]+):(?P<line>\d+)(?::\d+)?: (?:\[\w+\] )?(?P<code>[A-Z]+\d+)\b",
        ),
        confidence=0.75,
    ),
    Row(
        "format_drift",
        "Files are not formatted the way the formatter wants",
        "format",
        Recovery.RUN_FORMATTER,
        safe_without_model=True,
        patterns=(
            r"^Would reformat: (?P<file>\S+)",
            r"would be reformatted",
            r"\[warn\] Code style issues found",
        ),
        confidence=0.85,
    ),
    # Seed 001's failure types. Retriable: network, quota, transient service errors.
    Row(
        "network_error",
        "The network failed: refused, unreachable, name not resolved",
        "network",
        Recovery.RETRY_BACKOFF,
        safe_without_model=True,
        retriable=True,
        patterns=(
            r"\bECONNREFUSED\b|\bECONNRESET\b|\bETIMEDOUT\b|\bENOTFOUND\b|\bEAI_AGAIN\b",
            r"Temporary failure in name resolution",
            r"Could not resolve host",
            r"Name or service not known",
            r"Connection (?:refused|reset by peer|timed out)",
            r"Network is unreachable",
        ),
        confidence=0.75,
    ),
    Row(
        "quota_exceeded",
        "A rate limit or quota was hit; it may clear",
        "quota",
        Recovery.RETRY_BACKOFF,
        safe_without_model=True,
        retriable=True,
        patterns=(
            r"\b429\b[^\n]*Too Many Requests|Too Many Requests",
            r"\bQuotaExceeded\b|[Qq]uota (?:exceeded|has been exceeded)",
            r"[Rr]ate limit(?:ed| exceeded)",
        ),
        confidence=0.8,
    ),
    Row(
        "transient_service_error",
        "The remote service failed for now (5xx, service unavailable)",
        "transient",
        Recovery.RETRY_BACKOFF,
        safe_without_model=True,
        retriable=True,
        patterns=(
            r"\b(?:502 Bad Gateway|503 Service Unavailable|504 Gateway Time-?out)\b",
            r"\b(?:ServiceUnavailable|InternalServerError|ServerBusy|RetryableError)\b",
        ),
        confidence=0.75,
    ),
    # Not retriable: a person or a patch must act.
    Row(
        "permission_denied",
        "The process may not read or write a file, or the identity lacks a role",
        "permission",
        Recovery.REPORT,
        safe_without_model=False,
        patterns=(
            r"PermissionError: \[Errno 13\] Permission denied: '(?P<path>[^']+)'",
            r"\bEACCES\b[^\n]*?'(?P<path>[^']+)'",
            r"\bAuthorizationFailed\b|does not have authorization to perform action",
        ),
        excludes=(r"Permission denied \(publickey",),
        confidence=0.8,
        hint="Check file permissions or the role assignments of the identity in use.",
    ),
    Row(
        "resource_conflict",
        "The resource already exists or is in a conflicting state",
        "conflict",
        Recovery.REPORT,
        safe_without_model=False,
        patterns=(
            r"\b(?:409 Conflict|ResourceExists|AlreadyExists|Conflict)\b: ?(?P<detail>.*)$",
            r"already exists",
        ),
        confidence=0.6,
    ),
    Row(
        "invalid_configuration",
        "A parameter or configuration value is invalid",
        "config",
        Recovery.MODEL_PATCH,
        safe_without_model=False,
        patterns=(
            r"\b(?:InvalidParameter|InvalidParameterValue|InvalidTemplate|"
            r"InvalidResourceName|SkuNotAvailable)\b",
            r"[Ii]nvalid (?:value|configuration|VM size|parameter)[^\n]*",
        ),
        confidence=0.6,
    ),
    Row(
        "flaky_test",
        "A test failed, then passed on a re-run of the same code: flaky, not broken",
        "flaky",
        Recovery.RERUN,
        safe_without_model=True,
        retriable=True,
        confidence=1.0,  # decided by `is_flaky`, never by a pattern
    ),
)

ROWS: dict[str, Row] = {row.id: row for row in CATALOGUE}


# -- classification --------------------------------------------------------------------------


def classify(subject: Any, *, root: Path | None = None) -> list[Match]:
    """The catalogue rows that fit a failed gate run, most confident first.

    `subject`: a GateRun, CommandResult, TestReport, GateResult or plain output text. With `root`
    (the project), a missing Python module that is the project's own code is told apart from a
    missing dependency.
    """
    run = gate_run(subject)
    if isinstance(subject, GateResult) and subject.passed:
        return []
    if isinstance(subject, TestReport) and subject.green:
        return []
    if not run.failed:
        return []
    text = run.output
    found: list[Match] = []
    for row in CATALOGUE:
        match = _match_row(row, run, text)
        if match is not None:
            found.append(_refine(match, root))
    found.sort(key=lambda m: -m.confidence)
    return _drop_shadowed(found)


def _match_row(row: Row, run: GateRun, text: str) -> Match | None:
    if any(re.search(p, text, re.MULTILINE) for p in row.excludes):
        return None
    if row.timed_out and run.timed_out:
        return Match(row, {}, row.confidence, "timed out")
    if row.id == "killed_for_memory" and run.timed_out:
        return None  # the runner's own SIGKILL at the deadline is not the kernel's OOM killer
    facts: dict[str, str] = {}
    evidence = ""
    for pattern in row.compiled:
        hit = pattern.search(text)
        if hit:
            facts = {k: v for k, v in hit.groupdict().items() if v is not None}
            evidence = _line_at(text, hit.start())
            break
    by_exit = (run.exit_code is not None and run.exit_code in row.exit_codes) or (
        run.signal is not None and run.signal in row.signals
    )
    if not evidence and not by_exit:
        return None
    if evidence and by_exit:
        confidence = round(min(1.0, row.confidence + 0.05), 2)
    elif evidence:
        confidence = row.confidence
    else:
        confidence = 0.6  # an exit code alone is a hint: 137 can also be a plain `kill -9`
        evidence = f"exit {run.exit_code}" if run.signal is None else f"signal {run.signal}"
    if row.id == "missing_tool" and "tool" not in facts and run.tool and by_exit:
        facts["tool"] = run.tool
    return Match(row, facts, confidence, evidence.strip())


def _refine(match: Match, root: Path | None) -> Match:
    """Row-specific facts: the distribution for a module, the package for an npm path, ..."""
    facts = dict(match.facts)
    if match.row.id == "missing_python_module":
        module = facts.get("module", "")
        facts["import_name"] = module.split(".")[0]
        origin = module_origin(module, root)
        if origin != "dependency":
            facts["origin"] = origin
            return Match(ROWS["missing_project_module"], facts, match.confidence, match.evidence)
        known = known_distribution(module)
        if known:
            facts["distribution"] = known  # else the recovery asks the package index
    elif match.row.id == "missing_npm_module":
        package = npm_package_name(facts.get("package", ""))
        if package is None:
            return Match(
                ROWS["missing_project_module"],
                {**facts, "origin": "node"},
                match.confidence,
                match.evidence,
            )
        facts["package"] = package
    elif match.row.id == "port_in_use" and "port" in facts:
        if not 0 < int(facts["port"]) < 65536:
            del facts["port"]
    return Match(match.row, facts, match.confidence, match.evidence)


def _drop_shadowed(found: list[Match]) -> list[Match]:
    """A specific explanation hides a generic one found in the same words (an ImportError in a
    collection error is not also a failing assertion; a port clash is not a network error)."""
    ids = {m.row.id for m in found}
    shadows = {
        "failing_assertion": {"missing_python_module", "missing_project_module",
                              "python_syntax_error", "js_syntax_error", "missing_npm_module",
                              "java_compile_error", "typescript_compile_error",
                              "circular_import"},
        "missing_python_module": {"circular_import"},
        "lint_findings": {"python_syntax_error", "typescript_compile_error"},
        "network_error": {"port_in_use", "unsatisfiable_pin"},
        "missing_npm_module": {"unsatisfiable_pin"},
        "python_syntax_error": {"js_syntax_error"},
        "permission_denied": {"authentication_failed"},
        "resource_conflict": {"port_in_use"},
        "invalid_configuration": {"bad_dockerfile_instruction"},
    }  # fmt: skip
    return [m for m in found if not (shadows.get(m.row.id, set()) & ids)]


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end != -1 else len(text)][:300]


# -- Python modules and npm packages ---------------------------------------------------------


def known_distribution(module: str) -> str | None:
    """The table's distribution for an import name (dotted, then its parents), if it has one."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        known = IMPORT_TO_DISTRIBUTION.get(".".join(parts[:end]))
        if known:
            return known
    return None


def distribution_for(module: str) -> str:
    """The PyPI distribution that provides an import name; the top-level name when unknown."""
    return known_distribution(module) or module.split(".")[0]


def module_origin(module: str, root: Path | None = None) -> str:
    """ "dependency" for a third-party module; "stdlib" or "project" when installing a package
    cannot be the fix (the project's own module is missing code, not a missing dependency)."""
    if not _PY_MODULE.match(module):
        return "invalid"
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return "stdlib"
    if top in ("tests", "test", "conftest") or top.startswith("test_"):
        return "project"
    if root is not None:
        for base in (root, root / "src"):
            if (base / top).is_dir() or (base / f"{top}.py").is_file():
                return "project"
    return "dependency"


def npm_package_name(specifier: str) -> str | None:
    """The package a require/import specifier names (`lodash/fp` -> `lodash`, `@a/b/c` ->
    `@a/b`); None for relative or absolute paths and Node built-ins."""
    spec = specifier.strip()
    if not spec or spec.startswith((".", "/", "node:", "file:")) or re.match(r"^[A-Za-z]:", spec):
        return None
    parts = spec.split("/")
    name = "/".join(parts[:2]) if spec.startswith("@") else parts[0]
    if name in _NODE_BUILTINS or not _NPM_NAME.match(name):
        return None
    return name


# -- flaky tests -----------------------------------------------------------------------------


def flaky_tests(first: TestReport, rerun: TestReport) -> list[str]:
    """Tests that did not pass in `first` but passed in `rerun` of the same code."""
    passed_again = {case.id for case in rerun.cases if case.outcome == "passed"}
    return [case.id for case in first.not_passing if case.id in passed_again]


def is_flaky(first: Any, rerun: Any) -> bool:
    """Whether a failure went away when the same code ran again (the caller re-ran it unchanged).

    TestReports: some test that failed first passed on the re-run (a test that keeps failing
    beside it is still a real failure, but the flip alone shows flakiness). Gate results or gate
    runs: failed, then passed. A timeout that passes on a re-run is flaky too.
    """
    if isinstance(first, TestReport) and isinstance(rerun, TestReport):
        if first.green:
            return False
        if rerun.green:
            return True
        return bool(flaky_tests(first, rerun))
    if isinstance(first, GateResult) and isinstance(rerun, GateResult):
        return not first.passed and rerun.passed
    a, b = gate_run(first), gate_run(rerun)
    return a.failed and not b.failed
