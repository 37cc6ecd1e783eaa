"""Data shapes the API serves."""

from datetime import date

from pydantic import BaseModel


class User(BaseModel):
    id: int
    username: str
    email: str
    full_name: str
    join_date: date
