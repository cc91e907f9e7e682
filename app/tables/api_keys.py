from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class ApiKey(SQLModel, table=True):
    """An API key, kept only as its SHA-256 hash; `prefix` lets people tell keys apart without the secret."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=64)
    role: str = Field(max_length=16, description="predict | operator")
    key_hash: str = Field(max_length=64, unique=True, index=True, description="SHA-256 hex of the key")
    prefix: str = Field(max_length=8, index=True, description="first 8 characters of the key")
    created_ts: int = Field(sa_column=Column(BigInteger, nullable=False), description="UTC milliseconds")
    revoked: bool = False
