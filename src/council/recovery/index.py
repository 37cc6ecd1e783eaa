"""Which PyPI distribution provides an import name: the catalogue's table, else the package index.

`import dns` is not the `dns` project (an empty name on PyPI) but `dnspython`. The table in
catalogue.py knows the famous cases; for the rest the index is asked: for a few likely project
names (`dns`, `dnspython`, `python-dns`, ...) the JSON API gives the latest release's files, and
the top-level names a wheel installs (its `top_level.txt`, else the paths in its RECORD) say
whether it provides the import. Answers are cached on disk per project and version. The index
is `COUNCIL_PYPI_JSON` (a PyPI-style JSON API base, default PyPI's); with `COUNCIL_OFFLINE`,
`UV_OFFLINE` or `PIP_NO_INDEX` only an index on this machine (a loopback mirror) is asked.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from council.paths import cache_root

DEFAULT_INDEX = "https://pypi.org/pypi"
INDEX_ENV = "COUNCIL_PYPI_JSON"
MAX_WHEEL_BYTES = 30 * 1024 * 1024  # a wheel read only for its file list; bigger is skipped
TIMEOUT_S = 15.0
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Resolution:
    """The distribution for an import, and how it was found."""

    distribution: str
    source: str  # "table" | "index"
    version: str = ""  # the index's latest version, when the index was asked


def index_url() -> str:
    return (os.environ.get(INDEX_ENV) or DEFAULT_INDEX).rstrip("/")


def offline() -> bool:
    """No question goes to a remote index: COUNCIL_OFFLINE, UV_OFFLINE or PIP_NO_INDEX is set
    and the index is not on this machine (a local mirror on loopback is still asked)."""
    flags = ("COUNCIL_OFFLINE", "UV_OFFLINE", "PIP_NO_INDEX")
    if not any(os.environ.get(n, "").lower() in ("1", "true", "yes") for n in flags):
        return False
    host = httpx.URL(index_url()).host
    return host not in ("127.0.0.1", "localhost", "::1")


def candidate_projects(import_name: str) -> list[str]:
    """Project names that commonly provide `import_name`, most likely first."""
    top = import_name.split(".")[0]
    names = [top, f"{top}python", f"python-{top}", f"py{top}", f"{top}-python", f"{top}py"]
    if "_" in top:
        names.insert(1, top.replace("_", "-"))
    return list(dict.fromkeys(canonicalize_name(n) for n in names))


def resolve_import(
    import_name: str,
    table: dict[str, str],
    *,
    index: str | None = None,
    cache_dir: Path | None = None,
) -> Resolution | None:
    """The distribution that provides `import_name`: the table's, else the index's; None when
    neither knows (offline, or no likely project installs that top-level name)."""
    parts = import_name.split(".")
    for end in range(len(parts), 0, -1):
        known = table.get(".".join(parts[:end]))
        if known:
            return Resolution(known, "table")
    if offline():
        return None
    top = parts[0]
    for project in candidate_projects(top):
        found = project_top_levels(project, index=index, cache_dir=cache_dir)
        if found is not None and top in found[1]:
            return Resolution(found[2], "index", found[0])
    return None


def project_top_levels(
    project: str, *, index: str | None = None, cache_dir: Path | None = None
) -> tuple[str, set[str], str] | None:
    """(latest version, top-level import names, the project's own spelling) of a project on the
    index; None when it does not exist or has no wheel to read."""
    base = index or index_url()
    folder = (cache_dir or cache_root()) / "pypi-top-level"
    key = canonicalize_name(project)
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client:
            response = client.get(f"{base}/{key}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            data = response.json()
            info = data.get("info") or {}
            version, name = str(info.get("version") or ""), str(info.get("name") or key)
            cached = _cached(folder, key, version, base)
            if cached is not None:
                return version, cached, name
            wheel = _pick_wheel(data.get("urls") or [])
            if wheel is None:
                return None
            blob = client.get(wheel["url"])
            blob.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return None  # an unreachable or broken index answers nothing; the caller says so
    names = wheel_top_levels(blob.content)
    _store(folder, key, version, base, names)
    return version, names, name


def _pick_wheel(files: list[dict]) -> dict | None:
    wheels = []
    for item in files:
        filename = str(item.get("filename", ""))
        if item.get("packagetype") != "bdist_wheel" or not item.get("url"):
            continue
        if int(item.get("size") or 0) > MAX_WHEEL_BYTES:
            continue
        try:
            _, _, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        pure = any(t.abi == "none" and t.platform == "any" for t in tags)
        wheels.append((not pure, filename, item))
    return min(wheels, key=lambda w: (w[0], w[1]))[2] if wheels else None


def wheel_top_levels(data: bytes) -> set[str]:
    """The import names a wheel installs: its top_level.txt, else the first parts of its files."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return set()
    with archive:
        files = archive.namelist()
        listed = [f for f in files if f.endswith(".dist-info/top_level.txt")]
        if listed:
            text = archive.read(listed[0]).decode("utf-8", errors="replace")
            return {line.strip().split("/")[0] for line in text.splitlines() if line.strip()}
    names: set[str] = set()
    for file in files:
        first = PurePosixPath(file).parts[0]
        if first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        if len(PurePosixPath(file).parts) == 1:
            if first.endswith(".py"):
                names.add(first[:-3])
            elif ".cpython-" in first or first.endswith((".so", ".pyd")):
                names.add(first.split(".")[0])
        else:
            names.add(first)
    return {n for n in names if n.isidentifier()}


def _cache_file(folder: Path, key: str) -> Path:
    return folder / f"{key}.json"


def _cached(folder: Path, key: str, version: str, base: str) -> set[str] | None:
    try:
        doc = json.loads(_cache_file(folder, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = doc.get("format") == CACHE_FORMAT and doc.get("version") == version
    if not same or doc.get("index") != base:
        return None
    return set(doc.get("top_level") or [])


def _store(folder: Path, key: str, version: str, base: str, names: set[str]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"format": CACHE_FORMAT, "index": base, "version": version}
        doc["top_level"] = sorted(names)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, _cache_file(folder, key))
    except OSError:
        pass  # a cache that cannot be written only costs a download next time
