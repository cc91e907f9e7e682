"""The dashboard in a real browser, against a real server after real cycles on simulated candles: every page
draws its plots from the stored history without a console error or a request off the machine; sign-in
works and a wrong key is refused; a predict key sees no operator action; an operator forces a cycle and
watches it to its end without a reload; actions ask for confirmation and work from the keyboard."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from app.core.db import session_scope
from app.services.models import list_models, set_status
from app.store.cache import get_cache
from app.tables.cycles import Cycle
from app.tables.models import ModelEvent
from tests.dashboard.stack import Stack

FINISHED = ("succeeded", "partial", "failed", "interrupted")
# The plots each page must draw from the stack's history (the others may show an empty state).
PAGES: dict[str, tuple[str, ...]] = {
    "overview": ("skill-plot", "age-plot", "accuracy-plot"),
    "models": ("leaderboard-plot",),
    "model": ("reliability-plot", "equity-plot", "psi-plot", "drift-plot", "events-plot"),
    "cycles": ("timeline-plot", "history-plot"),
    "tuning": (),
    "replays": (),
    "serving": ("served-plot", "volume-plot", "latency-plot", "live-accuracy-plot"),
}
PLOTS_DRAWN = """() => Object.fromEntries([...document.querySelectorAll('.plot-area')].map((el) => [el.id,
    el.dataset.empty ? 0 : (el.data || []).reduce((n, t) => n + ((t.x || t.y || []).length), 0)]))"""


def _drift_checked_direction_model() -> str:
    """The direction model the second cycle's drift check scored on unseen hours (it served until then).
    The champion may be the incumbent definition's fresh fit of that cycle, which nothing has checked yet."""
    direction = {r.name for r in list_models(kind="direction")}
    with session_scope() as session:
        checks = session.exec(
            select(ModelEvent)
            .where(ModelEvent.event.in_(("validated", "flagged")))
            .order_by(ModelEvent.id)
        ).all()
    checked = [e.model_name for e in checks if e.model_name in direction and e.numbers.get("feature_drift")]
    assert checked, "the second cycle checked no direction model for drift"
    return checked[-1]


def _path(page: str) -> str:
    if page == "overview":
        return "/dashboard"
    if page == "model":
        return f"/dashboard/models/{_drift_checked_direction_model()}"
    return f"/dashboard/{page}"


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_page_draws_its_plots_from_the_stored_history(
    visit: Any, stack: Stack, artifacts: Path, width: str
) -> None:
    v = visit(width, role="operator")
    timings = {}
    for page, required in PAGES.items():
        started = time.perf_counter()
        v.open(_path(page))
        timings[page] = round(time.perf_counter() - started, 3)
        drawn = v.page.evaluate(PLOTS_DRAWN)
        missing = [plot for plot in required if not drawn.get(plot)]
        assert not missing, f"{page}: no data drawn in {missing} (drawn: {drawn})"
        v.page.screenshot(path=str(artifacts / f"{page}-{width}.png"), full_page=True)
    v.clean()
    (artifacts / f"load-times-{width}.json").write_text(json.dumps(timings, indent=2))
    assert max(timings.values()) < 5.0, timings  # a loose guard; bench/dashboard.py measures properly


def test_plotted_numbers_are_the_stored_ones(visit: Any, stack: Stack) -> None:
    v = visit(role="predict")
    v.open("/dashboard")
    champions = {
        r.kind: r for r in list_models(status="active") if r.name in get_cache().snapshot.champions.values()
    }
    plotted = v.page.evaluate(
        "() => { const t = document.getElementById('skill-plot').data[0]; "
        "return Object.fromEntries(t.x.map((k, i) => [k, t.y[i]])); }"
    )
    assert plotted == pytest.approx({k: r.performance["skill"] for k, r in champions.items()})

    name = _drift_checked_direction_model()
    v.open(f"/dashboard/models/{name}")
    with session_scope() as session:
        checks = session.exec(
            select(ModelEvent).where(
                ModelEvent.model_name == name, ModelEvent.event.in_(("validated", "flagged"))
            )
        ).all()
    stored = [e for e in checks if e.numbers.get("feature_drift")][-1].numbers["feature_drift"]
    psi = v.page.evaluate(
        "() => { const t = document.getElementById('psi-plot').data[0]; "
        "return Object.fromEntries(t.y.map((f, i) => [f, t.x[i]])); }"
    )
    assert psi == pytest.approx({f: d["psi"] for f, d in stored.items()})
    v.clean()


def test_tuning_and_replays_say_plainly_that_there_is_nothing_yet(visit: Any, stack: Stack) -> None:
    v = visit(role="operator")
    v.open("/dashboard/tuning")
    assert "No tuning studies yet" in v.page.inner_text("#studies")
    start = v.page.locator("[data-action='start-tuning']")
    assert start.is_enabled(), "an operator can start a study (the tuning service is installed)"
    assert v.page.locator("#tuning-unavailable").count() == 0
    v.open("/dashboard/replays")
    assert "No replays yet" in v.page.inner_text("#replays")
    v.clean()


def test_a_wrong_key_is_refused_and_starts_no_session(visit: Any, stack: Stack) -> None:
    v = visit()
    v.open("/dashboard/login", ready=False)
    v.page.fill("#key", "mlp_" + "x" * 43)
    with v.page.expect_response(
        lambda r: r.url.endswith("/dashboard/login") and r.request.method == "POST"
    ) as got:
        v.page.click("form[action='/dashboard/login'] button[type=submit]")
    assert got.value.status == 401
    assert "not accepted" in v.page.inner_text("#login-error")
    assert not v.context.cookies()
    v.open("/dashboard", ready=False)
    assert v.page.url.startswith(f"{stack.url}/dashboard/login?next=/dashboard")
    assert not v.blocked
    assert v.errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]


def test_a_predict_key_sees_every_page_but_no_operator_action(visit: Any, stack: Stack) -> None:
    v = visit()
    page = v.sign_in(stack.keys["predict"])
    assert page.url == f"{stack.url}/dashboard"
    assert page.inner_text(".role") == "predict"
    assert page.locator("[data-operator], [data-action], dialog#confirm").count() == 0
    for name in PAGES:  # the pages as this browser session gets them: no action is even sent to it
        html = page.request.get(stack.url + _path(name)).text()
        assert "data-operator" not in html and "data-action" not in html and "<dialog" not in html, name
    refused = page.request.post(
        f"{stack.url}/dashboard/actions/cycle",
        data={},
        headers={"X-CSRF-Token": page.locator("meta[name=csrf-token]").get_attribute("content")},
    )
    assert refused.status == 403
    v.clean()


def test_sign_in_keeps_the_key_out_of_addresses_cookies_and_logs(
    visit: Any, stack: Stack, capfd: pytest.CaptureFixture[str]
) -> None:
    key = stack.keys["operator"]
    v = visit()
    v.sign_in(key)
    v.open("/dashboard/cycles")
    cookies = v.context.cookies()

    assert [c["name"] for c in cookies] == ["mlpipe_dashboard"]
    session = cookies[0]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/dashboard"
    assert key not in session["value"]
    assert not v.page.evaluate("() => document.cookie"), "the session cookie must be invisible to scripts"
    assert not any(key in url for url in v.urls + [v.page.url])
    out, err = capfd.readouterr()
    assert "dashboard_signed_in" in out + err, "the server's log was not captured"
    assert key not in out + err and key[4:20] not in out + err
    # the cookie, not the key, is what later requests carry; signing out ends the session at once
    with httpx.Client(base_url=stack.url, cookies={session["name"]: session["value"]}) as http:
        assert http.get("/dashboard/models", follow_redirects=False).status_code == 200
        v.page.click("form[action='/dashboard/logout'] button")
        v.page.wait_for_url("**/dashboard/login")
        assert http.get("/dashboard/models", follow_redirects=False).status_code == 303
    v.clean()


def test_an_action_waits_for_confirmation_and_escape_cancels_it(visit: Any, stack: Stack) -> None:
    v = visit(role="operator")
    v.open("/dashboard/cycles")
    with session_scope() as session:
        before = len(session.exec(select(Cycle.id)).all())
    v.page.click("[data-action='force-cycle']")
    dialog = v.page.locator("dialog#confirm")
    assert dialog.is_visible() and "Force a cycle" in dialog.inner_text()
    assert v.page.evaluate("() => document.activeElement.value") == "cancel", "Cancel has the focus"
    v.page.keyboard.press("Escape")
    assert not dialog.is_visible()
    time.sleep(0.3)
    with session_scope() as session:
        assert len(session.exec(select(Cycle.id)).all()) == before
    v.clean()


def test_an_operator_archives_and_reactivates_a_model_with_the_keyboard(visit: Any, stack: Stack) -> None:
    # an archived model if the ranking archived one, else a candidate: both may be activated by hand; when
    # the ranking only superseded the others (the fresh fits took over), one of those is archived first
    found = list_models(status="archived") or list_models(status="candidate")
    if not found:
        superseded = list_models(status="superseded")
        assert superseded, "the two cycles left no model outside the active set"
        found = [set_status(superseded[0].name, "archived", reason="test: archived to reactivate by hand")]
    target = found[0]
    v = visit(role="operator")
    v.open(f"/dashboard/models/{target.name}")
    page = v.page

    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    for _ in range(40):  # Tab along the page to the action, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.status") == "active":
            break
    else:
        pytest.fail("the Activate button cannot be reached with Tab")
    page.keyboard.press("Enter")
    assert page.locator("dialog#confirm").is_visible()
    page.keyboard.press("Tab")  # Cancel -> Confirm
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("h1 .badge").first.inner_text() == "active"
    assert [e.event for e in _events(target.name)][-1] == "promoted"

    page.click("[data-action='set-status'][data-status='archived']")
    with page.expect_navigation():
        page.click("#confirm-ok")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("h1 .badge").first.inner_text() == "archived"
    assert list_models(status="archived") and target.name in {r.name for r in list_models(status="archived")}
    v.clean()


def _events(name: str) -> list[ModelEvent]:
    with session_scope() as session:
        return list(
            session.exec(select(ModelEvent).where(ModelEvent.model_name == name).order_by(ModelEvent.id))
        )


def test_a_cycle_forced_from_the_page_is_followed_live_until_it_ends(
    visit: Any, stack: Stack, artifacts: Path
) -> None:
    v = visit(role="operator")
    v.open("/dashboard/cycles")
    page = v.page
    page.evaluate("() => { window.__samePage = true; }")

    page.click("[data-action='force-cycle']")
    page.click("#confirm-ok")
    page.wait_for_function(
        "() => ['queued', 'running'].includes(document.getElementById('cycle-status').dataset.status)"
    )
    cycle_id = page.locator("#cycle-detail").get_attribute("data-cycle")
    assert cycle_id and cycle_id not in stack.cycles
    page.screenshot(path=str(artifacts / "cycle-live-desktop.png"), full_page=True)
    page.wait_for_function(
        f"() => {json.dumps(FINISHED)}.includes(document.getElementById('cycle-status').dataset.status)",
        timeout=120_000,
    )

    assert page.evaluate("() => window.__samePage") is True, "the page reloaded instead of updating"
    seen = page.evaluate("() => window.__cycleStates")
    assert any(s.split("/")[0] in ("queued", "running") for s in seen), seen
    assert len(seen) >= 2 and seen[-1] == "succeeded/done", seen
    with session_scope() as session:
        stored = session.get(Cycle, cycle_id)
        assert stored is not None and stored.status == "succeeded"
        built = {n for n, p in stored.progress.items() if p.get("state") == "succeeded"}
    shown = set(
        page.eval_on_selector_all(
            "#progress-body tr[data-state='succeeded'] th", "ths => ths.map(t => t.textContent)"
        )
    )
    assert shown == built
    assert page.evaluate(PLOTS_DRAWN)["timeline-plot"] > 0
    page.screenshot(path=str(artifacts / "cycle-finished-desktop.png"), full_page=True)
    v.clean()


def _study() -> dict[str, Any]:
    """A study in the shape app.services.dashboard.tuning documents (the tuning service fills it later)."""
    values = [0.004, -0.01, None, 0.012, 0.009, 0.015, None, 0.011]
    states = ["complete", "complete", "pruned", "complete", "complete", "complete", "fail", "complete"]
    return {
        "id": "st_0001",
        "definition": "direction_predictor",
        "kind": "direction",
        "status": "finished",
        "trigger": "api",
        "started_ts": "2026-11-30T10:00:00+00:00",
        "finished_ts": "2026-11-30T10:20:00+00:00",
        "budget": {"trials": 8, "seconds": 1800},
        "objective": "walk-forward skill (train part only)",
        "trials": [
            {
                "number": n,
                "state": s,
                "value": v,
                "started_ts": "2026-11-30T10:00:00+00:00",
                "finished_ts": None,
                "params": {"max_depth": 3 + n % 4},
            }
            for n, (s, v) in enumerate(zip(states, values, strict=True))
        ],
        "adopted": {
            "decision": "adopted",
            "model": "direction_predictor_014",
            "reason": "better at 5%",
            "old_skill": 0.004,
            "new_skill": 0.015,
            "p_value": 0.03,
        },
    }


def _replay() -> dict[str, Any]:
    """A replay report in the shape app.services.dashboard.replays documents."""
    ts = [f"2026-11-{day:02d}T00:00:00+00:00" for day in range(1, 11)]
    ramp = [round(0.001 * i, 4) for i in range(10)]
    return {
        "id": "rp_0001",
        "status": "finished",
        "created_ts": ts[0],
        "finished_ts": ts[-1],
        "window": {"start": ts[0], "end": ts[-1]},
        "cycles": 10,
        "kinds": {
            kind: {
                "ts": ts,
                "model": ramp,
                "baselines": {"last_move": [0.0] * 10},
                "policies": {"freeze_first": [x / 2 for x in ramp], "newest": ramp},
                "final": {"skill": ramp[-1], "interval": [-0.002, 0.02]},
            }
            for kind in ("direction", "risk")
        },
    }


def test_tuning_and_replays_draw_the_documented_shapes(visit: Any, stack: Stack, artifacts: Path) -> None:
    from app.services.dashboard.tuning import study_view

    v = visit(role="predict")
    v.open("/dashboard/tuning")
    v.page.evaluate(
        "(d) => { mlpipeDashboard.renderStudies(d); return Promise.all(mlpipeDashboard.pending); }",
        {"studies": [study_view(_study())]},
    )
    drawn = v.page.evaluate(PLOTS_DRAWN)
    assert drawn == {"study-plot-0": 6 + 8}, drawn  # the finished trials' values and the best-so-far line
    assert "Adopted:" in v.page.inner_text("#studies")
    v.page.screenshot(path=str(artifacts / "tuning-shape-desktop.png"), full_page=True)
    v.open("/dashboard/replays")
    v.page.evaluate(
        "(d) => { mlpipeDashboard.renderReplays(d); return Promise.all(mlpipeDashboard.pending); }",
        {"replays": [_replay()]},
    )
    drawn = v.page.evaluate(PLOTS_DRAWN)
    assert set(drawn) == {"replay-0-0", "replay-0-1"} and all(n == 40 for n in drawn.values()), drawn
    v.page.screenshot(path=str(artifacts / "replays-shape-desktop.png"), full_page=True)
    v.clean()
