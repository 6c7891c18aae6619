"""The versioned API, ``/v1``: models, images, latents, interpolation, directions, texture tiles.

Handlers validate (422 naming the field), look the model up by name (404), wait until the models are
warmed (503 after the request timeout), then hand the generator work to the model's batcher, which runs
it on its worker thread. Deterministic GET answers (an image of a seed, a tile) carry a strong ETag and
``Cache-Control: immutable`` and answer ``If-None-Match`` with 304 before any work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import torch
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from deconvgan.images import display_scale
from deconvgan.serve import render
from deconvgan.serve.batcher import Busy, ShuttingDown
from deconvgan.serve.encode import data_url, gif_bytes, grid_png, make_etag, npy_bytes, pixels_png, png_bytes
from deconvgan.serve.problems import ApiError, unknown_model
from deconvgan.serve.registry import ServedModel
from deconvgan.serve.schemas import ImagesRequest, InterpolateRequest

IMMUTABLE = "public, max-age=31536000, immutable"  # a year: the bytes of a given ETag never change
NPY_TYPE = "application/x-npy"

router = APIRouter(prefix="/v1")


# --- helpers ---------------------------------------------------------------------------------------


async def ensure_ready(request: Request) -> None:
    """Wait for the warm-up (backends, directions); 503 if it failed or outlasts the request timeout."""
    state = request.app.state
    if not state.ready.is_set():
        try:
            await asyncio.wait_for(asyncio.shield(state.ready.wait()), state.settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(503, "the models are still warming up: retry shortly (GET /readyz says when)",
                           headers={"Retry-After": "1"}) from None
    if state.failure is not None:
        raise ApiError(503, f"the server failed to warm up: {state.failure}")


async def get_model(request: Request, name: str) -> ServedModel:
    """The model called ``name`` (a dict lookup: names never reach the file system), warmed; else 404/503."""
    models = request.app.state.models
    model = models.get(name)
    if model is None:
        raise unknown_model(name, list(models))
    await ensure_ready(request)
    return model


def _image_model(model: ServedModel, what: str) -> None:
    if model.is_texture:
        raise ApiError(404, f"model {model.name} is a texture model (latent fields, not vectors): {what} exist for "
                            "whole-image models; texture models have tiles", field="name")


async def _queued(request: Request, model: ServedModel, work: Any) -> Any:
    """Await a batcher submission, turning its refusals into 429 / 503."""
    settings = request.app.state.settings
    try:
        return await work
    except Busy:
        raise ApiError(429, f"too many requests pending for model {model.name} (limit {settings.max_pending}): "
                            "retry shortly", limit=settings.max_pending, headers={"Retry-After": "1"}) from None
    except asyncio.TimeoutError:
        raise ApiError(503, f"not answered within the request timeout of {settings.request_timeout_s:g} s",
                       limit=settings.request_timeout_s) from None
    except ShuttingDown:
        raise ApiError(503, "the server is shutting down") from None


async def generate(request: Request, model: ServedModel, latents: torch.Tensor,
                   labels: torch.Tensor | None) -> torch.Tensor:
    """uint8 [N, C, H, W] from the model's batcher (merged with concurrent requests)."""
    timeout = request.app.state.settings.request_timeout_s
    return await _queued(request, model, model.batcher.generate(latents, labels, timeout_s=timeout))


async def call(request: Request, model: ServedModel, fn: Callable[[], Any]) -> Any:
    """``fn()`` on the model's worker thread, alone (texture windows)."""
    timeout = request.app.state.settings.request_timeout_s
    return await _queued(request, model, model.batcher.call(fn, timeout_s=timeout))


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    tags = [t.strip().removeprefix("W/") for t in given.split(",")]
    return "*" in tags or etag in tags


def _cached(request: Request, etag: str) -> Response | None:
    if _not_modified(request, etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    return None


def _png(body: bytes, etag: str | None = None) -> Response:
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE} if etag else {}
    return Response(body, media_type="image/png", headers=headers)


# --- routes ----------------------------------------------------------------------------------------


@router.get("/models", summary="the served models")
async def list_models(request: Request) -> dict[str, Any]:
    await ensure_ready(request)
    return {"models": [m.describe() for m in request.app.state.models.values()]}


@router.get("/models/{name}/images/{seed}.png", summary="one image of a seed (PNG, cacheable)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def image_of_seed(request: Request, name: str, seed: int,
                        truncation: float | None = Query(None, description="truncated-normal latent on [-t, t]"),
                        class_: str | None = Query(None, alias="class", description="class name or id")) -> Response:
    model = await get_model(request, name)
    render.check_truncation(model, truncation)
    class_id = render.resolve_class(model, class_)
    render.check_seed(seed)
    seeds = [seed]
    etag = make_etag("image", model.name, model.checksum, model.backend_name, seed, truncation, class_id)
    if (cached := _cached(request, etag)) is not None:
        return cached
    if model.is_texture:
        images = await call(request, model, lambda: render.texture_images(model, seeds, class_id))
    else:
        images = await generate(request, model, *render.seed_inputs(model, seeds, truncation, class_id))
    return _png(png_bytes(images[0]), etag)


@router.get("/models/{name}/latents", summary="the latent vectors of seeds")
async def latents_of_seeds(request: Request, name: str,
                           seeds: str = Query(description='seeds and ranges, e.g. "0-3,7"'),
                           truncation: float | None = Query(None)) -> dict[str, Any]:
    model = await get_model(request, name)
    _image_model(model, "latent vectors")
    render.check_truncation(model, truncation)
    chosen = render.parse_seed_field(seeds, request.app.state.settings.max_images_per_request)
    z, _ = render.seed_inputs(model, chosen, truncation, None)
    return {"seeds": chosen, "latents": z.tolist()}


@router.post("/models/{name}/images", summary="images of seeds or latents: png, grid or npy",
             response_class=Response, responses={200: {"content": {"image/png": {}, NPY_TYPE: {}}}})
async def images(request: Request, name: str, body: ImagesRequest) -> Response:
    model = await get_model(request, name)
    limit = request.app.state.settings.max_images_per_request
    if (body.seeds is None) == (body.latents is None):
        raise ApiError(422, "give exactly one of seeds and latents", field="seeds")
    render.check_truncation(model, body.truncation)
    class_id = render.resolve_class(model, body.class_)
    if body.latents is not None:
        if model.is_texture:
            raise ApiError(422, f"model {model.name} is a texture model: it draws from seeds, not latent vectors",
                           field="latents")
        if body.truncation is not None:
            raise ApiError(422, "truncation applies to seeds; latents are used as given: drop it", field="truncation")
        inputs = render.explicit_inputs(model, body.latents, class_id, limit)
        count = inputs[0].shape[0]
    else:
        seeds = render.parse_seed_field(body.seeds, limit)
        count = len(seeds)
    if body.format == "png" and count != 1:
        raise ApiError(422, f"format png is one image; {count} were asked for: use grid or npy", field="format",
                       limit=1)
    if model.is_texture:
        pixels = await call(request, model, lambda: render.texture_images(model, seeds, class_id))
    else:
        if body.latents is None:
            inputs = render.seed_inputs(model, seeds, body.truncation, class_id)
        pixels = await generate(request, model, *inputs)
    if body.format == "png":
        return _png(png_bytes(pixels[0]))
    if body.format == "grid":  # as deconvgan sample --grid: square-ish, enlarged to be visible
        scale = display_scale(model.info.model.resolution)
        return _png(await run_in_threadpool(grid_png, pixels, None, scale))
    return Response(await run_in_threadpool(npy_bytes, pixels), media_type=NPY_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{model.name}.npy"'})


@router.post("/models/{name}/interpolate", summary="a slerp interpolation between seeds: strip, gif or frames",
             response_class=Response, responses={200: {"content": {"image/png": {}, "image/gif": {}}}})
async def interpolate(request: Request, name: str, body: InterpolateRequest) -> Response:
    model = await get_model(request, name)
    _image_model(model, "interpolations")
    render.check_truncation(model, body.truncation)
    class_id = render.resolve_class(model, body.class_)
    limit = request.app.state.settings.max_frames
    inputs = render.interpolation_inputs(model, body.seeds, body.frames, body.truncation, class_id, limit)
    frames = await generate(request, model, *inputs)  # [F, C, H, W]
    scale = display_scale(model.info.model.resolution)
    if body.format == "strip":  # deconvgan interpolate's PNG: one row
        return _png(await run_in_threadpool(grid_png, frames, len(frames), scale))
    if body.format == "gif":
        return Response(await run_in_threadpool(gif_bytes, frames, scale), media_type="image/gif")
    urls = await run_in_threadpool(lambda: [data_url(png_bytes(f)) for f in frames])
    return JSONResponse({"frames": urls})


@router.get("/models/{name}/directions", summary="GANSpace latent directions (unit vectors, scales, variance)")
async def directions(request: Request, name: str) -> dict[str, Any]:
    model = await get_model(request, name)
    _image_model(model, "latent directions")
    if model.directions is None:
        raise ApiError(404, f"model {model.name} has no latent directions: the server runs with --directions 0",
                       field="name")
    d = model.directions
    return {"directions": d.vectors.tolist(), "scales": d.scales.tolist(),
            "explained_variance": d.explained_variance.tolist()}


@router.get("/models/{name}/tiles/{z}/{x}/{y}.png", summary="a 256-pixel map tile of an unbounded texture",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def tile(request: Request, name: str, z: int, x: int, y: int,
               seed: int = Query(0, description="the texture's seed"),
               class_: str | None = Query(None, alias="class", description="class-conditional texture models: "
                                          "class name or id (default: class 0)")) -> Response:
    model = await get_model(request, name)
    if not model.is_texture:
        raise ApiError(404, f"model {model.name} is not a texture model; tiles exist for arch=spatial",
                       field="name")
    render.check_tile(z, x, y, seed)
    class_id = render.resolve_class(model, class_)
    if class_id is None and model.info.model.num_classes:
        class_id = 0  # a conditional texture is always of one class; the map opens on the first
    etag = make_etag("tile", model.name, model.checksum, seed, z, x, y, class_id)
    if (cached := _cached(request, etag)) is not None:
        return cached
    body = await call(request, model, lambda: pixels_png(render.tile_pixels(model, seed, z, x, y, class_id)))
    return _png(body, etag)
