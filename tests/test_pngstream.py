"""The band-by-band PNG writer: what Pillow reads back is exactly what went in."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deconvgan.pngstream import PngStreamWriter


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), channels=st.sampled_from([1, 3]), band=st.integers(1, 9),
       seed=st.integers(0, 2**31))
def test_round_trip_8_bit(h, w, channels, band, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    out = io.BytesIO()
    writer = PngStreamWriter(out, w, h, channels)
    for top in range(0, h, band):
        writer.write_rows(pixels[top:top + band])
    writer.close()
    with Image.open(io.BytesIO(out.getvalue())) as image:
        image.load()
        got = np.asarray(image)
    np.testing.assert_array_equal(got.reshape(h, w, channels), pixels)


def test_round_trip_16_bit_grayscale():
    pixels = np.random.default_rng(0).integers(0, 65536, (17, 23, 1), dtype=np.uint16)
    out = io.BytesIO()
    writer = PngStreamWriter(out, 23, 17, 1, bits=16)
    writer.write_rows(pixels[:10])
    writer.write_rows(pixels[10:])
    writer.close()
    with Image.open(io.BytesIO(out.getvalue())) as image:
        got = np.asarray(image)
    np.testing.assert_array_equal(got, pixels[..., 0].astype(got.dtype))


def test_row_count_and_dtype_are_checked():
    writer = PngStreamWriter(io.BytesIO(), 4, 2, 3)
    with pytest.raises(ValueError, match="rows must be uint8"):
        writer.write_rows(np.zeros((1, 4, 3), np.uint16))
    with pytest.raises(ValueError, match="3 rows for a 2-row image"):
        writer.write_rows(np.zeros((3, 4, 3), np.uint8))
    writer.write_rows(np.zeros((1, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="only 1 of 2 rows"):
        writer.close()
