"""Table definitions of the store (SQLAlchemy Core); migrations create them, queries use them.

JSON lives in Text columns (dumped by the store) so the same schema works on SQLite and PostgreSQL.
Timestamps are epoch seconds (floats), the same clock as the events' `ts`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Named constraints so later migrations can alter them the same way on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# queued / cancelled: runs submitted to `council serve` wait in the queue (jobs) and can be
# cancelled there.
RUN_STATUSES = (
    "running",
    "green",
    "failed",
    "error",
    "stopped",
    "interrupted",
    "queued",
    "cancelled",
)
RUN_KINDS = ("run", "heal", "deploy", "doit")
STEP_STATUSES = ("started", "ok", "failed")

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("feature", Text, nullable=False),
    Column("repo", Text, nullable=False),
    Column("branch", Text),
    Column("worktree", Text),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("total_cost_usd", Float, nullable=False),
    Column("config", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("kind", String(16), nullable=False, server_default="run"),  # run | heal
    # The process executing the run: a "running" run whose process is gone was interrupted.
    Column("pid", Integer),
    Column("host", String(255)),
    Index("ix_runs_created_at", "created_at"),
)

_run_fk = ForeignKey("runs.id", ondelete="CASCADE")

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(64), _run_fk, primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("output", Text),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("step", String(200)),
    Column("payload", Text, nullable=False),
    UniqueConstraint("run_id", "seq", name="uq_events_run_id_seq"),
)

exchanges = Table(
    "exchanges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # the events.seq of the ModelCall it came from
    Column("ts", Float, nullable=False),
    Column("step", String(200)),
    Column("persona", String(64)),
    Column("alias", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("messages", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("error", Text),
    Index("ix_exchanges_run_id_seq", "run_id", "seq"),
)

commands = Table(
    "commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # the events.seq of the CommandRun it came from
    Column("ts", Float, nullable=False),
    Column("step", String(200)),
    Column("argv", Text, nullable=False),
    Column("cwd", Text, nullable=False),
    Column("exit_code", Integer),
    Column("duration_s", Float, nullable=False),
    Column("timed_out", Boolean, nullable=False),
    Column("output_tail", Text, nullable=False),
    Index("ix_commands_run_id_seq", "run_id", "seq"),
)

# A fix that turned an error signature green (recovery.memory): one row per distinct fix.
fixes = Table(
    "fixes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("signature", String(64), nullable=False),  # ErrorSignature.hash
    Column("tool", String(200), nullable=False),
    Column("error_type", String(200), nullable=False),
    Column("kind", String(40), nullable=False),  # a Recovery value, or "patch"
    Column("payload", Text, nullable=False),  # JSON: the diff, or the action and its facts
    Column("payload_hash", String(64), nullable=False),
    Column("success_count", Integer, nullable=False),
    Column("failure_count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=False),
    UniqueConstraint("signature", "payload_hash", name="uq_fixes_signature_payload_hash"),
    Index("ix_fixes_signature", "signature"),
)

# `council doit` (issue 14): the cloud operations' append-only audit trail (a hash chain: each
# entry's hash covers the previous one's, so an edited, removed or reordered entry shows), its
# anchor (how many entries were written and the last hash, so a truncated tail shows too),
# budget limits, and the estimated monthly spend each objective reserved, then committed.
audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("objective", String(64)),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_anchor = Table(
    "audit_anchor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("count", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
)

budget_limits = Table(
    "budget_limits",
    metadata,
    Column("scope", String(200), primary_key=True),  # monthly | daily | objective | rg:<name>
    Column("limit_usd", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

cloud_spend = Table(
    "cloud_spend",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("objective", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("resource_group", String(200)),
    Column("monthly_usd", Float, nullable=False),
    Column("description", Text, nullable=False),
    # reserved (counts until expires_at) | settled (committed spend) | released (counts nothing)
    Column("state", String(16), nullable=False, server_default="settled"),
    Column("expires_at", Float),
    Index("ix_cloud_spend_ts", "ts"),
    Index("ix_cloud_spend_objective", "objective"),
)

# --- `council serve` (queue/, server/) ------------------------------------------------------

# A run waiting for, or held by, a worker of the queue: one row per submitted run. The worker
# holding it renews `lease_until`; a lease that runs out (the worker died) puts it back in line.
jobs = Table(
    "jobs",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("repo_key", Text, nullable=False),  # one repository's runs go one at a time
    Column("options", Text, nullable=False),  # JSON: what the submitter asked for
    Column("status", String(16), nullable=False),  # queued | running | done | cancelled
    Column("attempts", Integer, nullable=False),
    Column("worker", String(255)),
    Column("lease_until", Float),
    Column("cancel_requested", Boolean, nullable=False),
    Column("key_id", String(64)),  # the API key that submitted it (None: the local CLI)
    Column("submitted_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Index("ix_jobs_status_submitted_at", "status", "submitted_at"),
)

# API keys of the server: only a hash of the secret is kept.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("repos", Text, nullable=False),  # JSON list: the repositories this key may use
    Column("rate_per_minute", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)
