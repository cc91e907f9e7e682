"""The feature registry: every feature by name, the name carrying its parameters (`rsi_14`, `returns_5`).

Each definition knows how to compute itself from OHLCV arrays (TA-Lib for the indicators), how many bars
of warm-up it needs before its value no longer depends on where the loaded window starts, and whether it
is scale-free (unchanged when prices or volumes are multiplied by a constant), which is what lets one model
serve several symbols (DESIGN 3).

`vwap` is anchored at 00:00 UTC each day on the typical price (high + low + close) / 3, so its value does
not depend on where the loaded window starts once the window covers the candle's day; its warm-up is one
day of bars (`FeatureDef.warmup_for(timeframe)`). Warm-ups of EMA/Wilder indicators are derived from
their smoothing factor (seed error decayed below SEED_DECAY) and checked by the tests against full history.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import talib

from app.core.errors import BadInput
from app.data.frames import OHLCV, TIMEFRAME_MS
from app.features.arrays import (
    DAY_MS,
    MACD_SIGNAL,
    MACD_SLOW,
    Bars,
    close_stats,
    htf_series,
    log_returns,
    macd,
    ratio,
    shift_ratio,
    sma,
    time_of_day,
    vwap,
    window_beta,
    window_percentile,
    window_std,
)

# Seed error of a recursive (EMA/Wilder) indicator must decay below this before a value counts as warm:
# far below the 1e-6 relative agreement promised, so values near a zero crossing agree too.
SEED_DECAY = 1e-10


@dataclass(frozen=True)
class FeatureDef:
    """One concrete feature.

    `warmup_bars`: a row with at least this many rows before it in the loaded window has the same value
    (to 1e-6 relative) as when computed from the full history. `day_warmup`: the value also needs the
    whole current UTC day (daily-anchored VWAP), i.e. one day of bars minus one, whatever the timeframe.
    """

    name: str
    compute: Callable[[Bars], np.ndarray]
    warmup_bars: int
    scale_free: bool
    description: str
    day_warmup: bool = False
    # Cross-asset features read other symbols' candles at the same times (`Bars.market`): "reference" the
    # reference market (REFERENCE_SYMBOL), "cross_section" every symbol of the model's call.
    market: str | None = None
    # Higher-timeframe features: (bars of `htf_ms` whose closes they need before the newest closed one,
    # that timeframe in ms); their warm-up in the frame's own bars follows from the frame's timeframe.
    htf: tuple[int, int] | None = None

    def warmup_for(self, timeframe: str = "1m") -> int:
        bar = TIMEFRAME_MS[timeframe]
        if self.htf is not None:
            bins, step = self.htf
            if step <= bar or step % bar:
                raise BadInput(f"feature {self.name!r} reads {step // 60_000}-minute bars: it needs a model "
                               f"timeframe shorter than that which divides it, not {timeframe}")
            # The newest closed bin ends at most one bin + one bar before the row; `bins` more before it.
            return (bins + 1) * (step // bar) - 1
        if not self.day_warmup:
            return self.warmup_bars
        return max(self.warmup_bars, DAY_MS // bar - 1)


def _decay_bars(alpha: float, stages: int = 1) -> int:
    """Bars for a seed error to shrink below SEED_DECAY under `stages` chained smoothings by (1 - alpha).

    One stage leaves (1 - alpha)^k of the seed error after k bars; feeding that into a second smoothing at
    the same rate leaves about k * (1 - alpha)^k.
    """
    k = math.ceil(math.log(SEED_DECAY) / math.log(1.0 - alpha))
    while k ** (stages - 1) * (1.0 - alpha) ** k >= SEED_DECAY:
        k += 1
    return k


def _wilder(n: int, stages: int = 1) -> int:
    return _decay_bars(1.0 / n, stages)


def _ema(n: int) -> int:
    return _decay_bars(2.0 / (n + 1))


# --- patterns ------------------------------------------------------------------------------------------
# Each pattern: (regex, display form, builder(name, *int params) -> FeatureDef).

Builder = Callable[..., FeatureDef]


def _raw(field: str) -> Builder:
    return lambda name: FeatureDef(
        name, lambda b: getattr(b, field), 0, False, f"the candle's {field}"
    )


def _returns(name: str, n: int = 1) -> FeatureDef:
    return FeatureDef(name, lambda b: shift_ratio(b.close, n) - 1.0, n, True, f"{n}-bar simple return")


def _log_ret(name: str, n: int = 1) -> FeatureDef:
    return FeatureDef(name, lambda b: log_returns(b, n), n, True, f"{n}-bar log return")


def _rsi(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: talib.RSI(b.close, n), n + _wilder(n), True, f"RSI({n}), 0..100")


def _atr(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: talib.ATR(b.high, b.low, b.close, n), n + _wilder(n), False,
        f"ATR({n}) in price units",
    )


def _natr(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: talib.NATR(b.high, b.low, b.close, n), n + _wilder(n), True,
        f"ATR({n}) / close * 100",
    )


def _adx(name: str, n: int) -> FeatureDef:
    # Two Wilder smoothings in a row (DM/TR, then DX): the second carries the first's seed error.
    return FeatureDef(
        name, lambda b: talib.ADX(b.high, b.low, b.close, n), 2 * n + _wilder(n, stages=2), True,
        f"ADX({n}), 0..100",
    )


_MACD_WARMUP = MACD_SLOW + MACD_SIGNAL + _ema(MACD_SLOW) + _ema(MACD_SIGNAL)


def _macd_part(part: int, pct: bool, text: str) -> Builder:
    def build(name: str) -> FeatureDef:
        def compute(b: Bars) -> np.ndarray:
            value = macd(b)[part]
            return ratio(value, b.close) if pct else value

        return FeatureDef(name, compute, _MACD_WARMUP, pct, text)

    return build


def _ema_feat(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: talib.EMA(b.close, n), n + _ema(n), False, f"EMA({n}) of close")


def _ema_dist(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: ratio(b.close, talib.EMA(b.close, n)) - 1.0, n + _ema(n), True,
        f"close / EMA({n}) - 1",
    )


def _sma_feat(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: sma(b, "close", n), n - 1, False, f"SMA({n}) of close")


def _sma_dist(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: ratio(b.close, sma(b, "close", n)) - 1.0, n - 1, True, f"close / SMA({n}) - 1"
    )


def _volume_sma(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: sma(b, "volume", n), n - 1, False, f"SMA({n}) of volume")


def _volume_ratio(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: ratio(b.volume, sma(b, "volume", n)), n - 1, True, f"volume / SMA({n}) of volume"
    )


def _bb_width(name: str, n: int) -> FeatureDef:
    # Bollinger bands (n, 2 std): (upper - lower) / middle = 4 * std / SMA.
    return FeatureDef(
        name, lambda b: ratio(4.0 * close_stats(b, n)[1], close_stats(b, n)[0]), n - 1, True,
        f"Bollinger band width ({n}, 2 std) / middle band",
    )


def _realized_vol(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        # Log returns have a mean near 0, so TA-Lib's running sums lose nothing here.
        name, lambda b: talib.STDDEV(log_returns(b, 1), n), n, True,
        f"population std of 1-bar log returns over {n} bars",
    )


def _zscore(name: str, n: int) -> FeatureDef:
    def compute(b: Bars) -> np.ndarray:
        mean, std = close_stats(b, n)
        # A flat window (std exactly 0) has close == mean: a z-score of 0, not a division by zero.
        return np.where(std == 0.0, 0.0, ratio(b.close - mean, std))

    return FeatureDef(name, compute, n - 1, True, f"(close - SMA({n})) / std({n})")


def _vwap_feat(name: str) -> FeatureDef:
    # See arrays.vwap: anchored at 00:00 UTC on the typical price, so it needs the whole current day.
    return FeatureDef(name, vwap, 0, False, "volume-weighted typical price since 00:00 UTC", True)


def _vwap_dist(name: str) -> FeatureDef:
    return FeatureDef(
        name, lambda b: ratio(b.close, vwap(b)) - 1.0, 0, True, "close / daily VWAP - 1", True
    )


def _hour(fn: Callable[[np.ndarray], np.ndarray], text: str) -> Builder:
    return lambda name: FeatureDef(name, lambda b: time_of_day(b, fn), 0, True, text)


def _range_pct(name: str) -> FeatureDef:
    return FeatureDef(name, lambda b: ratio(b.high - b.low, b.close), 0, True, "(high - low) / close")


# --- cross-asset, higher-timeframe and volatility-regime features (issue 9) -----------------------------

REFERENCE_SYMBOL = "BTC-USDT"  # the market the `btc_*` features read


def _ref_returns(b: Bars, n: int) -> np.ndarray:
    return b.memo(("ref_returns", n), lambda: shift_ratio(b.market_close(REFERENCE_SYMBOL), n) - 1.0)


def _ref_log_returns(b: Bars) -> np.ndarray:
    def calc() -> np.ndarray:
        close = b.market_close(REFERENCE_SYMBOL)
        out = np.full_like(close, np.nan)
        if len(close) > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[1:] = np.log(close[1:] / close[:-1])
        out[~np.isfinite(out)] = np.nan
        return out

    return b.memo(("ref_logret",), calc)


def _own_returns(b: Bars, n: int) -> np.ndarray:
    return b.memo(("own_returns", n), lambda: shift_ratio(b.close, n) - 1.0)


def _btc_returns(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: _ref_returns(b, n), n, True,
                      f"{REFERENCE_SYMBOL}'s {n}-bar return at the same bar", market="reference")


def _btc_lag(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: _ref_returns(b, n) - _own_returns(b, n), n, True,
        f"{REFERENCE_SYMBOL}'s {n}-bar return minus the symbol's (> 0: the symbol lags {REFERENCE_SYMBOL})",
        market="reference",
    )


def _beta(b: Bars, n: int) -> np.ndarray:
    return b.memo(("ref_beta", n), lambda: window_beta(log_returns(b, 1), _ref_log_returns(b), n))


def _btc_beta(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: _beta(b, n), n, True,
                      f"OLS beta of the symbol's 1-bar log returns on {REFERENCE_SYMBOL}'s over {n} bars",
                      market="reference")


def _btc_resid(name: str, n: int) -> FeatureDef:
    return FeatureDef(
        name, lambda b: log_returns(b, 1) - _beta(b, n) * _ref_log_returns(b), n, True,
        f"the bar's log return not explained by {REFERENCE_SYMBOL}'s (beta over {n} bars)",
        market="reference",
    )


def _xs_mean(b: Bars, n: int) -> np.ndarray:
    def calc() -> np.ndarray:
        if not b.market:
            raise BadInput("cross-sectional features need the candles of the model's symbols at the same "
                           "times (market=...)")
        returns = [shift_ratio(b.market_close(s), n) - 1.0 for s in sorted(b.market)]
        return np.mean(returns, axis=0)  # NaN when any symbol lacks a candle: never a mean over fewer

    return b.memo(("xs_mean", n), calc)


def _xs_mean_returns(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: _xs_mean(b, n), n, True,
                      f"equal-weight mean {n}-bar return over the model's symbols", market="cross_section")


def _xs_rel_returns(name: str, n: int) -> FeatureDef:
    return FeatureDef(name, lambda b: _own_returns(b, n) - _xs_mean(b, n), n, True,
                      f"the symbol's {n}-bar return minus the mean over the model's symbols",
                      market="cross_section")


def _tf_ms(name: str, tf: str) -> int:
    if tf not in TIMEFRAME_MS or tf == "1m":
        raise _unknown(name, f"timeframe {tf!r} must be one of {[t for t in TIMEFRAME_MS if t != '1m']} in")
    return TIMEFRAME_MS[tf]


def _htf_returns(name: str, tf: str, n: int = 1) -> FeatureDef:
    step = _tf_ms(name, tf)
    return FeatureDef(
        name, lambda b: htf_series(b, step, lambda c: shift_ratio(c, n) - 1.0), 0, True,
        f"return over the last {n} closed {tf} bar(s)", htf=(n, step),
    )


def _htf_rsi(name: str, n: int, tf: str) -> FeatureDef:
    step = _tf_ms(name, tf)
    return FeatureDef(
        name, lambda b: htf_series(b, step, lambda c: talib.RSI(c, n)), 0, True,
        f"RSI({n}) of closed {tf} bars", htf=(n + _wilder(n), step),
    )


def _vol_ratio(name: str, short: int, long: int) -> FeatureDef:
    if short >= long:
        raise _unknown(name, "the short window must be shorter than the long one in")

    def compute(b: Bars) -> np.ndarray:
        return ratio(window_std(log_returns(b, 1), short), window_std(log_returns(b, 1), long))

    return FeatureDef(name, compute, long, True,
                      f"realized vol over {short} bars / over {long} bars (> 1: volatility rising)")


def _vol_pct(name: str, n: int, window: int) -> FeatureDef:
    def compute(b: Bars) -> np.ndarray:
        vol = b.memo(("wstd", n), lambda: window_std(log_returns(b, 1), n))
        return window_percentile(vol, window)

    return FeatureDef(name, compute, n + window - 1, True,
                      f"share of the last {window} bars whose {n}-bar realized vol is at most the current")


_PATTERNS: list[tuple[str, str, Builder]] = [
    *[(f, f, _raw(f)) for f in OHLCV],
    ("returns", "returns", _returns),
    (r"returns_(\d+)", "returns_<n>", _returns),
    ("log_returns", "log_returns", _log_ret),
    (r"log_returns_(\d+)", "log_returns_<n>", _log_ret),
    (r"rsi_(\d+)", "rsi_<n>", _rsi),
    (r"atr_(\d+)", "atr_<n>", _atr),
    (r"natr_(\d+)", "natr_<n>", _natr),
    (r"adx_(\d+)", "adx_<n>", _adx),
    ("macd", "macd", _macd_part(0, False, "MACD line (12, 26) in price units")),
    ("macd_signal", "macd_signal", _macd_part(1, False, "MACD signal line (9) in price units")),
    ("macd_histogram", "macd_histogram", _macd_part(2, False, "MACD histogram in price units")),
    ("macd_pct", "macd_pct", _macd_part(0, True, "MACD line / close")),
    ("macd_histogram_pct", "macd_histogram_pct", _macd_part(2, True, "MACD histogram / close")),
    (r"ema_(\d+)", "ema_<n>", _ema_feat),
    (r"ema_dist_(\d+)", "ema_dist_<n>", _ema_dist),
    (r"sma_(\d+)", "sma_<n>", _sma_feat),
    (r"sma_dist_(\d+)", "sma_dist_<n>", _sma_dist),
    (r"volume_sma_(\d+)", "volume_sma_<n>", _volume_sma),
    (r"volume_ratio_(\d+)", "volume_ratio_<n>", _volume_ratio),
    (r"bb_width_(\d+)", "bb_width_<n>", _bb_width),
    (r"realized_vol_(\d+)", "realized_vol_<n>", _realized_vol),
    (r"close_zscore_(\d+)", "close_zscore_<n>", _zscore),
    ("vwap", "vwap", _vwap_feat),
    ("vwap_dist", "vwap_dist", _vwap_dist),
    ("hour_sin", "hour_sin", _hour(np.sin, "sin of the time of day (UTC) of the candle's open")),
    ("hour_cos", "hour_cos", _hour(np.cos, "cos of the time of day (UTC) of the candle's open")),
    ("range_pct", "range_pct", _range_pct),
    (r"btc_returns_(\d+)", "btc_returns_<n>", _btc_returns),
    (r"btc_lag_(\d+)", "btc_lag_<n>", _btc_lag),
    (r"btc_beta_(\d+)", "btc_beta_<n>", _btc_beta),
    (r"btc_resid_(\d+)", "btc_resid_<n>", _btc_resid),
    (r"xs_mean_returns_(\d+)", "xs_mean_returns_<n>", _xs_mean_returns),
    (r"xs_rel_returns_(\d+)", "xs_rel_returns_<n>", _xs_rel_returns),
    (r"htf_returns_(\d+[mh])", "htf_returns_<tf>", _htf_returns),
    (r"htf_returns_(\d+[mh])_(\d+)", "htf_returns_<tf>_<n>", _htf_returns),
    (r"htf_rsi_(\d+)_(\d+[mh])", "htf_rsi_<n>_<tf>", _htf_rsi),
    (r"vol_ratio_(\d+)_(\d+)", "vol_ratio_<n>_<m>", _vol_ratio),
    (r"vol_pct_(\d+)_(\d+)", "vol_pct_<n>_<m>", _vol_pct),
]
_COMPILED = [(re.compile(rf"{rx}\Z"), shown, build) for rx, shown, build in _PATTERNS]
_MIN_PERIOD = {"rsi_": 2, "atr_": 1, "natr_": 1, "adx_": 2, "ema_": 2, "sma_": 2, "bb_width_": 2,
               "realized_vol_": 2, "close_zscore_": 2, "volume_sma_": 2, "volume_ratio_": 2,
               "ema_dist_": 2, "sma_dist_": 2, "btc_beta_": 3, "btc_resid_": 3, "htf_rsi_": 2,
               "vol_ratio_": 2, "vol_pct_": 2}
MAX_PERIOD = 5_000

# The concrete catalogue: each pattern with its usual parameters (what `list(FEATURES)` shows).
CATALOGUE: tuple[str, ...] = (
    "open", "high", "low", "close", "volume",
    "returns", "returns_5", "returns_15", "log_returns", "log_returns_5",
    "rsi_14", "atr_14", "natr_14", "adx_14",
    "macd", "macd_signal", "macd_histogram", "macd_pct", "macd_histogram_pct",
    "ema_20", "ema_dist_20", "sma_20", "sma_dist_20", "volume_sma_20", "volume_ratio_20",
    "bb_width_20", "realized_vol_30", "close_zscore_20",
    "vwap", "vwap_dist", "hour_sin", "hour_cos", "range_pct",
)


def pattern_names() -> list[str]:
    """The accepted name forms, `<n>` standing for a whole number of bars."""
    return [shown for _, shown, _ in _COMPILED]


def _unknown(name: object, why: str = "unknown feature") -> BadInput:
    return BadInput(f"{why} {name!r}; known features: {', '.join(pattern_names())} (<n> = bars, e.g. rsi_14)")


def get_feature(name: str) -> FeatureDef:
    """The definition for a feature name; BadInput listing the known forms when it is not one."""
    if not isinstance(name, str):
        raise _unknown(name)
    return _build(name)


@lru_cache(maxsize=512)
def _build(name: str) -> FeatureDef:
    for rx, shown, build in _COMPILED:
        match = rx.match(name)
        if match is None:
            continue
        # Whole numbers are bar counts; a token such as `15m` is a timeframe (higher-timeframe features).
        params = [int(g) if g.isdigit() else g for g in match.groups()]
        prefix = shown.split("<", 1)[0]
        low = _MIN_PERIOD.get(prefix, 1)
        if any(isinstance(p, int) and not (low <= p <= MAX_PERIOD) for p in params):
            raise _unknown(name, f"period out of range ({low}..{MAX_PERIOD}) for feature")
        return build(name, *params)
    raise _unknown(name)


def is_scale_free(name: str) -> bool:
    """True when the feature is unchanged by multiplying prices (or volumes) by a constant."""
    return get_feature(name).scale_free


class FeatureRegistry(Mapping[str, FeatureDef]):
    """`FEATURES`: any valid name is `in` it and indexable; iteration lists the usual catalogue."""

    def __getitem__(self, name: str) -> FeatureDef:
        try:
            return get_feature(name)
        except BadInput as exc:
            raise KeyError(exc.message) from None

    def __contains__(self, name: object) -> bool:
        try:
            get_feature(name)  # type: ignore[arg-type]
        except BadInput:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOGUE)

    def __len__(self) -> int:
        return len(CATALOGUE)


FEATURES = FeatureRegistry()


def feature_names() -> list[str]:
    return list(CATALOGUE)
