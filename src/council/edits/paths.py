"""Find the path a model meant: in a label line, in prose, a fence info string or a comment."""

from __future__ import annotations

import re

# Extensions we trust when a path is only mentioned in prose ("update `app/x.py` as follows").
LANG_EXTS: dict[str, frozenset[str]] = {
    "python": frozenset({"py", "pyi", "pyw"}),
    "py": frozenset({"py", "pyi", "pyw"}),
    "javascript": frozenset({"js", "mjs", "cjs", "jsx"}),
    "js": frozenset({"js", "mjs", "cjs", "jsx"}),
    "jsx": frozenset({"jsx", "js"}),
    "typescript": frozenset({"ts", "tsx", "mts", "cts"}),
    "ts": frozenset({"ts", "tsx", "mts", "cts"}),
    "tsx": frozenset({"tsx", "ts"}),
    "java": frozenset({"java"}),
    "kotlin": frozenset({"kt", "kts"}),
    "go": frozenset({"go"}),
    "rust": frozenset({"rs"}),
    "c": frozenset({"c", "h"}),
    "cpp": frozenset({"cpp", "cc", "cxx", "hpp", "hh", "h"}),
    "csharp": frozenset({"cs"}),
    "cs": frozenset({"cs"}),
    "ruby": frozenset({"rb"}),
    "php": frozenset({"php"}),
    "html": frozenset({"html", "htm"}),
    "css": frozenset({"css"}),
    "scss": frozenset({"scss"}),
    "json": frozenset({"json"}),
    "yaml": frozenset({"yaml", "yml"}),
    "yml": frozenset({"yaml", "yml"}),
    "toml": frozenset({"toml"}),
    "ini": frozenset({"ini", "cfg"}),
    "xml": frozenset({"xml"}),
    "sql": frozenset({"sql"}),
    "markdown": frozenset({"md", "markdown"}),
    "md": frozenset({"md", "markdown"}),
    "bicep": frozenset({"bicep"}),
    "terraform": frozenset({"tf", "tfvars"}),
    "hcl": frozenset({"tf", "hcl", "tfvars"}),
    "dockerfile": frozenset({"dockerfile"}),
    "bash": frozenset({"sh", "bash"}),
    "sh": frozenset({"sh", "bash"}),
    "shell": frozenset({"sh", "bash"}),
    "zsh": frozenset({"zsh", "sh"}),
    "powershell": frozenset({"ps1", "psm1"}),
    "text": frozenset({"txt"}),
    "console": frozenset(),
    "output": frozenset(),
    "terminal": frozenset(),
}
KNOWN_EXTS: frozenset[str] = frozenset().union(*LANG_EXTS.values()) | {
    "cfg",
    "env",
    "lock",
    "txt",
    "rst",
    "properties",
    "gradle",
    "csv",
    "svg",
    "vue",
    "svelte",
    "swift",
    "scala",
    "j2",
    "jinja",
}
EXTENSIONLESS = frozenset(
    {
        "makefile",
        "dockerfile",
        "procfile",
        "license",
        "readme",
        "gemfile",
        "rakefile",
        "jenkinsfile",
        "vagrantfile",
        "containerfile",
        "codeowners",
    }
)

_PATH_CHARS = re.compile(r"^[\w.\-/\\@+~]+$")
_EXT = re.compile(r"\.([A-Za-z][A-Za-z0-9_]{0,11})$")
_LABEL = re.compile(
    r"^(?:(?:new|updated|modified|complete|full|changed)\s+)?"
    r"(?:file\s*name|file|path|filepath|filename)\s*[:=]\s*",
    re.IGNORECASE,
)
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_SUFFIX_NOTE = re.compile(r"\s*[(\[][^)\]]*[)\]]\s*:?$")
_QUOTED = re.compile(r"`([^`\s]+)`|\*\*([^*\s]+)\*\*|\"([^\"\s]+)\"")
_INFO_KEY = re.compile(r"""(?:title|file|filename|path|name)\s*=\s*["']?([^"'\s}]+)""", re.I)
_COMMENT_LABEL = re.compile(
    r"^\s*(?:#|//|--|;|%|/\*|<!--)\s*"
    r"(?:(?:file\s*name|file|path|filepath|filename)\s*:\s*)?"
    r"(\S+?)\s*(?:\*/|-->)?\s*$",
    re.IGNORECASE,
)
_DECOR = "*_`'\" "


def clean_path(path: str) -> str:
    """Normalise separators and a leading ./ so the same file always gets the same key."""
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def extension(path: str) -> str:
    m = _EXT.search(path.rsplit("/", 1)[-1])
    return m.group(1).lower() if m else ""


def looks_like_path(token: str, *, strict: bool = False) -> bool:
    """True for `app/x.py`, `Makefile`, `.env`; with strict, bare names need a known extension."""
    if not token or "://" in token or not _PATH_CHARS.match(token):
        return False
    if token.strip("./\\") == "":
        return False
    name = token.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if not name or name.endswith("/"):
        return False
    if name.lower() in EXTENSIONLESS or (name.startswith(".") and len(name) > 1):
        return True
    ext = extension(name)
    if not ext:
        return "/" in token.replace("\\", "/") and not strict
    if strict:
        return ext in KNOWN_EXTS or "/" in token.replace("\\", "/")
    return True


def path_from_label(line: str) -> str | None:
    """The path when the whole line is a label for it: `app/x.py`, `**app/x.py**`, `# File: x`."""
    s = line.strip()
    if not s or len(s) > 300:
        return None
    previous = None
    while s != previous:
        previous = s
        s = _LIST_MARKER.sub("", s.lstrip("#").strip())
        s = s.strip(_DECOR).rstrip(":").strip(_DECOR)
        s = _LABEL.sub("", s)
        s = _SUFFIX_NOTE.sub("", s) if _SUFFIX_NOTE.search(s) and " " in s else s
    if " " in s:
        return None
    return clean_path(s) if looks_like_path(s) else None


def path_from_prose(line: str) -> str | None:
    """The first quoted path in a sentence ("Update `app/x.py` like this:")."""
    for groups in _QUOTED.findall(line):
        token = next(g for g in groups if g).rstrip(".,;:")
        if looks_like_path(token, strict=True):
            return clean_path(token)
    return None


def parse_info(info: str) -> tuple[str, str | None]:
    """Split a fence info string into (language, path): `python title="a.py"`, `py:a.py`, `a.py`."""
    info = info.strip()
    if not info:
        return "", None
    m = _INFO_KEY.search(info)
    tokens = info.split()
    first = tokens[0]
    if m and looks_like_path(m.group(1)):
        lang = first if not _INFO_KEY.match(first) else ""
        return lang.lower().strip("{"), clean_path(m.group(1))
    if ":" in first:
        lang, _, rest = first.partition(":")
        if looks_like_path(rest):
            return lang.lower(), clean_path(rest)
    for index, token in enumerate(tokens):
        named = "." in token or "/" in token
        if named and token.lower() not in LANG_EXTS and looks_like_path(token):
            lang = "" if index == 0 else first.lower()
            return lang, clean_path(token)
    return first.lower(), None


def path_from_comment(line: str) -> str | None:
    """The path when a fenced block starts with a label comment: `# app/x.py`, `// src/x.js`."""
    m = _COMMENT_LABEL.match(line)
    if not m:
        return None
    token = m.group(1)
    return clean_path(token) if looks_like_path(token, strict=True) else None


def lang_fits(lang: str, path: str) -> bool:
    """Whether a fence language plausibly holds this file (used only for paths found in prose)."""
    if not lang:
        return True
    exts = LANG_EXTS.get(lang)
    if exts is None:
        return True  # a language we do not know: trust the model
    ext = extension(path) or path.rsplit("/", 1)[-1].lower()
    return ext in exts
