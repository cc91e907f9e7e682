"""The monitoring dashboard at /dashboard (DESIGN 11): server-rendered pages whose plots are drawn in the
browser by plotly.js from the JSON each page embeds; sign-in, operator actions and the live-cycle poll.

Sign-in is the browser's usual way: a form POSTs the API key once, the answer sets an HttpOnly,
SameSite=Strict session cookie (Secure over https) scoped to /dashboard, and the key itself is never in a
URL, a cookie or a log line (see app.services.dashboard.sessions). State-changing requests also need the
session's CSRF token in an `X-CSRF-Token` header. None of these routes is in the OpenAPI schema: they
serve people, not programs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Form, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app.api.schemas import CYCLE_ID_PATTERN, MODEL_REF_PATTERN
from app.core.errors import MLPipeError
from app.dashboard import TEMPLATES, asset
from app.services import cycle as cycles
from app.services.dashboard import actions, sessions
from app.services.dashboard.cycles import cycle_detail, cycles_page
from app.services.dashboard.models import model_page, models_page
from app.services.dashboard.overview import overview
from app.services.dashboard.replays import replays_page
from app.services.dashboard.serving import DEFAULT_RANGE, RANGES, serving_page
from app.services.dashboard.tuning import tuning_page

router = APIRouter(prefix="/dashboard", include_in_schema=False)

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_NAME = Path(max_length=128, pattern=MODEL_REF_PATTERN)
_CYCLE_ID = Path(max_length=64, pattern=CYCLE_ID_PATTERN)
NAV = (
    ("overview", "Overview", "/dashboard"),
    ("models", "Models", "/dashboard/models"),
    ("cycles", "Cycles", "/dashboard/cycles"),
    ("tuning", "Tuning", "/dashboard/tuning"),
    ("replays", "Replays", "/dashboard/replays"),
    ("serving", "Serving", "/dashboard/serving"),
)


def _viewer(request: Request) -> sessions.Viewer | None:
    return sessions.viewer_for(request.cookies.get(sessions.COOKIE_NAME))


def _render(request: Request, template: str, context: dict[str, Any], code: int = 200) -> Response:
    response = TEMPLATES.TemplateResponse(request, template, {"nav": NAV, **context}, status_code=code)
    response.headers.update(_HEADERS)
    return response


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard (no scheme, no host, no `//`): never an open redirect."""
    if not target or not target.startswith("/dashboard") or "//" in target or "\\" in target:
        return "/dashboard"
    return target


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/login?next={quote(target, safe='/')}", status.HTTP_303_SEE_OTHER)


async def _page(request: Request, page: str, template: str, load: Callable[[], dict[str, Any]]) -> Response:
    """A signed-in page: its data from the read model (off the event loop), or a readable error page."""
    viewer = await run_in_threadpool(_viewer, request)
    if viewer is None:
        return _login_redirect(request)
    context: dict[str, Any] = {"page": page, "viewer": viewer}
    try:
        data = await run_in_threadpool(load)
    except MLPipeError as exc:
        return _render(request, "error.html", {**context, "message": exc.message}, exc.status_code)
    except (SQLAlchemyError, RedisError) as exc:
        return _render(request, "error.html", {**context, "message": _down(exc)}, 503)
    return _render(request, template, {**context, "data": data})


def _down(exc: Exception) -> str:
    store = "the database" if isinstance(exc, SQLAlchemyError) else "Redis"
    return f"{store} is unreachable ({type(exc).__name__}); the page will work again once it answers"


@router.get("/login")
async def login_form(request: Request, next: str | None = Query(None, max_length=500)) -> Response:
    return _render(request, "login.html", {"page": "login", "next": _safe_next(next), "refused": False})


@router.post("/login")
async def login(
    request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/dashboard"
) -> Response:
    """Check the key, start a session, and go on; a wrong key gets the form again with 401."""
    started = await run_in_threadpool(sessions.sign_in, key)
    if started is None:
        context = {"page": "login", "next": _safe_next(next), "refused": True}
        return _render(request, "login.html", context, status.HTTP_401_UNAUTHORIZED)
    token, _viewer_ = started
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        sessions.COOKIE_NAME,
        token,
        max_age=sessions.SESSION_SECONDS,
        path=sessions.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await run_in_threadpool(sessions.sign_out, request.cookies.get(sessions.COOKIE_NAME))
    response = RedirectResponse("/dashboard/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(sessions.COOKIE_NAME, path=sessions.COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.get("")
async def overview_page(request: Request) -> Response:
    return await _page(request, "overview", "overview.html", overview)


@router.get("/models")
async def models_list_page(request: Request) -> Response:
    return await _page(request, "models", "models.html", models_page)


@router.get("/models/{name}")
async def one_model_page(request: Request, name: str = _NAME) -> Response:
    return await _page(request, "models", "model.html", lambda: model_page(name))


@router.get("/cycles")
async def cycles_list_page(
    request: Request, id: str | None = Query(None, max_length=64, pattern=CYCLE_ID_PATTERN)
) -> Response:
    return await _page(request, "cycles", "cycles.html", lambda: cycles_page(id))


@router.get("/tuning")
async def tuning_list_page(request: Request) -> Response:
    return await _page(request, "tuning", "tuning.html", tuning_page)


@router.get("/replays")
async def replays_list_page(request: Request) -> Response:
    return await _page(request, "replays", "replays.html", replays_page)


@router.get("/serving")
async def serving_list_page(request: Request, range: str = Query(DEFAULT_RANGE, max_length=8)) -> Response:
    chosen = range if range in RANGES else DEFAULT_RANGE
    return await _page(request, "serving", "serving.html", lambda: serving_page(chosen))


# --- JSON for the page's own scripts: the live cycle, and the operator actions ------------------------------


def _json(body: Any, code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


async def _call(request: Request, work: Callable[[], Any], *, operator: bool) -> JSONResponse:
    viewer = await run_in_threadpool(_viewer, request)
    if viewer is None:
        return _json({"detail": "signed out: sign in again at /dashboard/login"}, 401)
    if operator:
        if not viewer.is_operator:
            return _json(
                {"detail": "this action needs an operator key; you signed in with a predict key"}, 403
            )
        if not viewer.csrf_ok(request.headers.get("x-csrf-token")):
            return _json({"detail": "missing or stale X-CSRF-Token: reload the page and try again"}, 403)
    try:
        return _json(await run_in_threadpool(work))
    except cycles.CycleRunning as exc:
        return _json({"detail": exc.message, "id": exc.running_id}, 409)
    except MLPipeError as exc:
        return _json({"detail": exc.message}, exc.status_code)
    except (SQLAlchemyError, RedisError) as exc:
        return _json({"detail": _down(exc)}, 503)


@router.get("/api/cycles/{cycle_id}")
async def cycle_poll(request: Request, cycle_id: str = _CYCLE_ID) -> JSONResponse:
    """What the Cycles page polls while a cycle runs."""
    return await _call(request, lambda: cycle_detail(cycle_id), operator=False)


@router.post("/actions/cycle")
async def force_cycle(request: Request) -> JSONResponse:
    return await _call(request, actions.force_cycle, operator=True)


@router.post("/actions/models/{name}")
async def set_model_status(
    request: Request, name: str = _NAME, status_: str = Body(..., embed=True, alias="status", max_length=16)
) -> JSONResponse:
    return await _call(request, lambda: actions.set_model_status(name, status_), operator=True)


@router.post("/actions/tuning")
async def start_tuning(
    request: Request, definition: str = Body("", embed=True, max_length=120)
) -> JSONResponse:
    return await _call(request, lambda: actions.start_tuning(definition), operator=True)


@router.get("/static/{name}")
async def static_file(request: Request, name: str = Path(max_length=64)) -> Response:
    found = asset(name)
    if found is None:
        return Response(status_code=404)
    headers = {
        "ETag": found.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=31536000, immutable"
        if request.query_params.get("v") == found.version
        else "no-cache",
    }
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            found.gzipped, media_type=found.media_type, headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(found.body, media_type=found.media_type, headers=headers)
