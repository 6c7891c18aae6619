"""One process or many: torchrun's environment decides, the training code is the same.

``init()`` reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun``) and, when there
is more than one process, joins the process group (``nccl`` on CUDA, ``gloo`` on the CPU, or the
backend asked for). Without those variables it is a single process and nothing is initialised.
This is the only module that reads the environment.

Gradients are averaged across ranks with one all-reduce of a flat buffer per update
(:func:`average_gradients`), the same arithmetic as DistributedDataParallel. Doing it by hand
keeps every update of the loop possible under many processes: the discriminator's two forward
passes per step, the generator step through a discriminator whose weights take no gradient, and
the double backward of the R1 and WGAN-GP penalties, which DDP's reducer does not support.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from deconvgan.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands among the processes of a run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on the process that writes logs, grids, snapshots and training states."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init(device_type: str, backend: str | None = None, timeout_s: float = 300.0) -> DistInfo:
    """Join the torchrun process group if there is one; a single process otherwise.

    ``timeout_s`` bounds how long a collective waits for a missing rank before failing loudly
    (torchrun also stops the other workers as soon as one dies).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE is set but RANK is not: start many processes with torchrun") from None
    backend = backend or ("nccl" if device_type == "cuda" else "gloo")
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)


def leave(wait_for_peers: bool = False) -> None:
    """Leave the process group this process has joined (nothing if it has joined none).

    ``wait_for_peers``: first wait until every rank gets here. A rank that tore its gloo pairs down
    while a peer was still finishing its last collective could abort that peer at exit
    ("terminate called without an active exception"). Only for a normal finish: after an error the
    failing rank's peers may never arrive.
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def left_on_exit() -> Iterator[None]:
    """Leave, on any exit, a process group joined inside the block; one joined before the block stays.

    On a normal exit every rank first waits for the others; after an error nobody waits."""
    joined_before = dist.is_available() and dist.is_initialized()
    finished = False
    try:
        yield
        finished = True
    finally:
        if not joined_before:
            leave(wait_for_peers=finished)


def barrier(info: DistInfo) -> None:
    """Wait for every rank."""
    if info.enabled:
        dist.barrier()


def broadcast_object(info: DistInfo, value: object) -> object:
    """Rank 0's ``value`` on every rank (small, trusted values between our own processes)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_module(info: DistInfo, module: nn.Module) -> None:
    """Make every rank hold rank 0's parameters and buffers."""
    if info.enabled:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def mean_across_ranks(info: DistInfo, values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over ranks (for logged statistics)."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / info.world_size


def average_gradients(info: DistInfo, module: nn.Module) -> None:
    """Replace each gradient with its mean over ranks: one all-reduce of one flat buffer."""
    if not info.enabled:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


# --- synchronised batch norm that works on the CPU too ----------------------------------------------


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are taken over the global batch of all ranks.

    torch.nn.SyncBatchNorm only runs on GPUs; this one averages per-channel sums with a
    differentiable all-reduce and so works with gloo on the CPU as well as with nccl. Every rank
    must hold the same number of samples. With one process it is exactly BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable all-reduce

        world = dist.get_world_size()
        count = x.shape[0] * x.shape[2] * x.shape[3] * world  # samples per channel, all ranks
        local = torch.cat([x.mean(dim=(0, 2, 3)), x.square().mean(dim=(0, 2, 3))])  # [2C]
        mean, mean_sq = (all_reduce(local) / world).chunk(2)
        var = (mean_sq - mean.square()).clamp_min(0)  # biased, as batch norm normalises with
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / max(count - 1, 1), momentum)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            return (x - mean[None, :, None, None]) * (scale * self.weight)[None, :, None, None] + \
                self.bias[None, :, None, None]
        return (x - mean[None, :, None, None]) * scale[None, :, None, None]


def _swap_batchnorm(module: nn.Module, matches, make: type[nn.BatchNorm2d]) -> nn.Module:
    """Replace (in place) every child for which ``matches(child)`` with ``make`` holding the same state."""
    for name, child in module.named_children():
        if matches(child):
            swapped = make(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            swapped.load_state_dict(child.state_dict())
            where = next(iter([*child.parameters(), *child.buffers()]), torch.empty(0)).device
            setattr(module, name, swapped.to(where))
        else:
            _swap_batchnorm(child, matches, make)
    return module


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d in ``module`` (in place) for :class:`SyncBatchNorm2d`; same state."""
    return _swap_batchnorm(module, lambda m: type(m) is nn.BatchNorm2d, SyncBatchNorm2d)


def convert_local_batchnorm(module: nn.Module) -> nn.Module:
    """The inverse of :func:`convert_sync_batchnorm` (in place): for single-process inference copies."""
    return _swap_batchnorm(module, lambda m: isinstance(m, SyncBatchNorm2d), nn.BatchNorm2d)
