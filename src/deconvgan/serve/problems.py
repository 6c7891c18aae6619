"""HTTP errors as one JSON shape: ``{"detail": {"field": name|null, "limit": number|null, "message": one line}}``.

Every answer to bad input goes through :class:`ApiError` or the handlers in :mod:`deconvgan.serve.app`, so
a client (and the web page) reads one shape for 401, 404, 413, 422, 429 and 503 alike.
"""

from __future__ import annotations

from typing import Any

# What each request field must be, for validation messages (pydantic's own are about Python types).
FIELD_HELP = {
    "seeds": 'a string of seeds and ranges like "0-3,7", or a list of integers',
    "latents": "a list of latent vectors (lists of numbers)",
    "truncation": "a number > 0 or null",
    "class": "a class name or id, or null",
    "format": "one of the listed formats",
    "frames": "an integer >= 1",
    "seed": "an integer in [0, 2^63)",
    "z": "an integer zoom level in -2..2",
    "x": "an integer tile column",
    "y": "an integer tile row",
}


class ApiError(Exception):
    """An HTTP error answer: ``status`` with a one-line ``message``, the ``field`` it concerns and the ``limit``
    that was exceeded, when there is one."""

    def __init__(self, status: int, message: str, *, field: str | None = None, limit: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.limit = status, message, field, limit
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return detail(self.message, self.field, self.limit)


def detail(message: str, field: str | None = None, limit: float | None = None) -> dict[str, Any]:
    """``{"detail": {...}}`` with ``message`` kept to one line."""
    line = " ".join(str(message).split())
    return {"detail": {"field": field, "limit": limit, "message": line}}


def unknown_model(name: str, known: list[str]) -> ApiError:
    """404 for a model name that is not served (the name is only ever a dict key)."""
    shown = repr(name[:64]) + ("..." if len(name) > 64 else "")
    return ApiError(404, f"no model named {shown}: this server has {', '.join(known) or 'none'} "
                         "(GET /v1/models lists them)", field="name")


def validation_message(error: dict[str, Any]) -> tuple[str | None, str]:
    """(field, one-line message) for one pydantic/FastAPI validation error."""
    loc = [part for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    field = str(loc[0]) if loc else None
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return field, f"unknown field {field!r}: remove it (GET /docs lists the fields)"
    if kind in ("json_invalid", "json_type"):
        return None, "the body is not valid JSON: send a JSON object with Content-Type: application/json"
    if kind == "missing":
        return field, f"{field} is required"
    if kind == "model_attributes_type" or (kind.endswith("_type") and field is None):
        return None, "the body must be a JSON object"
    given = error.get("input")
    shown = repr(given)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    expected = FIELD_HELP.get(field or "", (error.get("msg") or "invalid").lower())
    return field, f"{field} {shown}: must be {expected}"
