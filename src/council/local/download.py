"""Fetch a GGUF file from the Hugging Face hub: resumable, checksummed, with progress.

The file grows as `<name>.part` next to its final place; an interrupted download continues
from there with an HTTP Range request. Only a file whose SHA-256 matches (the catalogue's pin,
else the hub's LFS checksum from the `X-Linked-Etag` header) is renamed into place, so a
half-written or tampered file is never loaded. `HF_ENDPOINT` points at a mirror, as it does for
huggingface_hub.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from council.errors import LocalModelError
from council.local.catalogue import LocalModelSpec

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")

# (bytes done, bytes total or 0 when unknown)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Remote:
    url: str
    size: int | None
    sha256: str | None


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def offline_hint(spec: LocalModelSpec, target: Path) -> str:
    return (
        f"Place {spec.filename} (from {endpoint()}/{spec.path_on_hub}) at {target}, "
        "or set COUNCIL_LOCAL_MODEL=/path/to/any.gguf, "
        "or configure a provider instead (export OPENAI_API_KEY=..., or "
        "`council init --provider openai|azure|anthropic|ollama|litellm-proxy`)."
    )


def hub_problem(spec: LocalModelSpec, timeout_s: float = 5.0) -> str | None:
    """Why `spec` cannot be downloaded right now (hub unreachable, file refused), or None.
    A quick HEAD: setup asks this before a long build that would be useless without a model."""
    url = f"{endpoint()}/{spec.path_on_hub}"
    try:
        with httpx.Client(headers=_headers(), timeout=timeout_s) as client:
            response = client.head(url, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{endpoint()} cannot be reached ({type(exc).__name__}: {exc})"
    if response.status_code >= 400:
        return f"{url} answered HTTP {response.status_code}"
    return None


def _headers() -> dict[str, str]:
    headers = {"User-Agent": "ai-council"}
    token = os.environ.get("HF_TOKEN")
    if token:  # gated mirrors; never logged
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _probe(client: httpx.Client, url: str) -> Remote:
    """HEAD without following the redirect: the hub puts the LFS checksum and size on it."""
    response = client.head(url, follow_redirects=False)
    if response.status_code in (401, 403, 404):
        raise LocalModelError(f"the hub answered {response.status_code} for {url}")
    etag = (response.headers.get("x-linked-etag") or response.headers.get("etag") or "").strip()
    etag = etag.removeprefix("W/").strip('"').lower()
    size = response.headers.get("x-linked-size") or (
        response.headers.get("content-length") if response.status_code == 200 else None
    )
    return Remote(
        url=url,
        size=int(size) if size and size.isdigit() else None,
        sha256=etag if _SHA256.fullmatch(etag) else None,
    )


def download(
    spec: LocalModelSpec,
    target: Path,
    *,
    progress: Progress | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Download `spec` to `target` (resuming a `.part`), verify it, and move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    url = f"{endpoint()}/{spec.path_on_hub}"
    try:
        with httpx.Client(headers=_headers(), timeout=timeout_s) as client:
            remote = _probe(client, url)
            expected = spec.sha256 or remote.sha256
            _fetch(client, url, part, remote.size or spec.size_bytes, progress)
    except httpx.HTTPError as exc:
        kept = f"\nThe partial download in {part} resumes next time." if part.exists() else ""
        raise LocalModelError(
            f"cannot download the local model {spec.name} from {endpoint()}: "
            f"{type(exc).__name__}: {exc}",
            hint=offline_hint(spec, target) + kept,
        ) from None
    if expected is None:
        part.unlink(missing_ok=True)
        raise LocalModelError(
            f"{url} gave no checksum to verify {spec.filename} against; refusing to use it",
            hint=offline_hint(spec, target),
        )
    actual = sha256_of(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise LocalModelError(
            f"checksum mismatch for {spec.filename}: expected sha256 {expected}, got {actual}; "
            "the download was deleted",
            hint="Run `council models pull` again; if it repeats, the mirror serves a bad file.",
        )
    (target.with_name(target.name + ".sha256")).write_text(actual + "\n", encoding="utf-8")
    os.replace(part, target)
    return target


def _fetch(
    client: httpx.Client, url: str, part: Path, size_hint: int, progress: Progress | None
) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
        if response.status_code == 416:  # we already hold the whole file
            return
        response.raise_for_status()
        if have and response.status_code != 206:
            have = 0  # the server ignored the Range: start again
        total = int(response.headers.get("content-length", 0) or 0) + have or size_hint
        with part.open("ab" if have else "wb") as handle:
            done = have
            if progress:
                progress(done, total)
            # As it arrives (not in fixed chunks): bytes received before a drop are kept.
            for block in response.iter_bytes():
                handle.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
