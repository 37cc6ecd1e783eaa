"""Write the message that tells a model which of its edits did not land, and why."""

from __future__ import annotations

import re

from council.edits.model import ApplyResult


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside `text`, so the block stays intact."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _block(text: str) -> str:
    fence = _fence(text)
    return f"{fence}\n{text.rstrip(chr(10))}\n{fence}"


def feedback_for(result: ApplyResult) -> str:
    """The re-ask message for a result; "" when everything applied."""
    if result.ok:
        return ""
    parts: list[str] = ["Some of your edits were not applied."]
    if result.applied:
        done = ", ".join(f"`{p}`" for p in result.applied)
        parts.append(f"These files were updated and already hold your changes: {done}.")
    for refusal in result.refused:
        parts.append(f"## Refused: `{refusal.path}`\n{refusal.reason}")
    for failure in result.failed:
        section = [f"## Failed: `{failure.edit.path}`", failure.reason.rstrip(".") + "."]
        if failure.search:
            section += ["This is the text you expected to find:", _block(failure.search)]
        if failure.closest:
            section += ["The closest real lines in the file are:", _block(failure.closest)]
        parts.append("\n".join(section))
    closing = (
        "Send new edits only for the parts that failed. A SEARCH section (or a diff's context "
        "and removed lines) must copy the current file exactly, including indentation, and "
        "match exactly one place."
    )
    if result.applied:
        closing += " Do not resend the edits that were applied."
    parts.append(closing)
    return "\n\n".join(parts)
