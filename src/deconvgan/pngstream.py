"""A PNG writer that takes the image a band of rows at a time, so memory does not grow with its size.

Pillow needs the whole image in memory to write a PNG; a 16384² 16-bit RGB texture is 1.5 GB.
This writer emits the PNG stream (signature, IHDR, IDAT chunks of a running zlib stream, IEND) as
rows arrive. Grayscale or RGB, 8 or 16 bits per channel; every row uses PNG's "Sub" filter (the
difference to the pixel on its left, byte by byte), which compresses photographs well and costs one
vectorised subtraction.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 3: 2}  # channels -> PNG colour type (grayscale, truecolour)
_FILTER_SUB = 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


class PngStreamWriter:
    """Write a ``width`` x ``height`` PNG to the open binary file ``out`` band by band.

    ``write_rows(rows)`` takes ``[h, width, channels]`` uint8 (bits=8) or uint16 (bits=16); after
    exactly ``height`` rows, ``close()`` finishes the file (ValueError if the count is off).
    """

    def __init__(self, out: BinaryIO, width: int, height: int, channels: int, bits: int = 8,
                 level: int = 6) -> None:
        if channels not in _COLOR_TYPE:
            raise ValueError(f"channels={channels}: PNG rows here are grayscale (1) or RGB (3)")
        if bits not in (8, 16):
            raise ValueError(f"bits={bits} must be 8 or 16")
        self.out, self.width, self.height, self.channels, self.bits = out, width, height, channels, bits
        self.rows_written = 0
        self.bytes_per_pixel = channels * bits // 8
        self._zlib = zlib.compressobj(level)
        ihdr = struct.pack(">IIBBBBB", width, height, bits, _COLOR_TYPE[channels], 0, 0, 0)
        out.write(SIGNATURE + _chunk(b"IHDR", ihdr))

    def write_rows(self, rows: np.ndarray) -> None:
        """Append ``[h, width, channels]`` rows (uint8 for 8 bits, uint16 for 16)."""
        dtype = np.uint8 if self.bits == 8 else np.uint16
        if rows.dtype != dtype or rows.ndim != 3 or rows.shape[1:] != (self.width, self.channels):
            raise ValueError(f"rows must be {np.dtype(dtype).name} [h, {self.width}, {self.channels}], got "
                             f"{rows.dtype} {rows.shape}")
        if self.rows_written + rows.shape[0] > self.height:
            raise ValueError(f"{self.rows_written + rows.shape[0]} rows for a {self.height}-row image")
        raw = rows.astype(">u2") if self.bits == 16 else rows  # PNG stores 16-bit samples big-endian
        raw = np.ascontiguousarray(raw).view(np.uint8).reshape(rows.shape[0], -1)  # [h, width * bpp]
        filtered = raw.copy()
        bpp = self.bytes_per_pixel
        filtered[:, bpp:] -= raw[:, :-bpp]  # Sub filter: uint8 arithmetic wraps mod 256 as PNG defines
        lines = np.concatenate([np.full((rows.shape[0], 1), _FILTER_SUB, np.uint8), filtered], axis=1)
        self._emit(self._zlib.compress(lines.tobytes()))
        self.rows_written += rows.shape[0]

    def close(self) -> None:
        """Flush the compressed stream and write IEND; the file must have received every row."""
        if self.rows_written != self.height:
            raise ValueError(f"only {self.rows_written} of {self.height} rows were written")
        self._emit(self._zlib.flush())
        self.out.write(_chunk(b"IEND", b""))

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(_chunk(b"IDAT", data))
