"""A cross-asset model through the real predict path: serving reads the market symbols the model recorded,
at the same times, and sees exactly the numbers training saw; a missing market candle is a clear 503."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from app.data.candles import store_candles
from app.data.frames import candles_frame
from app.store.cache import get_cache
from tests.api.ml_setup import Trained, api_keys, save

FEATURES = ["returns", "btc_lag_5", "btc_beta_60", "btc_resid_30", "xs_rel_returns_5", "htf_returns_15m",
            "vol_ratio_10_60"]
CUT = 40  # the newest CUT candles stay out of the store: the served row then has a label in training


@pytest.fixture(scope="module")
def market_model(trained: Trained):  # noqa: ANN201
    from app.ml.kinds import DirectionPredictor

    candles = {s: candles_frame(f) for s, f in trained.candles.items()}
    model = DirectionPredictor(n_estimators=15, max_depth=2, horizon=3, features=FEATURES)
    return model.train_on(candles, data_source="simulated"), candles


@pytest.fixture()
def setup(trained: Trained, market_model, base_url: str) -> Iterator[dict]:  # noqa: ANN001
    from app.services.feature_rows import get_feature_rows

    get_feature_rows().clear()
    trained.models["direction_market"] = market_model[0]
    yield {"keys": api_keys(), "name": "direction_market"}
    trained.models.pop("direction_market", None)
    get_cache().reload("test")


def _store(trained: Trained, btc_upto: int) -> None:
    eth, btc = trained.candles["ETH-USDT"], trained.candles["BTC-USDT"]
    store_candles("ETH-USDT", eth.iloc[:-CUT], "simulated")
    store_candles("BTC-USDT", btc.iloc[:btc_upto], "simulated")


def _post(url: str, setup: dict, symbol: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=10) as http:
        return http.post(f"/predict/{setup['saved']}", json={"symbol": symbol},
                         headers=setup["keys"]["predict"])


def test_the_model_records_its_market_symbols_and_saves_them(market_model) -> None:  # noqa: ANN001
    model, _ = market_model
    assert list(model.market_symbols_) == ["BTC-USDT", "ETH-USDT"]  # btc_* and the cross-section
    assert model.training_["market_symbols"] == ["BTC-USDT", "ETH-USDT"]


def test_serving_sees_exactly_the_numbers_training_saw(setup: dict, trained: Trained, market_model,  # noqa: ANN001
                                                       base_url: str) -> None:
    from app.ml.dataset import build_dataset
    from app.services.feature_rows import get_feature_rows

    model, candles = market_model
    _store(trained, btc_upto=len(trained.candles["BTC-USDT"]) - CUT)
    setup["saved"] = save(trained, setup["name"])
    get_cache().reload("test")

    r = _post(base_url, setup, "ETH-USDT")

    assert r.status_code == 200, r.text
    served_ts = int(trained.candles["ETH-USDT"]["ts"].iloc[-CUT - 1])
    # training's rows: the whole history of both symbols, the same code as a cycle's build
    ds = build_dataset(model, candles)
    at = (ds.meta["symbol"] == "ETH-USDT").to_numpy() & (ds.ts_ms == served_ts)
    assert at.sum() == 1
    trained_row = ds.X[at].to_numpy()[0]
    served = get_feature_rows().get(("ETH-USDT", "1m", served_ts, tuple(model.feature_names_)))
    assert served is not None and served.as_of_ms == served_ts
    np.testing.assert_allclose(served.values, trained_row, rtol=1e-9, atol=1e-15)
    answer = model.answer_values(trained_row)
    body = r.json()
    assert body["direction"] == answer["direction"]
    assert body["confidence"] == pytest.approx(answer["confidence"], rel=1e-9)
    # and not by luck: the row differs from ETH's neighbours and from what it would be without BTC
    assert not np.allclose(ds.X[at].to_numpy()[0], ds.X.to_numpy()[np.flatnonzero(at)[0] - 2])


def test_a_missing_market_candle_is_a_503_naming_it(setup: dict, trained: Trained, base_url: str) -> None:
    _store(trained, btc_upto=len(trained.candles["BTC-USDT"]) - CUT - 1)  # BTC one candle behind ETH
    setup["saved"] = save(trained, setup["name"])
    get_cache().reload("test")

    r = _post(base_url, setup, "ETH-USDT")

    assert r.status_code == 503, r.text
    detail = r.text
    missing_ts = pd.Timestamp(int(trained.candles["BTC-USDT"]["ts"].iloc[-CUT - 1]), unit="ms", tz="UTC")
    assert "BTC-USDT" in detail and missing_ts.isoformat() in detail
    # BTC's own answer needs ETH's candles at BTC's times too (the cross-section): those are there
    assert _post(base_url, setup, "BTC-USDT").status_code == 200


def test_candles_in_the_body_read_the_stored_market_candles_at_their_times(setup: dict, trained: Trained,
                                                                           base_url: str) -> None:
    _store(trained, btc_upto=len(trained.candles["BTC-USDT"]) - CUT)
    setup["saved"] = save(trained, setup["name"])
    get_cache().reload("test")
    stored = _post(base_url, setup, "ETH-USDT").json()
    columns = ["ts", "open", "high", "low", "close", "volume"]
    body = trained.candles["ETH-USDT"].iloc[-CUT - 400 : -CUT][columns]

    with httpx.Client(base_url=base_url, timeout=10) as http:
        r = http.post(f"/predict/{setup['saved']}",
                      json={"symbol": "ETH-USDT", "candles": body.to_dict("records")},
                      headers=setup["keys"]["predict"])
        later = trained.candles["ETH-USDT"].iloc[-400:][columns]
        beyond = http.post(f"/predict/{setup['saved']}",  # candles newer than any stored BTC-USDT candle
                           json={"symbol": "ETH-USDT", "candles": later.to_dict("records")},
                           headers=setup["keys"]["predict"])

    assert r.status_code == 200, r.text
    assert r.json()["direction"] == stored["direction"]
    assert r.json()["confidence"] == pytest.approx(stored["confidence"], rel=1e-9)
    assert beyond.status_code == 503 and "BTC-USDT" in beyond.text
