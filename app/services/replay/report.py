"""A replay's report: JSON (`report.json`) and PNG plots beside it, under the replay's directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

PLOT_CUMULATIVE = "cumulative_skill.png"
PLOT_EQUITY = "equity.png"


def _when(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def write_plots(root: Path, kinds: dict[str, Any]) -> list[str]:
    """Cumulative out-of-sample skill per kind (one panel each, a line per policy, 0 = the baseline), and
    direction's equity curve beside buy and hold. Matplotlib's Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    drawn = [k for k, v in kinds.items() if any(c["ts_ms"] for c in v["curves"].values())]
    if drawn:
        fig, axes = plt.subplots(len(drawn), 1, figsize=(9, 2.6 * len(drawn)), squeeze=False, sharex=True)
        for ax, kind in zip(axes[:, 0], drawn, strict=True):
            for policy, curve in kinds[kind]["curves"].items():
                if curve["ts_ms"]:
                    ax.plot([_when(t) for t in curve["ts_ms"]], curve["skill"], label=policy)
            ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
            ax.set_title(f"{kind}: cumulative skill over the strongest baseline", fontsize=9)
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(root / PLOT_CUMULATIVE, dpi=90)
        plt.close(fig)
        written.append(PLOT_CUMULATIVE)
    equity = ((kinds.get("direction") or {}).get("policies", {}).get("served") or {}).get("equity")
    if equity and equity.get("ts_ms"):
        fig, ax = plt.subplots(figsize=(9, 3))
        stamps = [_when(t) for t in equity["ts_ms"]]
        ax.plot(stamps, equity["strategy"], label="served direction champions (after fees)")
        ax.plot(stamps, equity["buy_and_hold"], label="buy and hold")
        ax.set_title("direction: equity of what was served", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(root / PLOT_EQUITY, dpi=90)
        plt.close(fig)
        written.append(PLOT_EQUITY)
    return written


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per kind and policy: what `mlpipe replay` prints."""
    rows = []
    for kind, entry in sorted(report["kinds"].items()):
        counts = report["decisions"].get(kind, {})
        for policy, result in entry["policies"].items():
            skill, interval = result.get("skill"), result.get("interval")
            rows.append([
                kind, policy,
                "-" if skill is None else f"{skill:+.4f}",
                "-" if not interval else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]",
                "yes" if result.get("beats_baseline") else "no",
                str(result.get("baseline") or "-"),
                "; ".join(f"{b} {_skill_text(r)}" for b, r in (result.get("against") or {}).items()),
                str(result.get("n", 0)),
                _extra(result),
                f"{counts.get('switches', 0)}/{counts.get('drift_flags', 0)}/{counts.get('retrains', 0)}"
                if policy == "served" else "",
            ])
    return rows


def _skill_text(result: dict[str, Any]) -> str:
    skill, interval = result.get("skill"), result.get("interval")
    if skill is None:
        return "-"
    return f"{skill:+.4f}" + (f" [{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else "")


def _extra(result: dict[str, Any]) -> str:
    """The kind's own figure: direction's return against buy and hold, risk's rank correlation, volatility's
    QLIKE beside each baseline's."""
    trading = result.get("trading") or {}
    if trading:
        hold = trading.get("buy_and_hold") or {}
        return f"{trading.get('total_return', 0):+.4f} vs {hold.get('total_return', 0):+.4f}"
    if result.get("spearman") is not None:
        return f"spearman {result['spearman']:+.3f}"
    qlike = result.get("qlike") or {}
    if qlike:
        others = ", ".join(f"{b} {v:.4f}" for b, v in qlike.items() if b != "model")
        return f"QLIKE {qlike['model']:.4f} ({others})"
    return ""


TABLE_COLUMNS = ("kind", "policy", "skill", "95% interval", "beats", "baseline", "against each baseline",
                 "rows", "return vs hold / rank corr. / QLIKE", "switches/drift/retrains")
