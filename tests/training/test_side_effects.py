"""``train()`` leaves the process as it found it: RNG, threads, cuDNN flag, process group, open files."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
import torch.distributed

from deconvgan import distributed as dist
from deconvgan.training import loop, train


def _open_files_under(folder: Path) -> list[str]:
    """Files under ``folder`` this process holds open (Linux: /proc/self/fd)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd to list open files")
    held = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed between the listing and the read
        if target.startswith(str(folder.resolve())):
            held.append(target)
    return held


@pytest.fixture
def torch_state():
    """The process-wide torch settings as they were before the test; put back afterwards whatever happens."""
    saved = torch.get_rng_state(), torch.get_num_threads(), torch.backends.cudnn.benchmark
    yield saved
    torch.set_rng_state(saved[0])
    torch.set_num_threads(saved[1])
    torch.backends.cudnn.benchmark = saved[2]


def test_train_restores_the_global_rng_and_thread_count(make_config, blobs, tmp_path, torch_state):
    torch.manual_seed(1234)
    before_rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    other = 1 if threads != 1 else 2
    result = train(make_config(f"run.num_threads={other}"), run_dir=tmp_path / "run", dataset=blobs)
    assert result.step == 6
    assert torch.equal(torch.get_rng_state(), before_rng), "train() left torch's global RNG moved"
    assert torch.get_num_threads() == threads
    # and the caller's next draw is the one it would have made without train() in between
    expected = torch.Generator().manual_seed(1234)
    assert torch.equal(torch.rand(5), torch.rand(5, generator=expected))


def test_train_is_reproducible_whatever_the_caller_did_to_the_rng(make_config, blobs, tmp_path, torch_state):
    cfg = make_config()
    torch.manual_seed(1)
    a = train(cfg, run_dir=tmp_path / "a", dataset=blobs).generator
    torch.manual_seed(2)
    b = train(cfg, run_dir=tmp_path / "b", dataset=blobs).generator
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_process_settings_are_restored_on_an_exception(torch_state):
    cfg = loop.Config()
    torch.backends.cudnn.benchmark = False
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"), loop._process_state_restored(cfg):
        torch.backends.cudnn.benchmark = True
        torch.set_num_threads(threads + 1)
        torch.manual_seed(99)
        raise RuntimeError("boom")
    assert torch.backends.cudnn.benchmark is False
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)


class Boom(RuntimeError):
    pass


def _failing_g_step(at_call: int, record: list):
    real_g_step = loop._g_step

    def g_step(*args, **kwargs):
        record.append(None)
        if len(record) == at_call:
            raise Boom(f"injected failure at generator step {at_call}")
        return real_g_step(*args, **kwargs)

    return g_step


def test_an_error_mid_loop_propagates_and_closes_every_file(make_config, blobs, tmp_path, monkeypatch, torch_state):
    calls: list = []
    monkeypatch.setattr(loop, "_g_step", _failing_g_step(4, calls))
    monitors: list = []
    real_init = loop.Monitor.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        monitors.append(self)

    monkeypatch.setattr(loop.Monitor, "__init__", init)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    other = 1 if threads != 1 else 2
    run_dir = tmp_path / "run"
    with pytest.raises(Boom, match="generator step 4"):
        train(make_config(f"run.num_threads={other}", "run.tensorboard=true"), run_dir=run_dir, dataset=blobs)
    assert len(calls) == 4 and len(monitors) == 1
    monitor = monitors[0]
    assert monitor._log.closed and monitor._stats.closed
    assert _open_files_under(run_dir) == []
    assert (run_dir / "log.txt").read_text().count("starting") == 1  # what was written before the error stays
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)


def test_ctrl_c_still_saves_the_state_and_closes_every_file(make_config, blobs, tmp_path, monkeypatch):
    real_g_step = loop._g_step

    def interrupt(*args, **kwargs):  # Ctrl-C in the middle of the first step: it ends, then the state is saved
        os.kill(os.getpid(), signal.SIGINT)
        real_g_step(*args, **kwargs)

    monkeypatch.setattr(loop, "_g_step", interrupt)
    handler_before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN when started in the background
    result = train(make_config(), run_dir=tmp_path / "run", dataset=blobs)
    assert result.interrupted and result.step == 1 and result.stop_signal == "SIGINT"
    assert (tmp_path / "run" / "training-state.safetensors").is_file()
    assert _open_files_under(tmp_path / "run") == []
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is put back


def _join_single_process_group(tmp_path: Path) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0,
                                         world_size=1)


@pytest.fixture
def no_group_left():
    yield
    if torch.distributed.is_initialized():  # a failed test must not leak its group into the next one
        torch.distributed.destroy_process_group()
        pytest.fail("a process group was left joined")


def test_train_leaves_the_process_group_it_joined(make_config, blobs, tmp_path, monkeypatch, no_group_left):
    real_init = dist.init

    def init(device_type, backend=None, timeout_s=300.0):
        _join_single_process_group(tmp_path)  # what torchrun's environment makes dist.init do
        return real_init(device_type, backend, timeout_s)

    monkeypatch.setattr(dist, "init", init)
    waits = _counted_barriers(monkeypatch)
    train(make_config(), run_dir=tmp_path / "run", dataset=blobs)
    assert not torch.distributed.is_initialized()
    assert waits == [1]  # a finished rank waits for its peers once, then leaves


def _counted_barriers(monkeypatch) -> list[int]:
    """Count the process-group barriers from now on (the count is the list's only item)."""
    waits, real_barrier = [0], torch.distributed.barrier

    def barrier(*args, **kwargs):
        waits[0] += 1
        return real_barrier(*args, **kwargs)

    monkeypatch.setattr(torch.distributed, "barrier", barrier)
    return waits


def test_train_leaves_the_process_group_it_joined_on_an_error(make_config, blobs, tmp_path, monkeypatch,
                                                              no_group_left):
    monkeypatch.setattr(dist, "init", lambda *a, **k: (_join_single_process_group(tmp_path), dist.DistInfo())[1])
    monkeypatch.setattr(loop, "_g_step", _failing_g_step(1, []))
    waits = _counted_barriers(monkeypatch)
    with pytest.raises(Boom):
        train(make_config(), run_dir=tmp_path / "run", dataset=blobs)
    assert not torch.distributed.is_initialized()
    assert waits == [0]  # a failing rank does not wait for peers that may never come


def test_train_keeps_a_process_group_the_caller_joined(make_config, blobs, tmp_path, no_group_left):
    _join_single_process_group(tmp_path)
    try:
        train(make_config(), run_dir=tmp_path / "run", dataset=blobs)
        assert torch.distributed.is_initialized()
    finally:
        torch.distributed.destroy_process_group()
