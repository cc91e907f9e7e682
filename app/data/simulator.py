"""A seeded 1-minute crypto market: the `simulated` data source, and test data with known structure.

The model, per minute t and symbol s (log returns):
    r[s,t] = ar1 * r[s,t-1] + drift[t] + sigma[s,t] * (sqrt(rho_s) * zc[t] + sqrt(1 - rho_s) * zi[s,t])
    sigma[s,t] = base_sigma_s * vol_scale * regime_vol[t] * season(t) * sqrt(h[s,t])
    h[s,t+1] = (1 - alpha - beta) + alpha * e[s,t]^2 + beta * h[s,t]           (unit-mean GARCH(1,1))
zc (the market factor, with rare jumps) and zi are unit-variance Student-t draws; the vol regime
(calm/normal/turbulent) and the drift regime (down/flat/up) are Markov chains shared by all symbols.
Volume is log-linear in the conditional volatility and in the size of the bar's shock, with an
intraday seasonality peaking around 15:00 UTC and AR(1) noise. Each candle's high/low come from a
Brownian bridge from open to close, so high >= max(open, close) and low <= min(open, close) always.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from app.data.frames import OHLCV, index_ms

BAR_MS = 60_000
_DAY_MS = 86_400_000

# symbol -> (start price, sigma of 1m log returns in the normal regime, loading on the market factor,
#            traded notional per minute in quote currency)
_KNOWN = {
    "BTC": (60_000.0, 0.00085, 0.93, 2.0e6),
    "ETH": (3_000.0, 0.00120, 0.80, 1.2e6),
    "XRP": (0.6, 0.00230, 0.45, 3.0e5),
}


@dataclass(frozen=True)
class SimulatorParams:
    """Knobs of the market; change them mid-history (via `extend`) to plant a regime change."""

    ar1: float = 0.0  # autocorrelation of 1m returns: a planted, learnable signal
    vol_scale: float = 1.0
    garch_alpha: float = 0.10
    garch_beta: float = 0.88
    t_dof: float = 5.5
    slow_vol: float = 0.35  # stationary std of a slow log-volatility level (memory over days)
    slow_vol_minutes: float = 2880.0  # its mean reversion time
    regime_vol: tuple[float, float, float] = (0.55, 1.0, 2.1)  # calm, normal, turbulent
    regime_minutes: tuple[float, float, float] = (1200.0, 900.0, 240.0)  # mean stay in each regime
    regime_next: tuple[tuple[float, float, float], ...] = (
        (0.0, 0.85, 0.15),
        (0.65, 0.0, 0.35),
        (0.25, 0.75, 0.0),
    )
    drift_per_bar: float = 2.5e-5  # market drift in the up/down drift regimes (log return per minute)
    drift_minutes: float = 600.0
    jump_prob: float = 1 / 5000
    jump_scale: float = 7.0  # market jumps, in units of the bar's sigma
    vol_season: float = 0.08  # log-amplitude of the intraday volatility cycle
    volume_season: float = 0.15  # extra log-amplitude of the intraday volume cycle
    volume_vol_elasticity: float = 1.0  # d log volume / d log sigma
    volume_shock: float = 0.35  # volume grows linearly with the size of the bar's shock
    volume_ar: float = 0.8
    volume_noise: float = 0.6
    substeps: int = 30  # points of the intra-minute path that make high and low
    peak_hour_utc: float = 15.0


@dataclass
class _SymbolState:
    close: float
    h: float  # GARCH variance factor (1 = the regime's normal level)
    last_return: float
    volume_dev: float
    volume_level: float  # typical volume per minute, in base units


@dataclass
class _MarketState:
    regime: int  # 0 calm, 1 normal, 2 turbulent
    trend: int  # 0 down, 1 flat, 2 up
    slow: float  # slow log-volatility level


class MarketSimulator:
    """Seeded and deterministic: the same seed, symbols and history give the same candles."""

    def __init__(self, seed: int, params: SimulatorParams | None = None) -> None:
        self.seed = int(seed)
        self.params = params or SimulatorParams()

    def generate(self, symbols: list[str], start_ts: int, n_bars: int) -> dict[str, pd.DataFrame]:
        """Fresh histories of `n_bars` 1m candles from `start_ts` (aligned down to the minute)."""
        start_ts = int(start_ts) // BAR_MS * BAR_MS
        rng = self._rng("generate", start_ts, symbols)
        states = {s: self._initial_state(s, rng) for s in symbols}
        market = _MarketState(
            regime=int(rng.choice(3, p=_stationary(self.params))),
            trend=int(rng.integers(3)),
            slow=float(rng.normal(0.0, self.params.slow_vol)),
        )
        return self._simulate(symbols, states, start_ts, n_bars, market, rng)

    def extend(
        self,
        symbol_histories: dict[str, pd.DataFrame],
        until_ts: int,
        *,
        max_bars: int | None = None,
        history_params: SimulatorParams | None = None,
    ) -> dict[str, pd.DataFrame]:
        """New candles after each history, up to and including open time `until_ts`.

        A history is a stored frame (UTC index or int-ms `ts` column, OHLCV). The continuation starts at
        the last close with the volatility regime and GARCH state estimated from the recent returns, so
        the series goes on without a jump. With `max_bars`, at most that many bars are made per symbol
        (an old history then leaves a gap the caller reports). Symbols share the market factor.
        The state is read relative to `history_params` (default: this simulator's); pass the params
        the history was made with to plant a regime change where the history ends.
        """
        until_ts = int(until_ts) // BAR_MS * BAR_MS
        symbols = sorted(symbol_histories)
        starts: dict[str, int] = {}
        arrays = {}
        for sym in symbols:
            ts, ohlcv = _as_arrays(symbol_histories[sym])
            if len(ts) == 0:
                raise ValueError(f"history of {sym} is empty; use generate() for a fresh symbol")
            start = int(ts[-1]) + BAR_MS
            if max_bars is not None:
                start = max(start, until_ts - (max_bars - 1) * BAR_MS)
            starts[sym] = start
            arrays[sym] = ohlcv
        if not symbols or min(starts.values()) > until_ts:
            return {s: _empty() for s in symbols}
        first = min(starts.values())
        rng = self._rng("extend", first, symbols)
        market, states = self._states_from_history(arrays, rng, history_params or self.params)
        n_bars = (until_ts - first) // BAR_MS + 1
        return self._simulate(symbols, states, first, n_bars, market, rng, starts=starts)

    # ----------------------------------------------------------------- the model
    def _simulate(
        self,
        symbols: list[str],
        states: dict[str, _SymbolState],
        start_ts: int,
        n_bars: int,
        market: _MarketState,
        rng: np.random.Generator,
        starts: dict[str, int] | None = None,
    ) -> dict[str, pd.DataFrame]:
        p = self.params
        k = len(symbols)
        if n_bars <= 0 or k == 0:
            return {s: _empty() for s in symbols}
        ts = start_ts + BAR_MS * np.arange(n_bars, dtype=np.int64)
        first_bar = np.array([((starts or {}).get(s, start_ts) - start_ts) // BAR_MS for s in symbols])
        hours = (ts % _DAY_MS) / 3_600_000.0
        cycle = np.cos(2 * np.pi * (hours - p.peak_hour_utc) / 24.0)

        profiles = [_profile(s) for s in symbols]
        base_sigma = np.array([pr[1] for pr in profiles]) * p.vol_scale
        load = np.sqrt(np.array([pr[2] for pr in profiles]))
        idio = np.sqrt(1.0 - load**2)

        regimes, trends = self._regime_paths(n_bars, market.regime, market.trend, rng)
        slow = _slow_level(rng, n_bars, market.slow, p)
        log_market_vol = np.log(np.asarray(p.regime_vol))[regimes] + slow + p.vol_season * cycle
        market_vol = np.exp(log_market_vol)
        drift = p.drift_per_bar * (trends - 1.0)

        zc = _student_t(rng, p.t_dof, n_bars)
        jumps = rng.random(n_bars) < p.jump_prob
        zc = zc + jumps * rng.normal(0.0, p.jump_scale, n_bars)
        zi = _student_t(rng, p.t_dof, (n_bars, k))
        shocks = load * zc[:, None] + idio * zi  # unit variance per symbol (plus rare jumps)
        volume_noise = rng.normal(0.0, p.volume_noise, (n_bars, k))

        h = np.array([states[s].h for s in symbols])
        prev_r = np.array([states[s].last_return for s in symbols])
        vdev = np.array([states[s].volume_dev for s in symbols])
        returns = np.empty((n_bars, k))
        h_path = np.empty((n_bars, k))
        vdevs = np.empty((n_bars, k))
        a, b, c0 = p.garch_alpha, p.garch_beta, 1.0 - p.garch_alpha - p.garch_beta
        for t in range(n_bars):  # the GARCH and AR recursions are sequential by nature
            active = t >= first_bar
            e = shocks[t]
            r = p.ar1 * prev_r + drift[t] + base_sigma * market_vol[t] * np.sqrt(h) * e
            returns[t] = r
            h_path[t] = h
            vdev = np.where(active, p.volume_ar * vdev + volume_noise[t], vdev)
            vdevs[t] = vdev
            h = np.where(active, np.minimum(c0 + a * np.minimum(e * e, 400.0) + b * h, 50.0), h)
            prev_r = np.where(active, r, prev_r)

        mean_log_vol = float(_stationary(p) @ np.log(p.regime_vol))
        abs_mean = _t_abs_mean(p.t_dof)
        frames = {}
        for j, sym in enumerate(symbols):
            st, i0 = states[sym], int(first_bar[j])
            ret = returns[i0:, j]
            sigma = base_sigma[j] * market_vol[i0:] * np.sqrt(h_path[i0:, j])
            close = np.exp(math.log(st.close) + np.cumsum(ret))
            open_ = np.concatenate([[st.close], close[:-1]])
            high, low = _intrabar_extremes(rng, open_, ret, sigma, p.substeps)
            log_volume = (
                p.volume_vol_elasticity * (log_market_vol[i0:] - mean_log_vol + 0.5 * np.log(h_path[i0:, j]))
                + p.volume_season * cycle[i0:]
                + vdevs[i0:, j] * math.sqrt(1 - p.volume_ar**2)
            )
            shock_factor = 1.0 - p.volume_shock + p.volume_shock * np.abs(shocks[i0:, j]) / abs_mean
            volume = st.volume_level * np.exp(log_volume) * shock_factor
            decimals = _price_decimals(st.close)
            frames[sym] = pd.DataFrame(
                {
                    "ts": ts[i0:],
                    "open": np.round(open_, decimals),
                    "high": np.round(high, decimals),
                    "low": np.round(low, decimals),
                    "close": np.round(close, decimals),
                    "volume": np.round(volume, 6),
                }
            )
        return frames

    def _regime_paths(
        self, n_bars: int, regime: int, trend: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        leave = 1.0 / np.asarray(p.regime_minutes)
        next_p = np.asarray(p.regime_next, dtype=float)
        u_leave, u_next = rng.random(n_bars), rng.random(n_bars)
        u_trend, trend_draw = rng.random(n_bars), rng.integers(0, 3, n_bars)
        regimes = np.empty(n_bars, dtype=np.int64)
        trends = np.empty(n_bars, dtype=np.int64)
        cum_next = np.cumsum(next_p, axis=1)
        for t in range(n_bars):
            regimes[t] = regime
            trends[t] = trend
            if u_leave[t] < leave[regime]:
                regime = int(np.searchsorted(cum_next[regime], u_next[t] * cum_next[regime][-1]))
            if u_trend[t] < 1.0 / p.drift_minutes:
                trend = int(trend_draw[t])
        return regimes, trends

    # ----------------------------------------------------------------- states
    def _initial_state(self, symbol: str, rng: np.random.Generator) -> _SymbolState:
        price, _, _, notional = _profile(symbol)
        price *= math.exp(rng.normal(0.0, 0.02))
        return _SymbolState(
            close=price, h=1.0, last_return=0.0, volume_dev=0.0, volume_level=notional / price
        )

    def _states_from_history(
        self, histories: dict[str, np.ndarray], rng: np.random.Generator, p: SimulatorParams
    ) -> tuple[_MarketState, dict[str, _SymbolState]]:
        """Market regime and per-symbol GARCH/volume state implied by the recent candles.

        The last day sets the slow volatility level, the last ~2 hours (exponentially weighted) the
        regime and the GARCH factor, so the continuation has the volatility the history ended with.
        """
        day_ratio, recent_ratio, realized = {}, {}, {}
        for sym, ohlcv in histories.items():
            sigma = _profile(sym)[1] * p.vol_scale
            r = np.diff(np.log(ohlcv[-1441:, 3]))
            if len(r) < 10:
                continue
            w = 0.97 ** np.arange(min(len(r), 120))[::-1]
            realized[sym] = max(math.sqrt(float(np.sum(w * r[-len(w):] ** 2) / w.sum())), 1e-9)
            day_ratio[sym] = math.log(max(float(np.std(r)), 1e-9) / sigma)
            recent_ratio[sym] = math.log(realized[sym] / sigma)
        mean_log_regime = float(_stationary(p) @ np.log(p.regime_vol))
        if realized:
            slow = float(np.clip(np.mean(list(day_ratio.values())) - mean_log_regime, -2 * p.slow_vol,
                                 2 * p.slow_vol))
            regime = _nearest_regime(p, float(np.mean(list(recent_ratio.values()))) - slow)
        else:
            slow, regime = 0.0, 1
        market = _MarketState(regime=regime, trend=int(rng.integers(3)), slow=slow)
        level = math.log(p.regime_vol[regime]) + slow
        states = {}
        for sym, ohlcv in histories.items():
            close, volume = ohlcv[:, 3], ohlcv[:, 4]
            sigma = _profile(sym)[1] * p.vol_scale
            h0 = 1.0
            if sym in realized:
                h0 = float(np.clip((realized[sym] / (sigma * math.exp(level))) ** 2, 0.2, 5.0))
            last_return = float(np.log(close[-1] / close[-2])) if len(close) > 1 and p.ar1 else 0.0
            positive = volume[-1440:][volume[-1440:] > 0]
            if len(positive) >= 30:
                vol_level = float(np.exp(np.mean(np.log(positive))))
                last_dev = float(np.clip(np.log(max(volume[-1], 1e-12) / vol_level), -2.0, 2.0))
            else:
                vol_level, last_dev = _profile(sym)[3] / float(close[-1]), 0.0
            states[sym] = _SymbolState(
                close=float(close[-1]), h=h0, last_return=last_return,
                volume_dev=0.5 * last_dev / math.sqrt(1 - p.volume_ar**2), volume_level=vol_level,
            )
        return market, states

    def _rng(self, purpose: str, start_ts: int, symbols: list[str] | dict) -> np.random.Generator:
        key = zlib.crc32((purpose + "|" + ",".join(sorted(symbols))).encode())
        return np.random.default_rng([self.seed, key, int(start_ts) // BAR_MS])


def _profile(symbol: str) -> tuple[float, float, float, float]:
    """(start price, normal-regime sigma, market loading, notional per minute), stable per name."""
    base = symbol.upper().replace("/", "-").split("-")[0]
    if base in _KNOWN:
        return _KNOWN[base]
    digest = hashlib.sha256(symbol.upper().encode()).digest()
    u = [b / 255.0 for b in digest[:4]]
    price = 10 ** (-1.0 + 4.0 * u[0])  # 0.1 .. 1000
    sigma = 0.0012 + 0.0018 * u[1]
    loading = 0.35 + 0.4 * u[2]
    notional = 10 ** (4.5 + 1.5 * u[3])
    return price, sigma, loading, notional


def _slow_level(rng: np.random.Generator, n_bars: int, start: float, p: SimulatorParams) -> np.ndarray:
    """A slowly mean-reverting log-volatility level: volatility memory over days, as in real markets."""
    phi = 1.0 - 1.0 / p.slow_vol_minutes
    noise = rng.normal(0.0, p.slow_vol * math.sqrt(1 - phi**2), n_bars)
    powers = phi ** np.arange(1, n_bars + 1)
    out = lfilter([1.0], [1.0, -phi], noise) + start * powers
    return np.concatenate([[start], out[:-1]])


def _t_abs_mean(dof: float) -> float:
    """E|z| of a unit-variance Student-t with `dof` degrees of freedom."""
    scale = math.sqrt((dof - 2.0) / dof)
    return scale * 2 * math.sqrt(dof) * math.gamma((dof + 1) / 2) / (
        math.sqrt(math.pi) * (dof - 1) * math.gamma(dof / 2)
    )


def _student_t(rng: np.random.Generator, dof: float, size: int | tuple[int, int]) -> np.ndarray:
    """Unit-variance Student-t draws: fat tails without changing the volatility level."""
    return rng.standard_t(dof, size) * math.sqrt((dof - 2.0) / dof)


def _intrabar_extremes(
    rng: np.random.Generator, open_: np.ndarray, ret: np.ndarray, sigma: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """High and low of a Brownian bridge from open to close with the bar's volatility."""
    n = len(open_)
    incr = rng.normal(0.0, 1.0, (n, steps)) * (sigma[:, None] / math.sqrt(steps))
    walk = np.cumsum(incr, axis=1)
    frac = np.arange(1, steps + 1) / steps
    bridge = walk - frac * walk[:, -1:] + frac * ret[:, None]  # ends exactly at the close
    top = np.maximum(bridge.max(axis=1), np.maximum(ret, 0.0))
    bottom = np.minimum(bridge.min(axis=1), np.minimum(ret, 0.0))
    return open_ * np.exp(top), open_ * np.exp(bottom)


def _price_decimals(price: float) -> int:
    return int(min(10, max(2, 6 - math.floor(math.log10(max(price, 1e-9))))))


def _stationary(p: SimulatorParams) -> np.ndarray:
    leave = 1.0 / np.asarray(p.regime_minutes)
    q = np.asarray(p.regime_next, dtype=float) * leave[:, None]
    q[np.diag_indices(3)] = -leave
    a = np.vstack([q.T, np.ones(3)])
    pi = np.linalg.lstsq(a, np.array([0, 0, 0, 1.0]), rcond=None)[0]
    pi = np.clip(pi, 0, None)
    return pi / pi.sum()


def _nearest_regime(p: SimulatorParams, log_ratio: float) -> int:
    return int(np.argmin([abs(log_ratio - math.log(m)) for m in p.regime_vol]))


def _as_arrays(history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "ts" in history.columns:
        ts = history["ts"].to_numpy(dtype=np.int64)
    else:
        ts = index_ms(pd.DatetimeIndex(history.index))
    order = np.argsort(ts, kind="stable")
    return ts[order], history[OHLCV].to_numpy(dtype=float)[order]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"ts": np.array([], dtype=np.int64), **{c: np.array([], dtype=float) for c in OHLCV}})
