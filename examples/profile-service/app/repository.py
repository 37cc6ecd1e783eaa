"""Where users live: an in-memory repository seeded with demo users."""

from datetime import date

from app.models import User

SEED_USERS = [
    User(
        id=1,
        username="ada",
        email="ada@example.com",
        full_name="Ada Lovelace",
        join_date=date(2021, 3, 14),
    ),
    User(
        id=2,
        username="grace",
        email="grace@example.com",
        full_name="Grace Hopper",
        join_date=date(2022, 12, 9),
    ),
]


class UserRepository:
    """Users by id. Swap for a database-backed class with the same methods."""

    def __init__(self, users: list[User] | None = None) -> None:
        self._users = {user.id: user for user in (SEED_USERS if users is None else users)}

    def get(self, user_id: int) -> User | None:
        return self._users.get(user_id)

    def all(self) -> list[User]:
        return sorted(self._users.values(), key=lambda user: user.id)


_repository = UserRepository()


def get_repository() -> UserRepository:
    """FastAPI dependency; tests replace it through `app.dependency_overrides`."""
    return _repository
