"""The web page's files, without a browser: shipped in the package, served at / and /static/, self-contained.

The page must work offline (no CDN, no web fonts, nothing fetched from another host) and every element the
script looks up must exist; the browser test (test_browser.py) drives it for real.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import re
from html.parser import HTMLParser

import httpx
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")

from deconvgan.serve import ServeSettings  # noqa: E402
from deconvgan.serve.app import create_app  # noqa: E402

STATIC = importlib.resources.files("deconvgan.serve").joinpath("static")
FILES = {"index.html": "text/html", "app.js": "javascript", "style.css": "text/css"}


def text(name: str) -> str:
    return STATIC.joinpath(name).read_text(encoding="utf-8")


def test_the_page_fetches_nothing_from_other_hosts():
    for name in FILES:
        found = re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", text(name))
        assert found == [], f"{name} refers to another host: {found}"
    html = text("index.html")
    # its own files by relative URL, so the page also works behind a path prefix
    assert re.findall(r'(?:src|href)="([^"#]+)"', html) == ["data:,", "static/style.css", "static/app.js"]
    assert "@import" not in text("style.css") and "@font-face" not in text("style.css")


def test_every_element_the_script_looks_up_exists():
    ids = set(re.findall(r'\bid="([^"]+)"', text("index.html")))
    used = set(re.findall(r'\$\("([^"]+)"\)', text("app.js")))
    assert used, "the script looks elements up with $(id)"
    assert used - ids == set()
    # every form control has a label (around it, for= it, or aria-label): named for screen readers
    controls = Controls()
    controls.feed(text("index.html"))
    assert len(controls.found) >= 6
    unlabelled = [c for c, inside in controls.found.items() if not inside and c not in controls.label_for]
    assert unlabelled == []


class Controls(HTMLParser):
    """Each input/select id -> whether it sits inside a <label> or has an aria-label; the ids labels are for."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, bool] = {}
        self.label_for: set[str] = set()
        self.depth = 0  # open <label> elements

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "label":
            self.depth += 1
            if "for" in a:
                self.label_for.add(a["for"])
        elif tag in ("input", "select"):
            self.found[a["id"]] = self.depth > 0 or bool(a.get("aria-label"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.depth -= 1


def test_pixelated_rendering_for_small_images():
    css = text("style.css")
    assert ".pixelated { image-rendering: pixelated; }" in css
    assert re.search(r"\.tile \{[^}]*image-rendering: pixelated", css)


def test_the_server_serves_the_page(serve_snapshots):
    app = create_app(ServeSettings(snapshots={"digits": serve_snapshots["digits"]}, backend="torch"))

    async def fetch() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # no lifespan: the page needs no model
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            paths = ["/", *(f"/static/{name}" for name in FILES), "/static/../settings.py", "/static/%2e%2e/app.py"]
            return {path: await client.get(path) for path in paths}

    answers = asyncio.run(fetch())
    page = answers["/"]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == text("index.html")
    for name, kind in FILES.items():
        response = answers[f"/static/{name}"]
        assert response.status_code == 200, name
        assert kind in response.headers["content-type"]
        assert response.text == text(name)
    for path in ("/static/../settings.py", "/static/%2e%2e/app.py"):  # nothing outside the folder
        assert answers[path].status_code == 404, path
