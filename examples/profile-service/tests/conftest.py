"""Fixtures: a test client on a fresh repository per test."""

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from app.main import app
from app.models import User
from app.repository import UserRepository, get_repository


@pytest.fixture
def repo() -> UserRepository:
    return UserRepository(
        [
            User(
                id=7,
                username="linus",
                email="linus@example.com",
                full_name="Linus Torvalds",
                join_date=date(2020, 1, 31),
            )
        ]
    )


@pytest.fixture
def client(repo: UserRepository) -> Iterator[TestClient]:
    app.dependency_overrides[get_repository] = lambda: repo
    with TestClient(app) as test_client:
        yield test_client
    app.dependency_overrides.clear()
