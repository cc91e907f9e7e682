"""The scale-free form of a feature in price or volume units (DESIGN 3).

A model pooled over several symbols must not learn each symbol's price level, so a feature list such as
the seed's (`close`, `atr_14`, `vwap`, `volume_sma_20`, `macd_histogram`) is fed in its scale-free form
(`close_zscore_20`, `natr_14`, `vwap_dist`, `volume_ratio_20`, `macd_histogram_pct`) instead of refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.core.errors import BadInput
from app.features.registry import is_scale_free

# `close` as a level (where the price stands in its recent range), not its change (`returns`, usually
# asked for beside it); `high`/`low` as the bar's range; `macd`/`macd_signal` as the line over price.
_FORMS = {
    "open": "returns", "high": "range_pct", "low": "range_pct", "close": "close_zscore_20",
    "volume": "volume_ratio_20", "vwap": "vwap_dist", "macd": "macd_pct", "macd_signal": "macd_pct",
    "macd_histogram": "macd_histogram_pct",
}
_PREFIX_FORMS = {"atr_": "natr_", "ema_": "ema_dist_", "sma_": "sma_dist_", "volume_sma_": "volume_ratio_"}


def scale_free_form(name: str) -> str:
    """`name` itself when scale-free, else the scale-free feature it is fed as (`atr_14` -> `natr_14`)."""
    if is_scale_free(name):
        return name
    if name in _FORMS:
        return _FORMS[name]
    for prefix, other in _PREFIX_FORMS.items():
        if name.startswith(prefix) and is_scale_free(other + name[len(prefix):]):
            return other + name[len(prefix):]
    raise BadInput(f"feature {name!r} is in price or volume units and has no scale-free form; "
                   "use a return, a ratio to price or a z-score of it")


def scale_free_features(features: Iterable[str]) -> tuple[list[str], list[dict[str, str]]]:
    """(the features as fed, in order without repeats; each substitution as {"given", "fed"})."""
    fed: list[str] = []
    substitutions: list[dict[str, str]] = []
    for name in features:
        form = scale_free_form(name)
        if form != name:
            substitutions.append({"given": name, "fed": form})
        if form not in fed:
            fed.append(form)
    return fed, substitutions
