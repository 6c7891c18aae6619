"""The web page in a real browser: Debian's chromium driven by Playwright against a live server on 127.0.0.1.

One uvicorn server (a thread of this process, on a port the OS picks) serves the three tiny models of
``serve_snapshots``; each test opens the page in a fresh browser page and fails on any console error or
uncaught exception. Playwright's own browser download needs the internet, so the browser is the system's
``chromium`` (``apt-get install chromium``); without one the tests skip, saying so.

``DECONVGAN_SCREENSHOT=1`` writes the screenshot to ``docs/serve-page.png`` (the README's picture) instead
of the test's temporary folder; ``DECONVGAN_SCREENSHOT_RUN=RUN_DIR`` then serves that trained image model
first, so the picture shows what a real model draws::

    DECONVGAN_SCREENSHOT=1 DECONVGAN_SCREENSHOT_RUN=runs/00000-mnist-dcgan python -m pytest tests/serve/test_browser.py
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install -e '.[serve]')")

from deconvgan.serve import ServeSettings  # noqa: E402
from deconvgan.serve.app import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no `chromium` on PATH (Playwright cannot download its own browser offline): "
                             "install Debian's chromium, e.g. apt-get install chromium")

DOCS = Path(__file__).resolve().parents[2] / "docs"
MAX_FRAMES = 20  # small, so that the page can be made to ask for too many (4 seeds x 8 frames)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class LiveServer:
    """uvicorn on 127.0.0.1 in a daemon thread, on a socket bound here (port chosen by the OS: no race)."""

    def __init__(self, app) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120  # start-up warms every model (backend, directions)
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()


@pytest.fixture(scope="module")
def models(serve_snapshots) -> dict[str, Path]:
    """Name -> snapshot: the image model first (the page opens on it), then the conditional and texture ones."""
    run = os.environ.get("DECONVGAN_SCREENSHOT_RUN")
    image = {Path(run).name: Path(run)} if run else {"digits": serve_snapshots["digits"]}
    return {**image, "classes": serve_snapshots["classes"], "texture": serve_snapshots["texture"]}


@pytest.fixture(scope="module")
def server(models) -> Iterator[LiveServer]:
    # the page's requests are one image or one interpolation: small batches keep the warm-up short
    settings = ServeSettings(snapshots=models, backend="torch", max_batch=8, max_frames=MAX_FRAMES, threads=1,
                             direction_samples=256)
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server; ``page.problems`` collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(f"uncaught: {e}"))
    page.goto(server.url)
    idle(page)
    yield page
    context.close()


def idle(page, timeout_ms: float = 20_000) -> None:
    """Wait until no request or debounced render is pending and every image on the page has loaded."""
    page.wait_for_function("document.body.dataset.pending === '0'", timeout=timeout_ms)
    page.wait_for_function("[...document.images].every(i => !i.getAttribute('src') || (i.complete && "
                           "i.naturalWidth > 0))", timeout=timeout_ms)
    page.wait_for_function("document.body.dataset.pending === '0'", timeout=timeout_ms)


def settle(page) -> None:
    """Let the debounce timers start, then wait for the page to be idle."""
    page.wait_for_timeout(50)
    idle(page)


def current_png(page) -> bytes:
    """The bytes of the image the page shows (a blob: URL), fetched inside the page."""
    encoded = page.evaluate("""async () => {
        const blob = await (await fetch(document.getElementById('current').src)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let text = ''; for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""")
    return base64.b64decode(encoded)


def press(page, selector: str, key: str, times: int = 1) -> None:
    page.focus(selector)
    for _ in range(times):
        page.keyboard.press(key)


def test_explore_an_image_model(page, models, tmp_path):
    image_model = next(iter(models))
    assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == list(models)
    grid = page.locator("#grid button.seed")
    assert grid.count() == 16
    assert page.get_attribute("#grid button.seed >> nth=0 >> img", "src").startswith(
        f"v1/models/{image_model}/images/0.png")

    # a typed seed opens its page, selected
    page.fill("#seed-input", "1000")
    page.press("#seed-input", "Enter")
    settle(page)
    assert page.text_content("#page-label") == "seeds 992–1007"
    assert page.get_attribute("button.seed[data-seed='1000']", "aria-pressed") == "true"
    assert page.text_content("#caption") == "seed-1000"
    page.fill("#seed-input", "2")
    page.press("#seed-input", "Enter")
    page.click("#clear")
    settle(page)
    assert page.text_content("#page-label") == "seeds 0–15"
    assert page.is_hidden("#interp")  # 1000 and 2 were selected, then cleared

    # pick seeds by keyboard (Enter and Space on the buttons) and by mouse
    press(page, "button.seed[data-seed='3']", "Enter")
    press(page, "button.seed[data-seed='5']", " ")
    page.click("button.seed[data-seed='9']")
    settle(page)
    assert page.eval_on_selector_all("#grid [aria-pressed=true]", "bs => bs.map(b => b.dataset.seed)") == \
        ["3", "5", "9"]
    assert page.text_content("#caption") == "seed-9"
    seed9 = current_png(page)
    assert seed9.startswith(PNG_SIGNATURE)
    assert page.is_visible("#interp")
    frames = page.locator("#strip img").count()
    assert frames == 2 * 8 + 1  # (seeds - 1) x frames per step + 1

    # scrub the interpolation: a frame between seeds 3 and 5 replaces the image
    press(page, "#scrub", "Home")
    press(page, "#scrub", "ArrowRight", 3)
    settle(page)
    assert page.text_content("#caption").endswith("frame3")
    frame3 = current_png(page)
    assert frame3 != seed9

    # truncation: the grid, the strip and the frame shown are drawn again from truncated latents
    strip_before = page.get_attribute("#strip img >> nth=3", "src")
    press(page, "#truncation", "ArrowLeft", 20)  # 2.0 -> 1.0
    settle(page)
    assert page.text_content("#truncation-value") == "1.00"
    assert "truncation=1" in page.get_attribute("#grid button.seed >> nth=0 >> img", "src")
    assert page.get_attribute("#strip img >> nth=3", "src") != strip_before
    truncated = current_png(page)
    assert truncated not in (frame3, seed9)

    # a latent direction: the chosen seed's latent moved along it, drawn from explicit latents
    assert page.locator("#directions input[type=range]").count() >= 1
    press(page, "#direction-0", "ArrowRight", 15)  # +1.5 of its spread
    settle(page)
    assert page.text_content("#caption") == "seed-9-edited", page.text_content("#status")
    edited = current_png(page)
    assert edited not in (seed9, truncated)

    # the download link holds exactly the image shown
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "seed-9-edited.png"
    assert Path(download.value.path()).read_bytes() == edited

    screenshot(page, tmp_path)
    assert page.problems == []


def test_class_picker_of_a_conditional_model(page):
    page.select_option("#model", "classes")
    settle(page)
    assert page.is_visible("#class-row")
    assert page.eval_on_selector_all("#class option", "os => os.map(o => o.textContent)") == \
        ["by seed (seed mod classes)", "0: circle", "1: square", "2: ring"]
    page.click("button.seed[data-seed='4']")
    settle(page)
    by_seed = current_png(page)
    page.select_option("#class", "2")
    settle(page)
    assert "class=2" in page.get_attribute("#grid button.seed >> nth=0 >> img", "src")
    assert current_png(page) != by_seed  # seed 4 defaults to class 4 mod 3 = 1: now class 2
    assert page.problems == []


def test_texture_map_pans_and_zooms(page):
    page.select_option("#model", "texture")
    settle(page)
    assert page.is_hidden("#interp") and page.is_hidden("#directions-panel") and page.is_hidden("#truncation-row")
    tiles = lambda: page.eval_on_selector_all(  # noqa: E731
        "#map img", "els => els.map(e => [e.getAttribute('src'), e.style.transform, e.naturalWidth])")
    first = tiles()
    assert first and all(src.split("/tiles/")[1].startswith("0/") and width == 256 for src, _, width in first)
    assert all("seed=0" in src for src, _, _ in first)

    press(page, "#map", "ArrowRight", 2)  # pan 128 px: the same tiles, moved left
    settle(page)
    moved = dict((src, transform) for src, transform, _ in tiles())
    assert any(src in moved and moved[src] != transform for src, transform, _ in first)

    press(page, "#map", "+")  # zoom in: tiles of zoom level 1 replace those of level 0
    settle(page)
    assert page.text_content("#zoom-label") == "Zoom 2×."
    assert all(src.split("/tiles/")[1].startswith("1/") and width == 256 for src, _, width in tiles())

    box = page.locator("#map").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, 200)  # back out to level 0, then -1 with a second turn
    page.wait_for_timeout(250)  # (one step per burst of wheel events)
    page.mouse.wheel(0, 200)
    settle(page)
    assert page.text_content("#zoom-label") == "Zoom 1/2×."
    before = tiles()
    page.mouse.down()
    page.mouse.move(centre[0] - 300, centre[1] - 200, steps=5)  # drag: the texture follows the pointer
    page.mouse.up()
    settle(page)
    after = tiles()
    assert {src for src, _, _ in after} != {src for src, _, _ in before}
    assert all(width == 256 for _, _, width in after)

    # the 3x3 preview repeats the seed's tileable window as a CSS background
    page.click("button.seed[data-seed='2']")
    settle(page)
    background = page.eval_on_selector("#repeat", "e => getComputedStyle(e).backgroundImage")
    assert "/images/2.png" in background
    assert page.eval_on_selector("#repeat", "e => getComputedStyle(e).backgroundRepeat") == "repeat"
    assert all("seed=2" in src for src, _, _ in tiles())
    assert page.problems == []


def test_an_error_shows_the_servers_message(page, server, models):
    """Four seeds x 8 frames is over this server's frame limit: the page shows the server's own message."""
    for seed in (1, 2, 3, 4):
        page.click(f"button.seed[data-seed='{seed}']")
        settle(page)
    expected = httpx.post(f"{server.url}v1/models/{next(iter(models))}/interpolate",
                          json={"seeds": [1, 2, 3, 4], "frames": 8, "format": "frames"})
    assert expected.status_code == 422
    message = expected.json()["detail"]["message"]
    assert f"at most {MAX_FRAMES} frames" in message
    assert page.text_content("#status") == message
    assert page.get_attribute("#status", "role") == "alert"
    # the browser logs the failed request itself; nothing else went wrong
    assert [p for p in page.problems if "status of 422" not in p] == []


def screenshot(page, tmp_path: Path) -> Path:
    """The page as it is, at docs/serve-page.png with DECONVGAN_SCREENSHOT=1, else in tmp_path."""
    target = DOCS / "serve-page.png" if os.environ.get("DECONVGAN_SCREENSHOT") == "1" else tmp_path / "page.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes().startswith(PNG_SIGNATURE)
    return target


def test_a_token_from_the_url_fragment(browser, serve_snapshots):
    """With a token, the page sends it from #token=... on every request (images too, as blobs)."""
    token = "page-test-token-1234"
    settings = ServeSettings(snapshots={"texture": serve_snapshots["texture"]}, backend="torch", token=token)
    with LiveServer(create_app(settings)) as live:
        context = browser.new_context()
        page = context.new_page()
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
        page.goto(f"{live.url}#token={token}")
        idle(page)
        sources = page.eval_on_selector_all("#grid img, #map img", "els => els.map(e => e.src)")
        assert len(sources) > 16 and all(src.startswith("blob:") for src in sources)
        assert page.text_content("#status") == ""
        assert problems == []

        page.goto(live.url)  # no token: the server's 401 message is shown
        page.wait_for_function("document.getElementById('status').textContent !== ''")
        assert page.text_content("#status") == httpx.get(f"{live.url}v1/models").json()["detail"]["message"]
        assert all("401" in p for p in problems)
        context.close()
