"""The application factory: :func:`create_app` builds the FastAPI app for a :class:`ServeSettings`.

Start-up, in order: the snapshots are loaded when the app is created (a bad one fails at once, before a
port is bound); when the app starts (its lifespan), each model gets a batcher and worker thread, and a
background task warms the models up (backend, calibration against batch composition, latent
directions). ``/healthz`` answers at once, ``/readyz`` 200 only once every model is warm; model routes
wait for the warm-up. On shutdown the batchers finish their running batch and refuse the rest (503).

Routes outside ``/v1``: ``GET /`` (the web page), ``/static/...`` (its files, inside the package),
``/healthz``, ``/readyz``, ``/metrics`` (Prometheus text), and FastAPI's ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from deconvgan import __version__
from deconvgan.errors import DeconvganError
from deconvgan.serve.batcher import Batcher
from deconvgan.serve.metrics import CONTENT_TYPE, ServeMetrics
from deconvgan.serve.middleware import Guard
from deconvgan.serve.problems import ApiError, detail, validation_message
from deconvgan.serve.registry import ServedModel, load_models, warm_up
from deconvgan.serve.routes import router
from deconvgan.serve.settings import ServeSettings

log = logging.getLogger("deconvgan.serve")

PLACEHOLDER_PAGE = ("<!doctype html><meta charset=utf-8><title>deconvgan</title><h1>deconvgan serve</h1>"
                    "<p>The web page is not installed; the API is at <a href=/docs>/docs</a>.</p>")


def _static_dir() -> Any:
    """The page's folder inside the installed package (importlib.resources: works from a wheel too)."""
    return importlib.resources.files("deconvgan.serve").joinpath("static")


def _page() -> bytes:
    index = _static_dir().joinpath("index.html")
    return index.read_bytes() if index.is_file() else PLACEHOLDER_PAGE.encode()


async def _warm_all(app: FastAPI) -> None:
    state = app.state
    try:
        for model in state.models.values():
            await asyncio.to_thread(warm_up, model, state.settings)
    except Exception as exc:  # a model that cannot warm up: /readyz says why, model routes answer 503
        state.failure = f"{type(exc).__name__}: {exc}"
        log.exception("warm-up failed")
    state.ready.set()


def _start_batchers(app: FastAPI) -> None:
    state, settings = app.state, app.state.settings
    for model in state.models.values():
        model.batcher = Batcher(_runner(model), max_batch=settings.max_batch, max_delay_s=settings.max_delay_s,
                                max_pending=settings.max_pending, name=model.name,
                                observe_batch=state.metrics.batch_observer(model.name), lock=state.compute_lock)
        state.metrics.track_queue(model.name, lambda m=model: m.batcher.pending if m.batcher else 0)
        model.batcher.start()


def _runner(model: ServedModel):
    def run(latents, labels):
        return model.backend.images(latents, labels)  # set by the warm-up, which requests wait for

    return run


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _start_batchers(app)
    warming = asyncio.create_task(_warm_all(app))
    try:
        yield
    finally:
        if not warming.done():
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
        for model in app.state.models.values():  # finish running batches, refuse the queued ones
            if model.batcher is not None:
                await asyncio.to_thread(model.batcher.stop)
                model.batcher = None


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        field, message = validation_message(errors[0]) if errors else (None, "invalid request")
        return JSONResponse(detail(message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode (not UTF-8): bad input, 422
            return JSONResponse(detail("the body is not valid JSON: send UTF-8 JSON with Content-Type: "
                                       "application/json"), status_code=422)
        if exc.status_code == 404:
            message = "no such route: see /docs for the API"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed here: see /docs for the API"
        else:
            message = str(exc.detail)
        return JSONResponse(detail(message), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(DeconvganError)
    async def bad_value(request: Request, exc: DeconvganError) -> JSONResponse:
        return JSONResponse(detail(str(exc)), status_code=422)


def create_app(settings: ServeSettings) -> FastAPI:
    """The FastAPI application serving ``settings.snapshots``; loads them now (one-line errors for bad ones).

    Run it with any ASGI server (``deconvgan serve`` uses uvicorn); its lifespan must run, which starts
    the batchers and the warm-up.
    """
    models = load_models(settings)
    if settings.threads is not None:
        import torch

        torch.set_num_threads(settings.threads)
    app = FastAPI(title="deconvgan", version=__version__, lifespan=_lifespan,
                  description="Images, interpolations, latent directions and texture tiles from trained GANs.")
    app.state.settings, app.state.models = settings, models
    app.state.metrics = ServeMetrics()
    app.state.ready, app.state.failure = asyncio.Event(), None
    app.state.compute_lock = threading.Lock()  # one generator call at a time over all models: they share cores
    _error_handlers(app)
    page = _page()

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", summary="liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="readiness: every model loaded and warmed up")
    async def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        if state.failure is not None:
            return JSONResponse({"status": "failed", "message": state.failure}, status_code=503)
        if not state.ready.is_set():
            return JSONResponse({"status": "warming up", "models": []}, status_code=503)
        return JSONResponse({"status": "ready", "models": list(state.models)})

    @app.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(router)
    if _static_dir().is_dir():
        app.mount("/static", StaticFiles(packages=[("deconvgan.serve", "static")]), name="static")
    app.add_middleware(Guard, routes=app.router.routes, metrics=app.state.metrics, token=settings.token,
                       max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # outermost: preflights are answered here, and errors carry CORS headers too
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "If-None-Match"],
                           expose_headers=["ETag"])
    return app
