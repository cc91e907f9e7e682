"""Price: the log return of the next hour, from a small torch network; answer close * exp(r)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from app.core.errors import BadInput
from app.data.frames import TIMEFRAME_MS
from app.ml import targets
from app.ml.calibration import ecdf, quantiles
from app.ml.families import RegressorModel

HOUR_MS = 3_600_000


@contextmanager
def deterministic_torch() -> Iterator[None]:
    """One CPU thread and deterministic kernels while fitting; the process's settings come back after."""
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
    Shrinkage (never worse than a random walk by construction of the fit): the network's predicted return
    is multiplied by lambda = clip(sum(p y) / sum(p^2), 0, 1), the least-squares factor of the realized
    returns y on the raw predictions p over the calibration slice (rows the network never fitted). A network
    with no out-of-sample information gets lambda near 0, i.e. the random walk's answer; one with real
    information keeps most of its prediction. lambda is kept in the model (`shrinkage_`).
    Confidence: P(|realized r - predicted r| <= `band`) (default 0.005, i.e. the price lands within about
    +/-0.5% of `predicted_price`). On the calibration slice the residuals are standardised by the current
    volatility, z = (r - r_hat) / (scale * sqrt(h)) with `scale` the std of the last 60 one-bar log
    returns; the empirical CDF of |z| (201 quantiles) then gives, for a new row,
    confidence = F(band / (scale * sqrt(h))): lower when the market is wild, higher when it is calm.
    """

    kind = "price"
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
        self.shrinkage_ = 1.0  # until the calibration slice fits it (_calibrate)
        std = X.std(axis=0)
        self.scaler_ = {"x_mean": X.mean(axis=0).tolist(), "x_std": np.where(std > 0, std, 1.0).tolist(),
                        "y_mean": float(y.mean()), "y_std": float(y.std()) or 1.0}
        xs = torch.from_numpy(self._scale(X))
        ys = torch.from_numpy(((y - self.scaler_["y_mean"]) / self.scaler_["y_std"]).astype("float32"))
        with deterministic_torch():
            generator = torch.Generator().manual_seed(self.seed)
            net = build_mlp(X.shape[1], [int(w) for w in self.hidden_layers], generator)
            optimizer = torch.optim.Adam(
                net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            for _ in range(self.epochs):
                order = torch.randperm(len(xs), generator=generator)
                for start in range(0, len(xs), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    optimizer.zero_grad()
                    loss = nn.functional.mse_loss(net(xs[batch]).squeeze(1), ys[batch])
                    loss.backward()
                    optimizer.step()
        self.estimator_ = net.eval()

    def _scale(self, X: np.ndarray) -> np.ndarray:
        mean, std = np.asarray(self.scaler_["x_mean"]), np.asarray(self.scaler_["x_std"])
        return ((X - mean) / std).astype("float32")

    def _raw(self, X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.estimator_(torch.from_numpy(self._scale(X))).squeeze(1).numpy().astype("float64")
        shrinkage = float(getattr(self, "shrinkage_", 1.0))
        return (out * self.scaler_["y_std"] + self.scaler_["y_mean"]) * shrinkage

    def _horizon_scale(self, meta: pd.DataFrame | None, n: int) -> np.ndarray:
        if meta is None:
            return np.ones(n)  # no volatility context: plain residuals (the confidence cannot vary)
        return np.asarray(meta["scale"], dtype="float64") * np.sqrt(int(self.horizon))

    def hits(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(y) - np.asarray(pred)) <= self.band

    def _calibrate(self, y: np.ndarray, raw: np.ndarray, meta: pd.DataFrame | None) -> dict:
        power = float(np.dot(raw, raw))
        self.shrinkage_ = float(np.clip(np.dot(raw, y) / power, 0.0, 1.0)) if power > 0 else 0.0
        shrunk = raw * self.shrinkage_
        z = np.abs(y - shrunk) / self._horizon_scale(meta, len(y))
        return {"method": "standardised_residual_band", "band": self.band, "abs_z_quantiles": quantiles(z),
                "shrinkage": self.shrinkage_}

    def _confidence(self, pred: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray:
        return ecdf(self.band / self._horizon_scale(meta, len(pred)), self.calibration_["abs_z_quantiles"])

    def _answer(self, prediction: float, confidence: float | None, context: pd.Series | None) -> dict:
        return {"predicted_price": float(context["close"] * np.exp(prediction)), "confidence": confidence,
                "predicted_log_return": prediction}

    def _save_estimator(self, path: Path) -> dict:
        torch.save(self.estimator_.state_dict(), path)
        return {"scaler": self.scaler_, "shrinkage": self.shrinkage_}

    def _load_estimator(self, path: Path, state: dict) -> None:
        self.scaler_ = state["scaler"]
        self.shrinkage_ = float(state.get("shrinkage", 1.0))  # models saved before shrinkage: none
        net = build_mlp(len(self.scaler_["x_mean"]), [int(w) for w in self.hidden_layers])
        net.load_state_dict(torch.load(path, weights_only=True))
        self.estimator_ = net.eval()
