"""The FastAPI application: health check and user lookup."""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, status

from app.models import User
from app.repository import UserRepository, get_repository

app = FastAPI(title="Profile service", version="0.1.0")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/users/{user_id}", response_model=User)
def get_user(user_id: int, repo: Annotated[UserRepository, Depends(get_repository)]) -> User:
    user = repo.get(user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"User {user_id} not found")
    return user
