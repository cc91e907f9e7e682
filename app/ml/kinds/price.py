"""Price: the log return of the next hour, from a small torch network; answer close * exp(r)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import TIMEFRAME_MS
from app.ml import intervals, targets
from app.ml.calibration import ecdf, quantiles
from app.ml.families import RegressorModel
from app.ml.splits import forward_blocks

if TYPE_CHECKING:  # torch is imported where a network is built, fitted, run, saved or loaded: importing it
    import torch  # costs every process 1-2 s of its start, and most processes never touch a price model
    from torch import nn

HOUR_MS = 3_600_000
SHRINK_FOLDS = 2  # forward folds inside the fit rows whose out-of-fold predictions fit the shrinkage
MIN_FOLD_ROWS = 200  # a fold's network needs at least this many rows before its block
SHRINK_REPS = 499  # block-bootstrap replicates behind the shrinkage factor's interval


@contextmanager
def deterministic_torch() -> Iterator[None]:
    """One CPU thread and deterministic kernels while fitting; the process's settings come back after."""
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def build_mlp(n_in: int, hidden: Sequence[int], generator: torch.Generator | None = None) -> nn.Sequential:
    """ReLU MLP; with a generator, its initial weights come from it (not the global RNG: thread-safe)."""
    from torch import nn

    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, 1))
    net = nn.Sequential(*layers)
    if generator is not None:
        for layer in net:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=5**0.5, generator=generator)
                bound = 1.0 / layer.in_features**0.5
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return net


DEFAULT_FEATURES = (
    "returns", "returns_5", "returns_15", "log_returns", "rsi_14", "macd_histogram_pct",
    "close_zscore_20", "natr_14", "realized_vol_30", "volume_ratio_20", "adx_14",
)


class PricePredictor(RegressorModel):
    """Torch MLP (CPU, float32) on standardised features -> standardised 1-hour log return r.

    Standardisation (features and target) is fitted on the fit rows only. Training is deterministic for
    a seed: weights and batch order come from a private torch.Generator, one thread, deterministic kernels.
    Shrinkage toward the random walk (a return of 0), fitted on out-of-sample predictions only: the fit
    rows are cut into SHRINK_FOLDS + 1 time blocks; a network fitted on the blocks before each later block
    (embargoed by h bars, trained for as many optimizer steps as the final network) predicts that block,
    and the final network predicts the calibration slice. On
    those out-of-fold pairs (p, y), lambda_hat = sum(p y) / sum(p^2) (least squares of y on p), with a 95%
    block-bootstrap interval over time (blocks >= h, app.ml.intervals). The rule: lambda = 0, i.e. exactly
    the random walk's answer, unless the interval's lower end is above 0 (the network shows calibration
    skill out of sample); then lambda = clip(lambda_hat, 0, 1). The served return is lambda x the final
    network's; lambda and its interval are kept (`shrinkage_`, `calibration_["shrinkage_interval"]`).
    Confidence: P(|realized r - predicted r| <= `band`) (default 0.005, i.e. the price lands within about
    +/-0.5% of `predicted_price`). On the calibration slice the residuals are standardised by the current
    volatility, z = (r - r_hat) / (scale * sqrt(h)) with `scale` the std of the last 60 one-bar log
    returns; the empirical CDF of |z| (201 quantiles) then gives, for a new row,
    confidence = F(band / (scale * sqrt(h))): lower when the market is wild, higher when it is calm.
    """

    kind = "price"
    fit_scratch = ("_oof",)
    model_type = "torch_mlp"
    artifact_file = "model.pt"
    needs_context = True
    baseline_names = ("random_walk", "train_mean")
    description = "Predicts the price one hour ahead (via the log return) with a small neural network"
    default_features = DEFAULT_FEATURES

    def __init__(
        self,
        hidden_layers: Sequence[int] = (32, 16),
        epochs: int = 10,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-3,
        band: float = 0.005,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        horizon: int = HOUR_MS // TIMEFRAME_MS["1m"],
        timeframe: str = "1m",
        seed: int = 42,
        train_ratio: float = 0.8,
        calibration_ratio: float = 0.2,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.band = band
        super().__init__(
            features=features, horizon=horizon, timeframe=timeframe, seed=seed, train_ratio=train_ratio,
            calibration_ratio=calibration_ratio,
        )

    def _check_own_params(self) -> None:
        layers = self.hidden_layers
        if isinstance(layers, str | bytes) or not all(int(w) == w and w >= 1 for w in layers):
            raise BadInput(f"hidden_layers must be a list of layer widths >= 1, got {layers!r}")

    @classmethod
    def default_horizon(cls, timeframe: str) -> int:
        return max(1, HOUR_MS // TIMEFRAME_MS[timeframe])

    @classmethod
    def check_horizon(cls, horizon: int, timeframe: str) -> None:
        if TIMEFRAME_MS[timeframe] > HOUR_MS or horizon * TIMEFRAME_MS[timeframe] != HOUR_MS:
            raise BadInput(f"the price kind predicts one hour ahead: horizon must be "
                           f"{HOUR_MS // TIMEFRAME_MS[timeframe]} bars of {timeframe}, got {horizon}")

    def target(self, candles: pd.DataFrame) -> pd.Series:
        return targets.log_return(candles, int(self.horizon))

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray) -> None:
        self.shrinkage_ = 1.0  # until the out-of-fold predictions fit it (_calibrate)
        self._oof = self._out_of_fold(X, y)
        self.scaler_, self.estimator_ = self._fit_net(X, y)

    def _out_of_fold(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p, y, ts) of forward folds inside the fit rows: each block predicted by a net fitted before it."""
        ts = self._fit_times_of(len(y))
        if ts is None:
            ts = np.arange(len(y), dtype="int64") * self.bar_ms
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for train, block in forward_blocks(ts, int(self.horizon), self.bar_ms, SHRINK_FOLDS, MIN_FOLD_ROWS):
            # as many optimizer steps as the final network takes, so a fold's net is trained as far
            epochs = math.ceil(int(self.epochs) * len(y) / int(train.sum()))
            scaler, net = self._fit_net(X[train], y[train], epochs)
            parts.append((self._net_output(net, scaler, X[block]), y[block], ts[block]))
        if not parts:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype="int64")
        return tuple(np.concatenate(c) for c in zip(*parts, strict=True))  # type: ignore[return-value]

    def _fit_net(self, X: np.ndarray, y: np.ndarray, epochs: int | None = None) -> tuple[dict, nn.Sequential]:
        import torch
        from torch import nn

        std = X.std(axis=0)
        scaler = {"x_mean": X.mean(axis=0).tolist(), "x_std": np.where(std > 0, std, 1.0).tolist(),
                  "y_mean": float(y.mean()), "y_std": float(y.std()) or 1.0}
        xs = torch.from_numpy(_scaled(X, scaler))
        ys = torch.from_numpy(((y - scaler["y_mean"]) / scaler["y_std"]).astype("float32"))
        with deterministic_torch():
            generator = torch.Generator().manual_seed(self.seed)
            net = build_mlp(X.shape[1], [int(w) for w in self.hidden_layers], generator)
            optimizer = torch.optim.Adam(
                net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            for _ in range(self.epochs if epochs is None else epochs):
                order = torch.randperm(len(xs), generator=generator)
                for start in range(0, len(xs), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    optimizer.zero_grad()
                    loss = nn.functional.mse_loss(net(xs[batch]).squeeze(1), ys[batch])
                    loss.backward()
                    optimizer.step()
        return scaler, net.eval()

    @staticmethod
    def _net_output(net: nn.Sequential, scaler: dict, X: np.ndarray) -> np.ndarray:
        """The network's unshrunk predicted log return."""
        import torch

        with torch.inference_mode():
            out = net(torch.from_numpy(_scaled(X, scaler))).squeeze(1).numpy().astype("float64")
        return out * scaler["y_std"] + scaler["y_mean"]

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return _scaled(X, self.scaler_)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return self._net_output(self.estimator_, self.scaler_, X) * float(getattr(self, "shrinkage_", 1.0))

    def _horizon_scale(self, meta: pd.DataFrame | None, n: int) -> np.ndarray:
        if meta is None:
            return np.ones(n)  # no volatility context: plain residuals (the confidence cannot vary)
        return np.asarray(meta["scale"], dtype="float64") * np.sqrt(int(self.horizon))

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(y) - np.asarray(pred)) <= self.band

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        oof_p, oof_y, oof_ts = getattr(self, "_oof", (np.zeros(0), np.zeros(0), np.zeros(0, dtype="int64")))
        if meta is not None:
            cal_ts = meta["ts_ms"].to_numpy(dtype="int64")
        else:
            start = int(oof_ts.max()) + 1 if len(oof_ts) else 0
            cal_ts = start + np.arange(len(y), dtype="int64") * self.bar_ms
        estimate, interval = shrinkage_factor(
            np.concatenate([oof_p, raw]), np.concatenate([oof_y, y]), np.concatenate([oof_ts, cal_ts]),
            int(self.horizon), self.seed,
        )
        skilled = interval is not None and interval[0] > 0.0  # else exactly the random walk
        self.shrinkage_ = float(np.clip(estimate, 0.0, 1.0)) if skilled else 0.0
        shrunk = raw * self.shrinkage_
        z = np.abs(y - shrunk) / self._horizon_scale(meta, len(y))
        return {"method": "standardised_residual_band", "band": self.band, "abs_z_quantiles": quantiles(z),
                "shrinkage": self.shrinkage_, "shrinkage_estimate": estimate, "shrinkage_interval": interval,
                "shrinkage_rows": len(oof_y) + len(y)}

    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray:
        return ecdf(self.band / self._horizon_scale(meta, len(pred)), self.calibration_["abs_z_quantiles"])

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> dict:
        return {"predicted_price": float(context["close"] * np.exp(prediction)), "confidence": confidence,
                "predicted_log_return": prediction}

    def _save_estimator(self, path: Path) -> dict:
        import torch

        torch.save(self.estimator_.state_dict(), path)
        return {"scaler": self.scaler_, "shrinkage": self.shrinkage_}

    def _load_estimator(self, path: Path, state: dict) -> None:
        import torch

        self.scaler_ = state["scaler"]
        self.shrinkage_ = float(state.get("shrinkage", 1.0))  # models saved before shrinkage: none
        net = build_mlp(len(self.scaler_["x_mean"]), [int(w) for w in self.hidden_layers])
        net.load_state_dict(torch.load(path, weights_only=True))
        self.estimator_ = net.eval()


def _scaled(X: np.ndarray, scaler: dict) -> np.ndarray:
    mean, std = np.asarray(scaler["x_mean"]), np.asarray(scaler["x_std"])
    return ((X - mean) / std).astype("float32")


def shrinkage_factor(
    p: np.ndarray, y: np.ndarray, ts_ms: np.ndarray, horizon: int, seed: int = 0
) -> tuple[float, list[float] | None]:
    """lambda_hat = sum(p y) / sum(p^2) over out-of-sample pairs and its 95% block-bootstrap interval.

    Rows are resampled by time (all symbols at one instant together) in blocks of at least h bars, since
    neighbouring h-bar returns overlap. (0, None) when there is nothing to fit (no rows, p all 0).
    """
    p, y = np.asarray(p, dtype="float64"), np.asarray(y, dtype="float64")
    power = float(np.dot(p, p))
    if len(p) == 0 or power <= 0.0:
        return 0.0, None
    estimate = float(np.dot(p, y) / power)
    axis = intervals.time_axis(ts_ms)
    sums = axis.sums(np.column_stack([p * y, p * p]))
    block = intervals.block_length(axis.means(p * (y - estimate * p)), horizon)
    totals = intervals.resampler(axis.n_times, block, SHRINK_REPS, seed).replicate(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = totals[:, 0] / totals[:, 1]
    return estimate, intervals.percentile_interval(replicates)
