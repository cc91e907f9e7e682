"""GET /stream/predictions over real HTTP (uvicorn, httpx-sse through `Client.stream`) while candles are
stored: an answer per symbol per closed candle, equal to the model's own; a resume with Last-Event-ID
answers every candle missed, without gaps or repeats; every pushed answer is logged for scoring."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.client import Client, ClientError
from app.data.candles import store_candles
from app.data.frames import candles_frame
from tests.api.ml_setup import Trained, api_keys, save

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
START = 2000  # candles stored before the stream opens; the rest arrive one by one


@pytest.fixture()
def stream_setup(trained: Trained, base_url: str) -> Iterator[dict]:
    from app.services.feature_rows import get_feature_rows
    from app.store.cache import get_cache

    get_feature_rows().clear()
    for symbol in SYMBOLS:
        store_candles(symbol, trained.candles[symbol].iloc[:START], "simulated")
    save(trained, "direction_small")
    get_cache().reload("test")
    key = api_keys()["predict"]["X-API-Key"]
    with Client(base_url, api_key=key) as client:
        yield {"client": client, "key": key}
    get_cache().reload("test")


def _close(trained: Trained, upto: int) -> None:
    """The candle at position `upto - 1` closes for every symbol (it is stored, as ingest stores it)."""
    for symbol in SYMBOLS:
        store_candles(symbol, trained.candles[symbol].iloc[upto - 1 : upto], "simulated")


def _own(trained: Trained, symbol: str, upto: int) -> dict:
    frame = candles_frame(trained.candles[symbol].iloc[:upto])
    return trained.models["direction_small"].predict(current_features=frame)


def _answer(event: dict) -> tuple:
    return event["data"]["direction"], event["data"]["confidence"]


def _ts(trained: Trained, position: int) -> int:
    return int(trained.candles["BTC-USDT"]["ts"].iloc[position])


def test_answers_are_pushed_as_candles_close_and_a_resume_has_no_gap(
    stream_setup: dict, trained: Trained
) -> None:
    from app.services.prediction_log import drain_predictions, get_prediction_log

    get_prediction_log().flush()
    drain_predictions()
    client = stream_setup["client"]
    stream = client.stream("direction", SYMBOLS, reconnect=False, read_timeout=20)
    first = [next(stream), next(stream)]
    assert [e["data"]["symbol"] for e in first] == SYMBOLS
    assert {e["id"] for e in first} == {f"{_ts(trained, START - 1)}:0", f"{_ts(trained, START - 1)}:1"}

    pushed = []
    for upto in (START + 1, START + 2):
        _close(trained, upto)
        pushed += [next(stream), next(stream)]
    stream.close()  # the client goes away after the candle at START + 1

    for event, (upto, symbol) in zip(pushed, [(u, s) for u in (START + 1, START + 2) for s in SYMBOLS],
                                     strict=True):
        assert event["event"] == "prediction" and event["data"]["symbol"] == symbol
        assert event["id"].split(":")[0] == str(_ts(trained, upto - 1))
        own = _own(trained, symbol, upto)
        assert _answer(event) == (own["direction"], own["confidence"])

    for upto in (START + 3, START + 4, START + 5):  # three candles close while nobody listens
        _close(trained, upto)
    resumed = client.stream("direction", SYMBOLS, last_event_id=pushed[-1]["id"], reconnect=False,
                            read_timeout=20)
    replay = [next(resumed) for _ in range(6)]
    resumed.close()

    assert [e["id"] for e in replay] == [
        f"{_ts(trained, upto - 1)}:{i}" for upto in (START + 3, START + 4, START + 5) for i in range(2)
    ]  # every missed candle, in order, none repeated
    for event in replay:
        upto = list(trained.candles["BTC-USDT"]["ts"]).index(int(event["id"].split(":")[0])) + 1
        own = _own(trained, event["data"]["symbol"], upto)
        assert _answer(event) == (own["direction"], own["confidence"])
    get_prediction_log().flush()
    assert drain_predictions() == len(first) + len(pushed) + len(replay)  # logged, so scored later


def test_a_resume_between_two_symbols_of_one_candle_gets_the_rest_of_it(
    stream_setup: dict, trained: Trained
) -> None:
    last = _ts(trained, START - 1)
    stream = stream_setup["client"].stream("direction", SYMBOLS, last_event_id=f"{last}:0", reconnect=False,
                                           read_timeout=20)
    event = next(stream)
    stream.close()

    assert event["id"] == f"{last}:1" and event["data"]["symbol"] == "ETH-USDT"


def test_bad_streams_are_refused_before_they_open(stream_setup: dict, base_url: str) -> None:
    key = {"X-API-Key": stream_setup["key"]}
    with httpx.Client(base_url=base_url, timeout=10) as http:
        no_key = http.get("/stream/predictions", params={"model": "direction", "symbols": "BTC-USDT"})
        bad_symbol = http.get(
            "/stream/predictions", params={"model": "direction", "symbols": "btc"}, headers=key
        )
        bad_id = http.get("/stream/predictions", params={"model": "direction", "symbols": "BTC-USDT"},
                          headers={**key, "Last-Event-ID": "yesterday"})
    assert no_key.status_code == 401
    assert bad_symbol.status_code == 422 and "symbols" in bad_symbol.json()["detail"]
    assert bad_id.status_code == 422 and "Last-Event-ID" in bad_id.json()["detail"]
    with pytest.raises(ClientError) as caught:
        next(stream_setup["client"].stream("nope_001", ["BTC-USDT"], reconnect=False))
    assert caught.value.status_code == 404


def test_a_symbol_without_candles_gets_one_error_event_and_the_others_still_answer(
    stream_setup: dict,
) -> None:
    stream = stream_setup["client"].stream("direction", ["DOGE-USDT", "BTC-USDT"], reconnect=False,
                                           read_timeout=20)
    events = [next(stream), next(stream)]
    stream.close()

    kinds = {e["event"]: e for e in events}
    assert kinds["error"]["data"]["symbol"] == "DOGE-USDT" and kinds["error"]["data"]["status"] == 404
    assert kinds["prediction"]["data"]["symbol"] == "BTC-USDT"
