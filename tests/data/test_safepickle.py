"""The restricted unpickler: numpy arrays load, anything else is refused before it can run."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from deconvgan.data.safepickle import restricted_loads
from deconvgan.errors import DataError

from .conftest import py2_pickle


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_os_system_is_refused_without_running(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Evil(f"echo pwned > {marker}")}, protocol=protocol)
    with pytest.raises(DataError, match=r"refusing to unpickle (posix|os|nt)\.system") as exc:
        restricted_loads(payload, "data_batch_1")
    assert "data_batch_1" in str(exc.value) and "\n" not in str(exc.value)
    assert not marker.exists()


def test_plain_echo_pwned_is_refused() -> None:
    with pytest.raises(DataError, match="system"):
        restricted_loads(pickle.dumps(_Evil("echo pwned")), "batch")


@pytest.mark.parametrize("target", [eval, getattr, __import__, np.load])
def test_other_callables_are_refused(target: object) -> None:
    with pytest.raises(DataError, match="refusing to unpickle"):
        restricted_loads(pickle.dumps(target), "batch")


def test_numpy_arrays_load_from_every_writer() -> None:
    array = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    payloads = [py2_pickle({b"data": array})]
    payloads += [pickle.dumps({b"data": array}, protocol=p) for p in (2, 4, 5)]
    for payload in payloads:
        got = restricted_loads(payload, "batch")[b"data"]
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("payload", [b"", b"garbage that is not a pickle", pickle.dumps([1, 2, 3])[:-3]])
def test_damaged_pickles_are_data_errors(payload: bytes) -> None:
    with pytest.raises(DataError, match="batch_x"):
        restricted_loads(payload, "batch_x")
