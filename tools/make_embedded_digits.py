"""Write the embedded ``digits`` dataset (src/deconvgan/data/embedded/) from scikit-learn's copy.

Run once by a maintainer (scikit-learn is needed here only, never at run time)::

    python tools/make_embedded_digits.py

Output: two gzip IDX files, byte-reproducible (gzip mtime 0, no file name in the header):

- ``digits-images-idx3-ubyte.gz``: magic 2051, 1797 x 8 x 8 uint8, the original 0..16 block
  counts rescaled to 0..255 by round(v * 255 / 16) (integer form (v * 255 + 8) // 16; 16 -> 255).
- ``digits-labels-idx1-ubyte.gz``: magic 2049, 1797 uint8 labels 0..9.

Source: ``sklearn.datasets.load_digits`` = the test set (optdigits.tes) of the UCI "Optical
Recognition of Handwritten Digits" data set, E. Alpaydin and C. Kaynak (1998), CC BY 4.0.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "deconvgan" / "data" / "embedded"


def write_idx_gz(path: Path, magic: int, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip IDX file with a reproducible gzip header."""
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR,
                        help="output folder (default: the package's embedded/)")
    args = parser.parse_args()

    bunch = load_digits()
    counts = np.asarray(bunch.images)  # float64 [1797, 8, 8], integer values 0..16
    if counts.shape != (1797, 8, 8) or counts.min() < 0 or counts.max() > 16 or np.any(counts % 1):
        raise SystemExit(f"unexpected sklearn digits: shape {counts.shape}, values {np.unique(counts)}")
    images = (counts.astype(np.int64) * 255 + 8) // 16  # = round(v * 255 / 16): exact in integers, 8 -> 128
    labels = np.asarray(bunch.target, dtype=np.int64)
    if labels.shape != (1797,) or labels.min() < 0 or labels.max() > 9:
        raise SystemExit("unexpected sklearn digit labels")

    args.out.mkdir(parents=True, exist_ok=True)
    for name, magic, array in (
        ("digits-images-idx3-ubyte.gz", 2051, images.astype(np.uint8)),
        ("digits-labels-idx1-ubyte.gz", 2049, labels.astype(np.uint8)),
    ):
        path = args.out / name
        write_idx_gz(path, magic, array)
        print(f"{path}  {path.stat().st_size} bytes  md5 {hashlib.md5(path.read_bytes()).hexdigest()}")
    print("label counts:", " ".join(str(c) for c in np.bincount(labels, minlength=10)))


if __name__ == "__main__":
    main()
