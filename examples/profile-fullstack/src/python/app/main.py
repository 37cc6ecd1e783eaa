"""The profile API: users by id, and who is asking (the X-User-Id header stands in for auth)."""

from datetime import date
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, status
from pydantic import BaseModel


class User(BaseModel):
    id: int
    username: str
    email: str
    full_name: str
    join_date: date


USERS = {
    1: User(
        id=1,
        username="ada",
        email="ada@example.com",
        full_name="Ada Lovelace",
        join_date=date(2021, 3, 14),
    ),
}

app = FastAPI(title="Profile API")


def current_user(x_user_id: Annotated[int | None, Header()] = None) -> User:
    user = USERS.get(x_user_id) if x_user_id is not None else None
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Unknown or missing X-User-Id")
    return user


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
