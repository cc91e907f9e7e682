"""Features of the latest stored candles, so a strategy can read the same numbers the models see.

A request's cost is bounded before anything is read: the 1m candles it needs (its bars and the features'
warm-up, in 1m candles) may not exceed `FEATURES_MAX_1M_BARS` (422 naming the feature); one key may ask
`FEATURES_PER_KEY_PER_SECOND` a second (bursts of twice that; beyond, 429 with `Retry-After`); and at most
`FEATURES_MAX_CONCURRENCY` requests compute at once (others wait up to `FEATURES_WAIT_SECONDS`, then 503).
They compute in worker processes of their own, never in the API process: loading candles and computing
indicators holds the GIL in long stretches, which would stall every answer the event loop serves from
memory. So a flood of the largest allowed requests cannot starve predictions.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import threading
import time
import weakref
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request

from app.api.deps import PredictAuth
from app.api.docs import errors
from app.core.config import get_settings
from app.core.errors import BadInput, Unavailable

router = APIRouter(tags=["features"])

_Timeframe = Literal["1m", "5m", "15m", "1h", "4h"]
FEATURES_MAX_CONCURRENCY = 2
FEATURES_WAIT_SECONDS = 5.0
FEATURES_PER_KEY_PER_SECOND = 5.0
_buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time); only verified keys
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _check_cost(feature_list: list[str], timeframe: str, bars: int) -> None:
    from app.data.frames import TIMEFRAME_MS
    from app.features import get_feature, required_warmup

    limit = get_settings().features_max_1m_bars
    per_bar = TIMEFRAME_MS[timeframe] // TIMEFRAME_MS["1m"]
    needed = (bars + required_warmup(feature_list, timeframe)) * per_bar
    if needed <= limit:
        return
    worst = max(feature_list, key=lambda name: get_feature(name).warmup_for(timeframe))
    raise BadInput(
        f"names: {worst} on {timeframe} needs {get_feature(worst).warmup_for(timeframe)} bars of warm-up; "
        f"with bars={bars} that is {needed} 1m candles, over the {limit} one request may read "
        "(FEATURES_MAX_1M_BARS): use a shorter period, a lower timeframe or fewer bars"
    )


def _spend_token(request: Request) -> None:
    """A token bucket per API key (the request has passed authentication, so keys are bounded)."""
    key = request.headers.get("x-api-key") or request.headers.get("authorization") or ""
    rate, burst = FEATURES_PER_KEY_PER_SECOND, 2 * FEATURES_PER_KEY_PER_SECOND
    now = time.monotonic()
    tokens, last = _buckets.get(key, (burst, now))
    tokens = min(burst, tokens + (now - last) * rate)
    if tokens < 1.0:
        _buckets[key] = (tokens, now)
        wait = (1.0 - tokens) / rate
        raise HTTPException(
            429, detail=f"more than {rate:g} feature requests a second from this key; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    _buckets[key] = (tokens - 1.0, now)


def _compute(symbol: str, timeframe: str, feature_list: list[str], bars: int) -> dict[str, Any]:
    from app.features import FeatureManager

    frame = FeatureManager().get_features(symbol, timeframe, feature_list, lookback_bars=bars)
    rows = [
        {"ts": ts.isoformat().replace("+00:00", "Z"),
         **{name: (None if math.isnan(value) else float(value)) for name, value in row.items()}}
        for ts, row in frame.tail(bars).iterrows()
    ]
    return {"symbol": symbol, "timeframe": timeframe, "features": feature_list, "rows": rows}


_pool: Any = None
_pool_lock = threading.Lock()


def _workers() -> Any:
    """The processes features are computed in (spawned on first use; daemons, so they end with the API)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = multiprocessing.get_context("spawn").Pool(processes=FEATURES_MAX_CONCURRENCY)
        return _pool


def start_workers() -> None:
    """Spawn the feature processes now, off the request path (API start): the first request would
    otherwise wait for them to import the scientific stack, and the import would load the machine."""
    threading.Thread(target=lambda: _workers().map(_warm, range(FEATURES_MAX_CONCURRENCY)),
                     name="features-warm-up", daemon=True).start()


def _warm(_worker: int) -> None:
    import app.features.manager  # noqa: F401 - the imports a first computation would otherwise pay


def stop_workers() -> None:
    """Stop the feature processes at once (API shutdown: a computation stuck on the database is dropped)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.terminate()


async def _in_worker(*args: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()

    def settle(outcome: Any, failed: bool) -> None:
        if not done.done():
            (done.set_exception if failed else done.set_result)(outcome)

    _workers().apply_async(
        _compute, args,
        callback=lambda result: loop.call_soon_threadsafe(settle, result, False),
        error_callback=lambda exc: loop.call_soon_threadsafe(settle, exc, True),
    )
    return await done


def _get_limiter() -> asyncio.Semaphore:
    """One semaphore per event loop (an asyncio primitive belongs to the loop that first used it)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = asyncio.Semaphore(FEATURES_MAX_CONCURRENCY)
    return limiter


@router.get(
    "/features/{symbol}",
    responses={
        200: {"content": {"application/json": {"example": {
            "symbol": "BTC-USDT", "timeframe": "1m", "features": ["rsi_14", "natr_14"],
            "rows": [{"ts": "2026-01-01T12:34:00Z", "rsi_14": 61.2, "natr_14": 0.11}],
        }}}},
        **errors(
            401, 404, 422, 429, 503,
            not_found="no candles stored for the symbol",
            invalid="unknown feature name (the message lists the known ones), a period whose warm-up "
            "needs more than FEATURES_MAX_1M_BARS candles, or an invalid parameter",
            unavailable="too many feature requests at once, or the database does not answer",
        ),
    },
)
async def latest_features(
    request: Request,
    _role: PredictAuth,
    symbol: str = Path(pattern=r"^[A-Za-z0-9]{1,15}-[A-Za-z0-9]{1,15}$", examples=["BTC-USDT"]),
    names: str = Query(
        examples=["rsi_14,natr_14"], description="comma-separated feature names", max_length=2000
    ),
    timeframe: _Timeframe = "1m",
    bars: int = Query(default=1, ge=1, le=1000, description="how many of the newest candles"),
) -> dict[str, Any]:
    """The newest `bars` rows of the named features (TA-Lib, no look-ahead), as the models compute them."""
    from app.features.compute import feature_list_names

    feature_list = feature_list_names([n.strip() for n in names.split(",") if n.strip()])
    _check_cost(feature_list, timeframe, bars)
    _spend_token(request)
    limiter = _get_limiter()
    try:
        await asyncio.wait_for(limiter.acquire(), timeout=FEATURES_WAIT_SECONDS)
    except TimeoutError:
        raise Unavailable(
            f"{FEATURES_MAX_CONCURRENCY} feature requests are being computed; retry in a few seconds"
        ) from None
    try:
        return await _in_worker(symbol.upper(), timeframe, feature_list, bars)
    finally:
        limiter.release()
