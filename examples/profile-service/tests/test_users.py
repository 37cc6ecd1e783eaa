"""The user API as a client sees it."""

import pytest
from fastapi import HTTPException

from app.dependencies import current_user
from app.repository import SEED_USERS, UserRepository


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_get_user_returns_the_user(client):
    response = client.get("/api/v1/users/7")
    assert response.status_code == 200
    assert response.json() == {
        "id": 7,
        "username": "linus",
        "email": "linus@example.com",
        "full_name": "Linus Torvalds",
        "join_date": "2020-01-31",
    }


def test_unknown_user_is_404(client):
    response = client.get("/api/v1/users/999")
    assert response.status_code == 404
    assert response.json()["detail"] == "User 999 not found"


def test_non_numeric_user_id_is_422(client):
    assert client.get("/api/v1/users/abc").status_code == 422


def test_default_repository_is_seeded():
    repo = UserRepository()
    assert [user.username for user in repo.all()] == [user.username for user in SEED_USERS]
    assert repo.get(1).full_name == "Ada Lovelace"


def test_current_user_comes_from_the_header(repo):
    assert current_user(repo, x_user_id=7).username == "linus"


@pytest.mark.parametrize("user_id", [None, 999])
def test_missing_or_unknown_current_user_is_401(repo, user_id):
    with pytest.raises(HTTPException) as excinfo:
        current_user(repo, x_user_id=user_id)
    assert excinfo.value.status_code == 401
