"""Persistence of runs, steps and the event stream (SQLite by default, any SQLAlchemy URL)."""

from council.store.records import (
    CommandRecord,
    ExchangeRecord,
    FixRecord,
    RunRecord,
    RunSummary,
    StepRecord,
    UsageTotals,
)
from council.store.store import Store

__all__ = [
    "CommandRecord",
    "ExchangeRecord",
    "FixRecord",
    "RunRecord",
    "RunSummary",
    "StepRecord",
    "Store",
    "UsageTotals",
]
