"""The local models council knows how to fetch: where on the hub, how big, how much memory.

The default is Qwen2.5-Coder-1.5B-Instruct at Q4_K_M: an instruction-tuned code model whose
GGUF carries its own chat template, about 1.1 GB on disk and under 2 GB of memory with an 8k
context, fast enough on a 2-core laptop CPU (prompt processing is what dominates a council
call, and it scales with the parameter count). The 3B and 7B models write better code when the
machine has the memory and patience; `council models pull qwen2.5-coder-7b` fetches one.
"""

from __future__ import annotations

from dataclasses import dataclass

from council.errors import LocalModelError


@dataclass(frozen=True)
class LocalModelSpec:
    name: str  # what `council models pull NAME` and `council-local/NAME` use
    repo: str  # Hugging Face repository
    filename: str
    quantisation: str
    size_bytes: int  # approximate, for the progress bar before the server says
    memory_gb: float  # resident memory with the default 8k context
    revision: str = "main"
    sha256: str | None = None  # pinned checksum; else the hub's LFS checksum is checked

    @property
    def path_on_hub(self) -> str:
        return f"{self.repo}/resolve/{self.revision}/{self.filename}"


CATALOGUE: dict[str, LocalModelSpec] = {
    spec.name: spec
    for spec in (
        LocalModelSpec(
            name="qwen2.5-coder-1.5b",
            repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            quantisation="Q4_K_M",
            size_bytes=1_100_000_000,
            memory_gb=1.8,
        ),
        LocalModelSpec(
            name="qwen2.5-coder-3b",
            repo="Qwen/Qwen2.5-Coder-3B-Instruct-GGUF",
            filename="qwen2.5-coder-3b-instruct-q4_k_m.gguf",
            quantisation="Q4_K_M",
            size_bytes=2_100_000_000,
            memory_gb=3.0,
        ),
        LocalModelSpec(
            name="qwen2.5-coder-7b",
            repo="Qwen/Qwen2.5-Coder-7B-Instruct-GGUF",
            filename="qwen2.5-coder-7b-instruct-q4_k_m.gguf",
            quantisation="Q4_K_M",
            size_bytes=4_700_000_000,
            memory_gb=6.0,
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def spec_for(name: str | None) -> LocalModelSpec:
    key = name or DEFAULT_MODEL
    if key == "default":
        key = DEFAULT_MODEL
    try:
        return CATALOGUE[key]
    except KeyError:
        raise LocalModelError(
            f"unknown local model {key!r} (known: {', '.join(CATALOGUE)})",
            hint="Or set COUNCIL_LOCAL_MODEL=/path/to/model.gguf to use any GGUF file.",
        ) from None
