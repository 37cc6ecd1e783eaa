"""Why a cloud objective failed: the error's class and signature, what worked before for the
same signature (fix memory), Microsoft Learn documents, and DevOps's reading of them."""

from __future__ import annotations

import re
from typing import Any

from council.cloud.analysis import CloudFailureAnalysis
from council.cloud.failures import ADVICE
from council.cloud.intent import CloudIntent
from council.cloud.learn import LearnSearch

_CODE = re.compile(r"\b([A-Z][a-z]+(?:[A-Z][a-z]+)+)\b")  # Azure's error codes: CamelCase


def analyse_failure(flow: Any, intent: CloudIntent, failed: Any) -> dict[str, Any]:
    failure = failed.failure
    if failure is None:
        return {"category": "unavailable", "advice": failed.args[0]}
    memory = [
        f"strategy {fix.payload.get('strategy')} worked after this error "
        f"({fix.success_count} time(s))"
        for fix in flow.store.fixes_for(failure.signature)
    ]
    code = next(iter(_CODE.findall(failure.message)), failure.category)
    found = LearnSearch().search(f"Azure {code} {failure.category.replace('_', ' ')}")
    last = failed.attempts[-1] if failed.attempts else None
    answer: CloudFailureAnalysis = flow.ask(
        "devops",
        "doit_failure",
        CloudFailureAnalysis,
        request=flow.feature,
        strategy=last.strategy if last else "",
        action=intent.summary,
        category=failure.category,
        error=failure.message[-3000:],
        memory=memory,
        docs=[d.__dict__ for d in found.docs],
    )
    # Only documents that were really found may be cited.
    known = {d.url for d in found.docs}
    return {
        "category": failure.category,
        "signature": failure.signature,
        "advice": ADVICE.get(failure.category, ADVICE["unknown"]),
        "memory": memory,
        "docs": [d.__dict__ for d in found.docs],
        "docs_source": found.source,
        "cause": answer.cause,
        "fix": answer.fix,
        "retry_worth_it": answer.retry_worth_it,
        "cited": [url for url in answer.docs if url in known],
        "rolled_back": failure.rolled_back,
    }
