"""Fuzzing the API with bad requests: only 4xx answers (never a 5xx), one JSON error shape, and the server
stays healthy afterwards."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OK_OR_CLIENT_ERROR = {200, 304, 404, 405, 413, 422}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
numbers = (st.integers(min_value=-(2**80), max_value=2**80) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, -1, 1e308, 2**63, 2**64, -(2**63)]))
field_values = json_values | numbers | st.sampled_from(["0-3,7", "5-1", "-1", "0-99999999999", "", ",", "all", "ring"])
image_bodies = st.dictionaries(
    st.sampled_from(["seeds", "latents", "truncation", "class", "format", "frames", "extra", "__proto__"]),
    field_values | st.lists(st.lists(numbers, max_size=10), max_size=4) | st.sampled_from(["png", "npy", "grid",
                                                                                            "strip", "gif", "frames"]),
    max_size=5,
)
model_names = st.text(max_size=30) | st.sampled_from(["../digits", "%2e%2e", "..%2f..%2fetc", "digits\x00",
                                                      "digits/../digits", "%00", ".", "..", "DIGITS", " digits"])


@pytest.fixture(scope="module")
def api(start_server):
    return start_server(directions=0, max_images_per_request=64, max_frames=40)


def check(response) -> None:
    assert response.status_code in OK_OR_CLIENT_ERROR, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert set(detail) == {"field", "limit", "message"} and "\n" not in detail["message"]


@FUZZ
@given(body=image_bodies, model=st.sampled_from(["digits", "classes", "texture"]),
       route=st.sampled_from(["images", "interpolate"]))
def test_random_json_bodies_get_answers_not_errors(api, body, model, route):
    raw = json.dumps(body).encode()  # NaN and Infinity written as JS literals, which Python's json reads
    check(api.post(f"/v1/models/{model}/{route}", content=raw, headers={"content-type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | json_values.map(lambda v: json.dumps(v).encode()))
def test_malformed_bodies(api, raw):
    check(api.post("/v1/models/digits/images", content=raw, headers={"content-type": "application/json"}))


@FUZZ
@given(name=model_names, seed=st.text(max_size=12) | st.integers(min_value=-(2**70), max_value=2**70).map(str),
       query=st.dictionaries(st.sampled_from(["truncation", "class", "seed", "seeds", "x"]),
                             st.text(max_size=12) | numbers.map(str), max_size=3))
def test_path_tricks_and_bad_queries(api, name, seed, query):
    response = api.get(f"/v1/models/{quote(name, safe='%./')}/images/{quote(seed)}.png", params=query)
    check(response)
    if response.status_code == 200:  # only a real model's image (the client may have resolved '..' first)
        assert response.request.url.path.split("/")[3] in ("digits", "classes", "texture")
        assert response.headers["content-type"] == "image/png"


@FUZZ
@given(z=numbers.map(str) | st.text(max_size=5), x=numbers.map(str), y=numbers.map(str),
       seed=numbers.map(str), model=st.sampled_from(["texture", "digits", "nope"]))
def test_bad_tile_coordinates(api, z, x, y, seed, model):
    check(api.get(f"/v1/models/{model}/tiles/{quote(z)}/{quote(x)}/{quote(y)}.png", params={"seed": seed}))


@FUZZ
@given(seeds=st.text(max_size=40) | st.sampled_from(["0-64", "0-63", "3-1", "1,,2", " 7 ", "0-2**70"]),
       truncation=st.text(max_size=8) | numbers.map(str))
def test_bad_latent_queries(api, seeds, truncation):
    check(api.get("/v1/models/digits/latents", params={"seeds": seeds, "truncation": truncation}))


def test_the_server_is_healthy_after_the_fuzzing(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    assert api.post("/v1/models/digits/images", json={"seeds": "0-3", "format": "grid"}).status_code == 200
    metrics = api.get("/metrics").text
    assert 'status="500"' not in metrics and 'status="503"' not in metrics
