"""The HTTP API in-process (httpx over ASGI): every route, the same bytes as the command line, caching,
limits, errors and the token."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from deconvgan.checkpoint import load_snapshot
from deconvgan.cli import main
from deconvgan.models import fuse_for_inference
from deconvgan.sampling import latents_for_seeds
from deconvgan.tiles import generate_window, to_pixels
from tests.serve.conftest import CLASS_NAMES

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def api(start_server):
    return start_server(max_delay_ms=20)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)


def error(response, status: int, field: str | None = None) -> str:
    """The message of a JSON error answer, after checking its status, shape and field."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert set(detail) == {"field", "limit", "message"} and "\n" not in detail["message"]
    assert detail["field"] == field
    return detail["message"]


def test_health_readiness_and_the_model_list(api, serve_snapshots):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready", "models": ["digits", "classes", "texture"]}
    models = {m["name"]: m for m in api.get("/v1/models").json()["models"]}
    assert models["digits"] == {"name": "digits", "kind": "image", "resolution": 16, "channels": 1, "latent_dim": 8,
                                "kimg": 0.032, "dataset": "blobs", "num_classes": 0, "class_names": [],
                                "tileable": False, "backend": "torch"}
    assert models["classes"]["class_names"] == list(CLASS_NAMES) and models["classes"]["num_classes"] == 3
    assert models["texture"]["kind"] == "texture" and models["texture"]["tileable"] is True
    assert models["texture"]["channels"] == 3


def test_readyz_is_503_until_the_models_are_warm(serve_snapshots):
    import httpx

    from deconvgan.serve import ServeSettings
    from deconvgan.serve.app import create_app

    app = create_app(ServeSettings(snapshots={"digits": serve_snapshots["digits"]}, backend="torch"))

    async def probe():  # no lifespan: nothing warms up
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/readyz"), await client.get("/healthz")

    ready, health = asyncio.run(probe())
    assert ready.status_code == 503 and health.status_code == 200


@pytest.mark.parametrize(("model", "argv", "query"), [
    ("digits", [], ""),
    ("digits", ["--truncation", "0.7"], "?truncation=0.7"),
    ("classes", [], ""),  # seed s draws class s mod 3, as the command line does
    ("classes", ["--class", "ring"], "?class=ring"),
    ("texture", [], ""),
])
def test_an_image_has_the_bytes_deconvgan_sample_writes(api, serve_snapshots, tmp_path, model, argv, query):
    assert main(["sample", str(serve_snapshots[model]), "--seeds", "7", "--out", str(tmp_path), *argv]) == 0
    written = next(tmp_path.glob("*seed000007.png")).read_bytes()
    response = api.get(f"/v1/models/{model}/images/7.png{query}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == written


def test_a_grid_has_the_bytes_of_deconvgan_sample_grid(api, serve_snapshots, tmp_path):
    for model in ("digits", "classes"):
        out = tmp_path / f"{model}.png"
        assert main(["sample", str(serve_snapshots[model]), "--seeds", "0-15", "--grid", str(out)]) == 0
        response = api.post(f"/v1/models/{model}/images", json={"seeds": "0-15", "format": "grid"})
        assert response.status_code == 200 and response.content == out.read_bytes()


def test_images_carry_a_strong_etag_and_answer_304(api):
    first = api.get("/v1/models/classes/images/3.png?class=square&truncation=0.5")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/") and first.headers["cache-control"] == IMMUTABLE
    by_id = api.get("/v1/models/classes/images/3.png?class=1&truncation=0.5")  # the same class by its id
    assert by_id.headers["etag"] == etag and by_id.content == first.content
    again = api.get("/v1/models/classes/images/3.png?class=square&truncation=0.5", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert api.get("/v1/models/classes/images/3.png?class=1&truncation=0.5",
                   headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    others = {api.get(url).headers["etag"] for url in ("/v1/models/classes/images/3.png?class=square",
                                                       "/v1/models/classes/images/4.png?class=square&truncation=0.5",
                                                       "/v1/models/classes/images/3.png?class=ring&truncation=0.5",
                                                       "/v1/models/digits/images/3.png?truncation=0.5")}
    assert etag not in others and len(others) == 4


def test_latents_round_trip_through_post_images(api):
    body = api.get("/v1/models/digits/latents?seeds=2-4,9&truncation=0.8").json()
    assert body["seeds"] == [2, 3, 4, 9]
    assert torch.equal(torch.tensor(body["latents"]), latents_for_seeds([2, 3, 4, 9], 8, 0.8))
    from_latent = api.post("/v1/models/digits/images", json={"latents": body["latents"][3:], "format": "png"})
    assert from_latent.content == api.get("/v1/models/digits/images/9.png?truncation=0.8").content
    assert api.get("/v1/models/texture/latents?seeds=1").status_code == 404


def test_npy_is_uint8_images_channels_last(api):
    response = api.post("/v1/models/texture/images", json={"seeds": [4, 5], "format": "npy"})
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert array.dtype == np.uint8 and array.shape == (2, 16, 16, 3)
    assert np.array_equal(array[1], pixels(api.get("/v1/models/texture/images/5.png").content))
    digits = np.load(io.BytesIO(api.post("/v1/models/digits/images", json={"seeds": "0-2", "format": "npy"}).content))
    assert digits.shape == (3, 16, 16, 1)
    assert np.array_equal(digits[2, :, :, 0], pixels(api.get("/v1/models/digits/images/2.png").content))


def test_interpolation_has_the_bytes_of_deconvgan_interpolate(api, serve_snapshots, tmp_path):
    out = tmp_path / "path"
    assert main(["interpolate", str(serve_snapshots["classes"]), "--seeds", "1,5,2", "--frames", "4",
                 "--class", "circle", "--out", str(out)]) == 0
    request = {"seeds": [1, 5, 2], "frames": 4, "class": "circle"}
    strip = api.post("/v1/models/classes/interpolate", json=request | {"format": "strip"})
    assert strip.headers["content-type"] == "image/png" and strip.content == out.with_suffix(".png").read_bytes()
    gif = api.post("/v1/models/classes/interpolate", json=request | {"format": "gif"})
    assert gif.headers["content-type"] == "image/gif" and gif.content == out.with_suffix(".gif").read_bytes()
    frames = api.post("/v1/models/classes/interpolate", json=request | {"format": "frames"}).json()["frames"]
    assert len(frames) == 2 * 4 + 1 and all(f.startswith("data:image/png;base64,") for f in frames)
    first = base64.b64decode(frames[0].split(",", 1)[1])  # the path starts at seed 1, in class circle
    assert first == api.get("/v1/models/classes/images/1.png?class=circle").content
    message = error(api.post("/v1/models/texture/interpolate", json={"seeds": [1, 2]}), 404, "name")
    assert "texture model" in message


def test_directions_are_unit_vectors_per_image_model(api):
    body = api.get("/v1/models/digits/directions").json()
    vectors = torch.tensor(body["directions"])
    assert vectors.shape == (4, 8) and torch.allclose(vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    assert all(s > 0 for s in body["scales"]) and 0 < sum(body["explained_variance"]) <= 1
    assert body["explained_variance"] == sorted(body["explained_variance"], reverse=True)
    assert "texture model" in error(api.get("/v1/models/texture/directions"), 404, "name")


def test_tiles_are_windows_of_the_unbounded_texture(api, serve_snapshots):
    generator, _ = load_snapshot(serve_snapshots["texture"])
    G = fuse_for_inference(generator)
    tile = pixels(api.get("/v1/models/texture/tiles/0/-1/2.png?seed=3").content)
    assert tile.shape == (256, 256, 3)
    # exactly the window generate_window computes (deconvgan texture's function) at those coordinates
    assert np.array_equal(tile, to_pixels(generate_window(G, 3, 512, -256, 256, 256)))
    # and, to float rounding, the same pixels of a larger window holding it
    big = to_pixels(generate_window(G, 3, 256, -512, 512, 512))[256:, 256:]
    assert np.abs(big.astype(int) - tile).max() <= 1 and (big == tile).mean() > 0.99
    zoomed_in = pixels(api.get("/v1/models/texture/tiles/1/0/0.png?seed=3").content)  # 128 px, enlarged 2x
    assert np.array_equal(zoomed_in[::2, ::2], to_pixels(generate_window(G, 3, 0, 0, 128, 128)))
    zoomed_out = pixels(api.get("/v1/models/texture/tiles/-1/0/0.png?seed=3").content)  # 512 px, halved
    window = generate_window(G, 3, 0, 0, 512, 512)
    assert np.array_equal(zoomed_out, to_pixels(torch.nn.functional.avg_pool2d(window[None], 2)[0]))
    default_seed = api.get("/v1/models/texture/tiles/0/0/0.png")
    assert default_seed.content == api.get("/v1/models/texture/tiles/0/0/0.png?seed=0").content
    etag = default_seed.headers["etag"]
    assert default_seed.headers["cache-control"] == IMMUTABLE
    assert api.get("/v1/models/texture/tiles/0/0/0.png", headers={"If-None-Match": etag}).status_code == 304
    assert api.get("/v1/models/texture/tiles/0/0/1.png").headers["etag"] != etag
    message = error(api.get("/v1/models/digits/tiles/0/0/0.png"), 404, "name")
    assert message == "model digits is not a texture model; tiles exist for arch=spatial"
    assert error(api.get("/v1/models/texture/tiles/3/0/0.png"), 422, "z")
    assert error(api.get(f"/v1/models/texture/tiles/0/{2**20 + 1}/0.png"), 422, "x")
    assert error(api.get("/v1/models/texture/tiles/0/0/0.png?seed=-4"), 422, "seed")


@pytest.mark.parametrize(("method", "url", "body", "status", "field"), [
    ("GET", "/v1/models/nope/images/1.png", None, 404, "name"),
    ("GET", "/v1/models/digits/images/x.png", None, 422, "seed"),
    ("GET", "/v1/models/digits/images/-3.png", None, 422, "seed"),
    ("GET", f"/v1/models/digits/images/{2**63}.png", None, 422, "seed"),
    ("GET", "/v1/models/digits/images/1.png?truncation=0", None, 422, "truncation"),
    ("GET", "/v1/models/digits/images/1.png?truncation=nan", None, 422, "truncation"),
    ("GET", "/v1/models/digits/images/1.png?class=1", None, 422, "class"),
    ("GET", "/v1/models/classes/images/1.png?class=cow", None, 422, "class"),
    ("GET", "/v1/models/classes/images/1.png?class=all", None, 422, "class"),
    ("GET", "/v1/models/texture/images/1.png?truncation=1", None, 422, "truncation"),
    ("GET", "/v1/models/digits/latents", None, 422, "seeds"),
    ("GET", "/v1/models/digits/latents?seeds=0-9999", None, 422, "seeds"),
    ("GET", "/v1/nothing", None, 404, None),
    ("DELETE", "/v1/models", None, 405, None),
    ("POST", "/v1/models/digits/images", {"seeds": "0-3"}, 422, "format"),
    ("POST", "/v1/models/digits/images", {"seeds": "0-1", "latents": [[0] * 8]}, 422, "seeds"),
    ("POST", "/v1/models/digits/images", {"format": "grid"}, 422, "seeds"),
    ("POST", "/v1/models/digits/images", {"seeds": "3-1", "format": "grid"}, 422, "seeds"),
    ("POST", "/v1/models/digits/images", {"seeds": "0-300", "format": "grid"}, 422, "seeds"),
    ("POST", "/v1/models/digits/images", {"seeds": [1], "colour": "red"}, 422, "colour"),
    ("POST", "/v1/models/digits/images", {"seeds": [1.5]}, 422, "seeds"),
    ("POST", "/v1/models/digits/images", {"seeds": [1], "format": "jpeg"}, 422, "format"),
    ("POST", "/v1/models/digits/images", {"latents": [[0] * 7]}, 422, "latents"),
    ("POST", "/v1/models/digits/images", {"latents": [[1e9] * 8]}, 422, "latents"),
    ("POST", "/v1/models/digits/images", {"latents": [[0] * 8], "truncation": 1}, 422, "truncation"),
    ("POST", "/v1/models/texture/images", {"latents": [[0] * 6]}, 422, "latents"),
    ("POST", "/v1/models/digits/interpolate", {"seeds": [1]}, 422, "seeds"),
    ("POST", "/v1/models/digits/interpolate", {"seeds": [1, 2], "frames": 0}, 422, "frames"),
    ("POST", "/v1/models/digits/interpolate", {"seeds": [1, 2, 3], "frames": 60}, 422, "frames"),
    ("POST", "/v1/models/digits/interpolate", {"seeds": [1, 2], "format": "mp4"}, 422, "format"),
])
def test_bad_requests_get_one_json_error_naming_the_field(api, method, url, body, status, field):
    error(api.request(method, url, json=body), status, field)


def test_malformed_and_oversized_bodies(api):
    headers = {"content-type": "application/json"}
    assert "not valid JSON" in error(api.post("/v1/models/digits/images", content=b'{"seeds": ', headers=headers), 422)
    assert "JSON object" in error(api.post("/v1/models/digits/images", content=b"[1, 2]", headers=headers), 422)
    huge = b'{"seeds": "' + b"1," * 2_500_000 + b'1"}'  # 5 MB > the 4 MB limit
    assert error(api.post("/v1/models/digits/images", content=huge, headers=headers), 413, "body")

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(50):
            yield b" " * 100_000

    response = api.post("/v1/models/digits/images", content=chunks(), headers=headers)
    assert response.status_code == 413 and response.json()["detail"]["limit"] == 4_000_000


def test_a_requests_images_do_not_depend_on_what_it_was_batched_with(api):
    """33 mixed requests at once (GET and POST, two models, classes, truncations) equal the same requests
    sent one at a time, and the batcher really merged them."""
    gets = [f"/v1/models/digits/images/{s}.png" + ("?truncation=0.6" if s % 3 == 0 else "") for s in range(20)]
    gets += [f"/v1/models/classes/images/{s}.png?class={s % 3}" for s in range(8)]
    posts = [{"seeds": [s, s + 40, s + 7], "format": "npy"} for s in range(5)]

    async def send_all():
        return await asyncio.gather(*[api.client.get(url) for url in gets],
                              *[api.client.post("/v1/models/digits/images", json=body) for body in posts])

    def batches() -> float:
        text = api.get("/metrics").text
        return float(next(line.split()[-1] for line in text.splitlines()
                          if line.startswith('deconvgan_batch_size_images_count{model="digits"}')))

    before = batches()
    together = api.run(send_all())
    merged_calls = batches() - before
    alone = [api.get(url) for url in gets] + [api.post("/v1/models/digits/images", json=body) for body in posts]
    assert all(r.status_code == 200 for r in together)
    assert [r.content for r in together] == [r.content for r in alone]
    assert merged_calls < 25  # 20 + 5 digits requests in far fewer generator calls


def test_metrics_count_routes_batches_and_queues(api):
    api.get("/v1/models/digits/images/1.png")
    api.get("/v1/models/nope/images/../../etc/passwd")
    text = api.get("/metrics").text
    route = "/v1/models/{name}/images/{seed}.png"
    assert f'deconvgan_http_requests_total{{method="GET",route="{route}",status="200"}}' in text
    assert 'route="unmatched"' in text and "passwd" not in text
    assert 'deconvgan_batch_size_images_bucket{le="1.0",model="digits"}' in text
    assert 'deconvgan_queue_depth{model="texture"} 0.0' in text
    assert "deconvgan_http_request_duration_seconds_bucket" in text


def test_the_page_and_static_files_come_from_the_package(api):
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert api.get("/static/index.html").content == page.content
    assert api.get("/static/../settings.py").status_code == 404
    assert api.get("/static/%2e%2e/settings.py").status_code == 404
    assert api.get("/openapi.json").json()["paths"]["/v1/models/{name}/interpolate"]["post"]


def test_the_token_guards_every_route_but_health_and_the_page(start_server, monkeypatch):
    server = start_server(token="s3cret-token", directions=0)
    assert server.get("/healthz").status_code == 200 and server.get("/readyz").status_code == 200
    assert server.get("/").status_code == 200 and server.get("/static/app.js").status_code == 200
    assert server.get("/static/../v1/models").status_code in (401, 404)  # no way round the guard via /static
    for url in ("/v1/models", "/metrics", "/v1/models/digits/images/1.png", "/docs", "/openapi.json",
                "/v1/models/digits/tiles/0/0/0.png", "/staticx"):
        assert error(server.get(url), 401, "authorization")
        assert server.get(url, headers={"Authorization": "Bearer s3cret-tokem"}).status_code == 401
        assert server.get(url, headers={"Authorization": "Basic s3cret-token"}).status_code == 401
    missing = server.get("/v1/models")
    assert missing.headers["www-authenticate"] == "Bearer"
    good = {"Authorization": "Bearer s3cret-token"}
    assert server.get("/v1/models/digits/images/1.png", headers=good).status_code == 200
    assert server.post("/v1/models/digits/images", json={"seeds": [1]}, headers=good).status_code == 200


def test_cors_is_off_unless_origins_are_given(api, start_server):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in api.request("OPTIONS", "/v1/models", headers=preflight).headers
    server = start_server(cors_origins=("https://app.example",), directions=0, token="s3cret-token")
    answer = server.request("OPTIONS", "/v1/models/digits/images", headers=preflight
                            | {"Access-Control-Request-Headers": "authorization"})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "https://app.example"
    refused = server.get("/v1/models", headers={"Origin": "https://app.example"})  # 401 still carries CORS
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "https://app.example"


def test_too_many_pending_is_429_and_a_slow_answer_503(start_server):
    server = start_server(max_pending=2, request_timeout_s=0.5, directions=0)
    lock: threading.Lock = server.app.state.compute_lock
    lock.acquire()  # the worker cannot run a generator: requests queue up
    try:
        async def three():
            first = [asyncio.ensure_future(server.client.get(f"/v1/models/digits/images/{s}.png")) for s in (1, 2)]
            batcher, deadline = server.app.state.models["digits"].batcher, time.monotonic() + 10
            while batcher.pending < 2 and time.monotonic() < deadline:  # both queued, however loaded the machine
                await asyncio.sleep(0.01)
            third = await server.client.get("/v1/models/digits/images/3.png")
            return [*await asyncio.gather(*first), third]

        slow1, slow2, refused = server.run(three())
    finally:
        lock.release()
    assert error(refused, 429) and refused.json()["detail"]["limit"] == 2 and refused.headers["retry-after"] == "1"
    assert "timeout" in error(slow1, 503) and slow2.status_code == 503
    assert server.get("/healthz").status_code == 200
    # The worker recovers: the timed-out batch it was blocked on finishes (freeing its places in the queue,
    # which a fast request may find still taken: 429 then, never 5xx) and new requests are served.
    deadline = time.monotonic() + 10
    while (answer := server.get("/v1/models/digits/images/3.png")).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.status_code == 200


def test_the_onnx_backend_serves_the_same_images(api, start_server):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    server = start_server(backend="onnx", directions=0)
    backends = {m["name"]: m["backend"] for m in server.get("/v1/models").json()["models"]}
    assert backends["digits"] == "onnx" and backends["texture"] == "torch"  # tiles run deconvgan.tiles
    for url in ("/v1/models/digits/images/11.png?truncation=0.9", "/v1/models/classes/images/5.png"):
        onnx_pixels, torch_pixels = (pixels(s.get(url).content).astype(int) for s in (server, api))
        assert np.abs(onnx_pixels - torch_pixels).max() <= 1  # float rounding apart, the same image
    assert server.get("/v1/models/digits/images/11.png?truncation=0.9").headers["etag"] != \
        api.get("/v1/models/digits/images/11.png?truncation=0.9").headers["etag"]  # other bytes may differ


def test_a_class_conditional_texture_model_draws_the_class_asked_for(start_server, tmp_path):
    from deconvgan.checkpoint import save_snapshot
    from deconvgan.config import ModelConfig
    from deconvgan.errors import ConfigError
    from deconvgan.models import build_generator

    try:
        cfg = ModelConfig(arch="spatial", resolution=16, channels=3, levels=2, g_width=8, local_channels=4,
                          global_channels=2, num_classes=2)
    except ConfigError:
        pytest.skip("this version has no class-conditional texture models")
    torch.manual_seed(0)
    generator = build_generator(cfg)
    with torch.no_grad():  # classes that differ: each class's batch-norm shift apart
        for name, p in generator.named_parameters():
            if "embed" in name or "bias" in name:
                p.normal_(0, 0.5)
    save_snapshot(tmp_path / "m.safetensors", generator, cfg, class_names=("wood", "stone"))
    server = start_server(snapshots={"materials": tmp_path / "m.safetensors"}, directions=0)
    model = server.get("/v1/models").json()["models"][0]
    assert model["kind"] == "texture" and model["class_names"] == ["wood", "stone"]
    wood, stone = (server.get(f"/v1/models/materials/tiles/0/1/0.png?seed=2&class={c}") for c in ("wood", "stone"))
    assert wood.status_code == stone.status_code == 200 and wood.content != stone.content
    assert wood.headers["etag"] != stone.headers["etag"]
    assert server.get("/v1/models/materials/tiles/0/1/0.png?seed=2").content == wood.content  # class 0
    by_id = server.get("/v1/models/materials/images/3.png?class=1")
    assert by_id.content == server.get("/v1/models/materials/images/3.png?class=stone").content
    assert by_id.content == server.get("/v1/models/materials/images/3.png").content  # seed 3: class 3 mod 2
    assert error(server.get("/v1/models/materials/tiles/0/0/0.png?class=glass"), 422, "class")
