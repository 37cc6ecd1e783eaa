"""Read a GGUF file's header (with the `gguf` package) to check it and describe it.

Checking before llama.cpp loads the file turns a truncated or foreign file into a sentence
("not a GGUF file", "cut short: 40% of its tensor data is missing") instead of a crash deep in C.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.errors import LocalModelError

MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    size_bytes: int
    name: str
    architecture: str
    quantisation: str
    parameters: int
    context_length: int | None
    chat_template: bool


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception:  # noqa: BLE001 - an odd field type is not worth failing over
        return None


def _quantisation(file_type: Any) -> str:
    import gguf

    if file_type is None:
        return "unknown"
    try:
        name = gguf.LlamaFileType(int(file_type)).name
    except ValueError:
        return f"type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def read_info(path: Path) -> GGUFInfo:
    """Check `path` is a whole GGUF file and describe it; LocalModelError if it is not."""
    if not path.is_file():
        raise LocalModelError(f"model file not found: {path}")
    with path.open("rb") as handle:
        if handle.read(4) != MAGIC:
            raise LocalModelError(
                f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)",
                hint="Download a .gguf model (e.g. `council models pull`), not safetensors or a "
                "web page.",
            )
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # noqa: BLE001 - the reader raises bare errors on bad files
        raise LocalModelError(
            f"{path} is a corrupt or cut-short GGUF file ({exc})",
            hint="If it was downloaded, the download may have been cut: run `council models pull` "
            "again (a partial download resumes).",
        ) from None
    size = path.stat().st_size
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        missing = 100 * (end - size) / max(end, 1)
        raise LocalModelError(
            f"{path} is a cut-short GGUF file: {missing:.0f}% of its tensor data is missing "
            f"({size} of {end} bytes)",
            hint="The download was interrupted; run `council models pull` again to resume it.",
        )
    architecture = str(_field(reader, "general.architecture") or "unknown")
    context = _field(reader, f"{architecture}.context_length")
    return GGUFInfo(
        path=path,
        size_bytes=size,
        name=str(_field(reader, "general.name") or path.stem),
        architecture=architecture,
        quantisation=_quantisation(_field(reader, "general.file_type")),
        parameters=sum(int(t.n_elements) for t in reader.tensors),
        context_length=int(context) if context is not None else None,
        chat_template=_field(reader, "tokenizer.chat_template") is not None,
    )
