"""Tiny snapshots the serving tests (API, page, browser) share: trained for a few steps, made once per session.

``serve_snapshots`` returns ``{name: run directory}`` for three kinds of model, each a real run directory with
``snapshot.safetensors`` (so the server resolves a run to its snapshot, as ``deconvgan sample RUN`` does):

* ``digits``: an unconditional 16x16 grayscale DCGAN (latent 8) trained on bright squares;
* ``classes``: the same DCGAN, class-conditional with 3 named classes (``circle``, ``square``, ``ring``);
* ``texture``: a tileable spatial (texture) model, RGB, 16-pixel crops, 4 pixels per field cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvgan.data import ImageDataset
from deconvgan.data.crops import TextureSources
from deconvgan.training import train
from tests.conftest import blob_images, tiny_config
from tests.training.test_spatial_training import TEXTURE

CLASS_NAMES = ("circle", "square", "ring")


@pytest.fixture(scope="session")
def serve_snapshots(tmp_path_factory) -> dict[str, Path]:
    """``{"digits": run_dir, "classes": run_dir, "texture": run_dir}``: tiny trained snapshots (a few seconds)."""
    root = tmp_path_factory.mktemp("serve-runs")
    images = blob_images()
    labels = images.flatten(1).argmax(1) % len(CLASS_NAMES)  # a function of the image: a learnable class
    datasets = {
        "digits": ImageDataset(images=images, labels=None, name="blobs", num_classes=None),
        "classes": ImageDataset(images=images, labels=labels, name="blobs3", num_classes=len(CLASS_NAMES),
                                class_names=CLASS_NAMES),
        "texture": TextureSources((blob_images(1, channels=3, resolution=48, seed=3)[0],), "squares"),
    }
    overrides = {
        "digits": (),
        "classes": (f"model.num_classes={len(CLASS_NAMES)}",),
        "texture": (*TEXTURE, "model.tileable=true"),
    }
    runs = {}
    for name, dataset in datasets.items():
        cfg = tiny_config(root / name, f"name={name}", "train.phases=[{steps: 4}]", *overrides[name])
        runs[name] = train(cfg, run_dir=root / name / "run", dataset=dataset).run_dir
    return runs


class InProcessServer:
    """``create_app(settings)`` with its lifespan running on an event loop in a background thread, and
    blocking request helpers for tests (httpx.AsyncClient over httpx.ASGITransport: no sockets).

    ``server.get(url)`` / ``server.post(url, json=...)`` return httpx Responses; ``server.run(coro)`` runs any
    coroutine on the server's loop (e.g. ``asyncio.gather`` of many ``server.client.get(...)``).
    """

    def __init__(self, settings, ready_timeout_s: float = 120.0) -> None:
        import asyncio
        import threading

        from deconvgan.serve.app import create_app

        self.app = create_app(settings)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-server-loop", daemon=True)
        self._thread.start()
        self.run(self._start(ready_timeout_s))

    async def _start(self, ready_timeout_s: float) -> None:
        import asyncio
        import time

        import httpx

        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")
        deadline = time.monotonic() + ready_timeout_s
        while not self.app.state.ready.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("the test server did not warm up")
            await asyncio.sleep(0.02)

    def run(self, coro, timeout_s: float = 120.0):
        """Run ``coro`` on the server's loop and return its result."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def get(self, url: str, **kwargs):
        return self.run(self.client.get(url, **kwargs))

    def post(self, url: str, **kwargs):
        return self.run(self.client.post(url, **kwargs))

    def request(self, method: str, url: str, **kwargs):
        return self.run(self.client.request(method, url, **kwargs))

    def close(self) -> None:
        """Shut down: the client, the app's lifespan (batchers stop), the loop and its thread."""
        try:
            self.run(self.client.aclose())
            self.run(self._lifespan.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture(scope="session")
def start_server(serve_snapshots):
    """``start_server(**settings)``: an :class:`InProcessServer` over the three tiny models (backend torch
    unless given), shut down at the end of the session."""
    from deconvgan.serve import ServeSettings

    servers = []

    def start(**overrides) -> InProcessServer:
        settings = {"snapshots": serve_snapshots, "backend": "torch", "directions": 4, "direction_samples": 256,
                    **overrides}
        server = InProcessServer(ServeSettings(**settings))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
