"""Profile service: a small FastAPI app serving users from an in-memory repository."""
