"""Request bodies of the POST routes: pydantic models, strict (no silent type coercion) and closed
(``extra="forbid"``: an unknown field is a 422 naming it, not silently ignored)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ImagesRequest(BaseModel):
    """``POST /v1/models/{name}/images``: exactly one of ``seeds`` and ``latents``.

    ``format``: ``png`` (one image), ``grid`` (one PNG grid, as ``deconvgan sample --grid``) or ``npy``
    (``numpy.save`` bytes of a uint8 array [N, H, W, C]).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    seeds: str | list[int] | None = Field(None, description='seeds and ranges, "0-3,7", or a list of integers')
    latents: list[list[float]] | None = Field(None, description="explicit latent vectors [N][latent_dim]")
    truncation: float | None = Field(None, description="truncated-normal latents on [-t, t] (seeds only)")
    class_: str | int | None = Field(None, alias="class", description="class name or id (conditional models)")
    format: Literal["png", "npy", "grid"] = "png"


class InterpolateRequest(BaseModel):
    """``POST /v1/models/{name}/interpolate``: a slerp path through ``seeds``, ``frames`` per step.

    ``format``: ``strip`` (one PNG row of frames), ``gif`` (looping, 80 ms a frame) or ``frames`` (JSON
    ``{"frames": [data URLs of PNGs]}``).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    seeds: list[int] = Field(description="two or more seeds, visited in order")
    frames: int = Field(12, description="frames per step between consecutive seeds")
    truncation: float | None = None
    class_: str | int | None = Field(None, alias="class")
    format: Literal["strip", "gif", "frames"] = "strip"
