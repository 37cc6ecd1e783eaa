"""`council run`: the TDD flow, one module per step (plan, context, tests, iterate, gates,
review, deliver) on the shared run lifecycle (pipelines/lifecycle.py)."""

from council.pipelines.run.flow import TddFlow

__all__ = ["TddFlow"]
