"""API keys of `council serve`: each names the repositories it may use and its request rate.

A key is shown once, when it is created (`ck_<id>_<secret>`); the store keeps only the SHA-256
of the secret (the secret is 32 random bytes, so a plain hash is as strong as a slow one).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from council.errors import UsageError
from council.store import Store, schema

PREFIX = "ck_"
DEFAULT_RATE_PER_MINUTE = 120


@dataclass
class ApiKey:
    id: str
    name: str
    repos: list[str]  # repository keys (paths, URLs) or fnmatch patterns of them
    rate_per_minute: int
    created_at: float
    revoked_at: float | None = None

    def allows(self, repo_key: str) -> bool:
        return any(r == repo_key or fnmatch.fnmatchcase(repo_key, r) for r in self.repos)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        repos=json.loads(row.repos),
        rate_per_minute=row.rate_per_minute,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class KeyStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self, name: str, repos: list[str], rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown once, never stored)."""
        if not name.strip():
            raise UsageError("a key needs a name")
        if not repos:
            raise UsageError("a key needs at least one repository (--repo PATH_OR_URL_OR_GLOB)")
        if rate_per_minute < 1:
            raise UsageError(f"the rate must be at least 1 request a minute, got {rate_per_minute}")
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=key_id,
            name=name.strip(),
            repos=list(dict.fromkeys(repos)),
            rate_per_minute=rate_per_minute,
            created_at=time.time(),
        )
        with self.store.write_transaction() as conn:
            conn.execute(
                schema.api_keys.insert().values(
                    id=key.id,
                    name=key.name,
                    secret_hash=_hash(secret),
                    repos=json.dumps(key.repos),
                    rate_per_minute=key.rate_per_minute,
                    created_at=key.created_at,
                )
            )
        return key, f"{PREFIX}{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        keys = schema.api_keys
        with self.store.read_connection() as conn:
            rows = conn.execute(select(keys).order_by(keys.c.created_at)).all()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        keys = schema.api_keys
        with self.store.write_transaction() as conn:
            done = conn.execute(
                keys.update()
                .where((keys.c.id == key_id) & keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = conn.execute(select(keys).where(keys.c.id == key_id)).first()
        if row is None:
            raise UsageError(f"no key {key_id!r} (see `council keys list`)")
        if done.rowcount == 0:
            raise UsageError(f"key {key_id} is revoked already")
        return _key(row)

    def any_active(self) -> bool:
        keys = schema.api_keys
        with self.store.read_connection() as conn:
            found = conn.execute(select(keys.c.id).where(keys.c.revoked_at.is_(None)).limit(1))
            return found.first() is not None

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key behind `token`, or None (unknown, malformed or revoked)."""
        if not token.startswith(PREFIX) or "_" not in token[len(PREFIX) :]:
            return None
        key_id, secret = token[len(PREFIX) :].split("_", 1)
        keys = schema.api_keys
        with self.store.read_connection() as conn:
            row = conn.execute(
                select(keys).where((keys.c.id == key_id) & keys.c.revoked_at.is_(None))
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        return _key(row)
