"""``create_app``: the jobs service's REST API and page, under its service prefix.

POST   api/v1/jobs                 submit (201), 400/403 with the reason
GET    api/v1/jobs[?all=true]      your jobs (admins: everyone's with all=true)
GET    api/v1/jobs/{id}            one job (404 for another user's)
GET    api/v1/jobs/{id}/log        the end of its log, as text
POST   api/v1/jobs/{id}/cancel     stop it (202); 409 once it has ended
GET    /                           the page (hub OAuth sign-in), POST jobs to submit
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from jupyterhub.services.auth import HubOAuth
from pydantic import ValidationError

from tkhub.errors import TkhubError
from tkhub.jobs.auth import (
    STATE_COOKIE,
    TOKEN_COOKIE,
    authorize_redirect,
    finish_sign_in,
    requester,
)
from tkhub.jobs.models import Job
from tkhub.jobs.page import render_jobs_page
from tkhub.jobs.schemas import JobPublic, JobSubmit, parse_parameter
from tkhub.jobs.service import JobRefused, JobsService, Requester
from tkhub.selection import spawn_choices

log = logging.getLogger(__name__)
TICK_SECONDS = 0.5
RUNNING_TICK_SECONDS = 0.1  # a run's end is seen this soon (a liveness check, no more)
LOG_LIMIT = 256 * 1024
XSRF_COOKIE = "tkhub-jobs-xsrf"
Who = Annotated[Requester, Depends(requester)]


async def _queue_forever(app: FastAPI) -> None:
    service: JobsService = app.state.jobs
    loop = asyncio.get_running_loop()
    woken, last_start = True, 0.0
    while True:
        busy = False
        start_queued = woken or loop.time() - last_start >= TICK_SECONDS
        try:
            busy = await service.tick(start_queued)
        except Exception:
            log.exception("jobs queue")
        if start_queued:
            last_start = loop.time()
        try:
            await asyncio.wait_for(
                app.state.wake.wait(), RUNNING_TICK_SECONDS if busy else TICK_SECONDS
            )
            woken = True
        except TimeoutError:
            woken = False
        app.state.wake.clear()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.wake = asyncio.Event()
    task = asyncio.create_task(_queue_forever(app))
    try:
        yield
    finally:
        task.cancel()


def _refused(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, JobRefused)
    return JSONResponse({"detail": error.message}, status_code=error.status)


def _invalid(_request: Request, error: Exception) -> JSONResponse:
    """A body that does not fit: 400 naming the field, as the spawn API does."""
    assert isinstance(error, RequestValidationError | ValidationError)
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return JSONResponse({"detail": f"{where}: {first['msg']}"}, status_code=400)


def api_router(service: JobsService) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post("/jobs", status_code=201)
    async def submit(
        body: JobSubmit, who: Who, request: Request, user: str | None = None
    ) -> JobPublic:
        job = await service.submit(who, body, owner=user)
        request.app.state.wake.set()
        return job

    @router.get("/jobs")
    async def listed(who: Who, all: bool = False) -> list[JobPublic]:  # noqa: A002 (the query name)
        return service.visible(who, everyone=all)

    @router.get("/jobs/{job_id}")
    async def one(job_id: int, who: Who) -> JobPublic:
        return service.one(who, job_id)

    @router.get("/jobs/{job_id}/log", response_class=PlainTextResponse)
    async def job_log(job_id: int, who: Who) -> str:
        service.one(who, job_id)  # 404 unless it is the caller's
        with service.sessions() as session:
            job = session.get(Job, job_id)
        assert job is not None
        return await asyncio.to_thread(service.runner.read_log, job, LOG_LIMIT)

    @router.post("/jobs/{job_id}/cancel", status_code=202)
    async def cancel(job_id: int, who: Who, request: Request) -> JobPublic:
        job = service.cancel(who, job_id)
        request.app.state.wake.set()
        return job

    return router


def job_from_form(form: dict[str, Any]) -> JobSubmit:
    """The page's form as a submit; ``ValueError`` naming what is wrong."""
    text = {k: str(v) for k, v in form.items()}
    lines = [line for line in text.get("parameters", "").splitlines() if line.strip()]
    hours = float(text.get("time_limit_hours") or 4)
    return JobSubmit(
        notebook=text.get("notebook", ""),
        image=text.get("image") or None,
        gpu=text.get("gpu") or None,
        count=int(text.get("count") or 1),
        size=text.get("size") or None,
        parameters=dict(parse_parameter(line) for line in lines),
        time_limit=max(1, int(hours * 3600)),
    )


async def render_page(
    request: Request, who: Requester, message: str = "", ok: bool = True
) -> HTMLResponse:
    service: JobsService = request.app.state.jobs
    prefix: str = request.app.state.prefix
    xsrf = request.cookies.get(XSRF_COOKIE) or secrets.token_urlsafe(24)
    everyone = who.admin and request.query_params.get("all") == "true"
    choices, unavailable = None, ""
    try:
        entries = await service.catalog()
        choices = spawn_choices(entries, await service.runner.inventory(),
                                user_groups=who.groups, admin=who.admin)  # fmt: skip
    except TkhubError as e:
        unavailable = e.user_message
    html = render_jobs_page(user=who.name, jobs=service.visible(who, everyone), choices=choices,
                            prefix=prefix, xsrf=xsrf, message=message, ok=ok,
                            everyone=everyone, unavailable=unavailable)  # fmt: skip
    response = HTMLResponse(html)
    response.set_cookie(XSRF_COOKIE, xsrf, path=prefix, httponly=True, samesite="strict")
    return response


def checked_form(request: Request, form: dict[str, Any]) -> None:
    """The form carries the page's own token (double submit; cookies are SameSite too)."""
    sent, kept = str(form.get("_xsrf", "")), request.cookies.get(XSRF_COOKIE, "")
    if not kept or not secrets.compare_digest(sent, kept):
        raise HTTPException(403, "the form is stale; reload the jobs page")


page = APIRouter()


@page.get("/")
async def home(request: Request) -> Any:
    prefix = request.app.state.prefix
    try:
        who = await requester(request)
    except HTTPException as e:
        if e.status_code != 401 or request.headers.get("authorization"):
            raise
        url, state = authorize_redirect(request.app.state.hub_auth)
        response = RedirectResponse(url, status_code=302)
        response.set_cookie(STATE_COOKIE, state, path=prefix, httponly=True, samesite="lax")
        return response
    return await render_page(request, who)


@page.get("/oauth_callback")
async def oauth_callback(request: Request, code: str = "", state: str = "") -> RedirectResponse:
    prefix = request.app.state.prefix
    token = await finish_sign_in(request.app.state.hub_auth, code, state,
                                 request.cookies.get(STATE_COOKIE, ""))  # fmt: skip
    response = RedirectResponse(prefix, status_code=302)
    response.set_cookie(TOKEN_COOKIE, token, path=prefix, httponly=True, samesite="lax")
    response.delete_cookie(STATE_COOKIE, path=prefix)
    return response


@page.post("/jobs")
async def submit_form(request: Request, who: Who) -> HTMLResponse:
    form = dict(await request.form())
    checked_form(request, form)
    try:
        job = await request.app.state.jobs.submit(who, job_from_form(form))
    except JobRefused as e:
        return await render_page(request, who, f"Not started: {e.message}", ok=False)
    except (ValueError, ValidationError) as e:
        return await render_page(request, who, f"Not started: {e}", ok=False)
    request.app.state.wake.set()
    return await render_page(request, who, f"Job {job.id} submitted: {job.reason}")


@page.post("/jobs/{job_id}/cancel")
async def cancel_form(job_id: int, request: Request, who: Who) -> HTMLResponse:
    checked_form(request, dict(await request.form()))
    try:
        request.app.state.jobs.cancel(who, job_id)
    except JobRefused as e:
        return await render_page(request, who, e.message, ok=False)
    request.app.state.wake.set()
    return await render_page(request, who, f"Job {job_id} is being cancelled.")


def create_app(service: JobsService, hub_auth: HubOAuth, prefix: str) -> FastAPI:
    """The app, every route under ``prefix`` (``/services/jobs/``)."""
    prefix = "/" + prefix.strip("/") + "/"
    app = FastAPI(title="tkhub jobs", lifespan=_lifespan, docs_url=f"{prefix}docs",
                  openapi_url=f"{prefix}openapi.json", redoc_url=None)  # fmt: skip
    app.state.jobs = service
    app.state.hub_auth = hub_auth
    app.state.prefix = prefix
    app.add_exception_handler(JobRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.include_router(api_router(service), prefix=prefix.rstrip("/"))
    app.include_router(page, prefix=prefix.rstrip("/"))

    @app.get(f"{prefix}health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
