"""Features of the latest stored candles, so a strategy can read the same numbers the models see."""

from __future__ import annotations

import math
from typing import Any, Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import PredictAuth
from app.api.docs import errors

router = APIRouter(tags=["features"])

_Timeframe = Literal["1m", "5m", "15m", "1h", "4h"]


@router.get(
    "/features/{symbol}",
    responses={
        200: {"content": {"application/json": {"example": {
            "symbol": "BTC-USDT", "timeframe": "1m", "features": ["rsi_14", "natr_14"],
            "rows": [{"ts": "2026-01-01T12:34:00Z", "rsi_14": 61.2, "natr_14": 0.11}],
        }}}},
        **errors(
            401, 404, 422,
            not_found="no candles stored for the symbol",
            invalid="unknown feature name (the message lists the known ones) or an invalid parameter",
        ),
    },
)
def latest_features(
    _role: PredictAuth,
    symbol: str = Path(pattern=r"^[A-Za-z0-9]{1,15}-[A-Za-z0-9]{1,15}$", examples=["BTC-USDT"]),
    names: str = Query(
        examples=["rsi_14,natr_14"], description="comma-separated feature names", max_length=2000
    ),
    timeframe: _Timeframe = "1m",
    bars: int = Query(default=1, ge=1, le=1000, description="how many of the newest candles"),
) -> dict[str, Any]:
    """The newest `bars` rows of the named features (TA-Lib, no look-ahead), as the models compute them."""
    from app.features import FeatureManager

    feature_list = [n.strip() for n in names.split(",") if n.strip()]
    frame = FeatureManager().get_features(symbol.upper(), timeframe, feature_list, lookback_bars=bars)
    rows = [
        {"ts": ts.isoformat().replace("+00:00", "Z"),
         **{name: (None if math.isnan(value) else float(value)) for name, value in row.items()}}
        for ts, row in frame.tail(bars).iterrows()
    ]
    return {"symbol": symbol.upper(), "timeframe": timeframe, "features": feature_list, "rows": rows}
