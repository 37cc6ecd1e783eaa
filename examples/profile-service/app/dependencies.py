"""Request-scoped dependencies: who the current user is.

There is no login yet: clients name themselves with the `X-User-Id` header (a demo stand-in for
a real auth token), and an unknown or missing id is a 401.
"""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, status

from app.models import User
from app.repository import UserRepository, get_repository


def current_user(
    repo: Annotated[UserRepository, Depends(get_repository)],
    x_user_id: Annotated[int | None, Header()] = None,
) -> User:
    user = repo.get(x_user_id) if x_user_id is not None else None
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Unknown or missing X-User-Id")
    return user
