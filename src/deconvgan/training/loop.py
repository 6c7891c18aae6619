"""The training loop: one function, read top to bottom.

``train(cfg)`` builds G and D from the config, loads the data, and walks the phase schedule one
generator step at a time. An adversarial step makes ``d_steps`` discriminator updates, then one
generator update on the fakes of the last of them (as DCGAN does: one generator forward serves
both); a generator-only step updates G against the frozen D. After each step the moving average
of G follows. At fixed intervals it logs, draws a sample grid from a fixed latent batch, and
writes a snapshot plus the training state, from which ``resume`` continues bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deconvgan import checkpoint
from deconvgan import distributed as dist
from deconvgan.atomic import write_bytes, write_text
from deconvgan.config import Config
from deconvgan.configio import config_to_yaml
from deconvgan.data import ImageDataset, load_dataset
from deconvgan.data.crops import RandomCrops, TextureSources, load_texture_sources
from deconvgan.device import select_device
from deconvgan.errors import ConfigError
from deconvgan.images import display_scale, make_grid, save_gif, save_png, to_uint8
from deconvgan.latents import draw_latents, is_spatial
from deconvgan.losses import GanLoss, get_loss, gradient_penalty, r1_penalty
from deconvgan.models import build_discriminator, build_generator
from deconvgan.runfiles import (
    BEST_SNAPSHOT_FILE,
    CONFIG_FILE,
    GRID_GLOB,
    PROGRESS_GIF,
    SAMPLES_DIR,
    SNAPSHOT_FILE,
    SNAPSHOTS_DIR,
    STATE_FILE,
    grid_name,
    step_snapshot_name,
)
from deconvgan.seeds import derive_seed, make_generator
from deconvgan.training.batches import RealBatches
from deconvgan.training.ema import ema_beta, recalibrate_batchnorm, update_ema
from deconvgan.training.evaluation import TrainingMetric, read_best, write_best
from deconvgan.training.monitor import Monitor, ScalarMeans
from deconvgan.training.rundir import new_run_dir
from deconvgan.training.schedule import Schedule

RECALIBRATION_SAMPLES = 2048  # latents used to re-estimate batch-norm statistics for snapshots


@dataclass(frozen=True)
class TrainResult:
    """Where a run went and how far it got."""

    run_dir: Path
    step: int
    total_steps: int
    snapshot: Path | None
    last_stats: dict[str, Any] | None
    interrupted: bool = False
    generator: nn.Module | None = field(default=None, repr=False)  # the trained modules, in memory
    discriminator: nn.Module | None = field(default=None, repr=False)
    generator_ema: nn.Module | None = field(default=None, repr=False)


def _every(kimg: float, batch_size: int) -> int:
    return max(1, round(kimg * 1000 / batch_size))


def train(
    cfg: Config, *, run_dir: str | Path | None = None, resume: str | Path | None = None,
    until_step: int | None = None, dataset: ImageDataset | TextureSources | None = None,
) -> TrainResult:
    """Train a GAN as ``cfg`` says and return where its outputs are.

    - ``run_dir``: write here instead of a new numbered directory under ``cfg.run.runs_dir``.
    - ``resume``: a run directory whose training state to continue from (its model must match).
    - ``until_step``: stop after this many generator steps (saving the state), even if the
      schedule goes further; continue later with ``resume``.
    - ``dataset``: use these images instead of loading ``cfg.data`` (for tests and notebooks).

    Ctrl-C saves the training state and returns with ``interrupted=True``; any other exception
    propagates. Either way, and on a normal return, the process is left as it was found: torch's
    global RNG state (seeded to build G and D), its CPU thread count (``run.num_threads``), the
    cuDNN benchmark flag and current CUDA device (CUDA runs) are restored; a torchrun process
    group that ``train`` joined is left (one the caller joined stays); the log, stats and
    TensorBoard files are closed.
    """
    with contextlib.ExitStack() as cleanup:  # unwound in reverse: outputs closed, group left, state restored
        cleanup.enter_context(_process_state_restored(cfg))
        cleanup.enter_context(dist.left_on_exit())
        return _train(cfg, run_dir=run_dir, resume=resume, until_step=until_step, dataset=dataset,
                      cleanup=cleanup)


@contextlib.contextmanager
def _process_state_restored(cfg: Config) -> Iterator[None]:
    """Put back the process-wide torch settings ``_train`` changes, however it ends."""
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    on_cuda = cfg.run.device != "cpu" and torch.cuda.is_available()
    # Only a CUDA run touches CUDA's RNGs; forking them on a CPU run would initialise CUDA for nothing.
    rng_devices = list(range(torch.cuda.device_count())) if on_cuda else []
    cuda_device = torch.cuda.current_device() if torch.cuda.is_initialized() else None
    try:
        with torch.random.fork_rng(devices=rng_devices):
            yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark
        if cuda_device is not None:
            torch.cuda.set_device(cuda_device)


def _train(
    cfg: Config, *, run_dir: str | Path | None, resume: str | Path | None, until_step: int | None,
    dataset: ImageDataset | TextureSources | None, cleanup: contextlib.ExitStack,
) -> TrainResult:
    """The body of :func:`train`, free to change process-wide state; ``cleanup`` closes what it opens."""
    # --- setup: processes, device, data, models, optimisers ----------------------------------------
    device = select_device(cfg.run.device)
    ranks = dist.init(device.type, cfg.run.dist_backend, cfg.run.dist_timeout_s)
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank if ranks.enabled else device.index or 0)
        torch.backends.cudnn.benchmark = cfg.run.cudnn_benchmark
    if cfg.run.num_threads is not None:
        torch.set_num_threads(cfg.run.num_threads)
    state = None
    if resume is not None:
        run_dir = Path(resume)
        state = checkpoint.load_training_state(run_dir / STATE_FILE)
        if state.config.model != cfg.model:
            raise ConfigError(
                f"{run_dir}: the model config differs from the one the run was trained with; "
                "resume with the run's own config (only schedule, rates and run options may change)"
            )
    if ranks.is_main:
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(cfg.run.runs_dir, cfg.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / CONFIG_FILE, config_to_yaml(cfg))
    run_dir = Path(str(dist.broadcast_object(ranks, str(run_dir))))

    if dataset is None:
        dataset = _load_data(cfg)
    if isinstance(dataset, ImageDataset) and tuple(dataset.images.shape[1:]) != cfg.model.image_shape:
        raise ConfigError(
            f"dataset {dataset.name} has images of shape {tuple(dataset.images.shape[1:])}, "
            f"the model makes {cfg.model.image_shape}: set model.resolution / model.channels to match"
        )

    seed = cfg.train.seed
    torch.manual_seed(seed)  # initial weights of G, then D (the same on every rank)
    G = build_generator(cfg.model)
    D = build_discriminator(cfg.model)
    if cfg.train.sync_batchnorm:
        G, D = dist.convert_sync_batchnorm(G), dist.convert_sync_batchnorm(D)
    memory_format = torch.channels_last if cfg.run.channels_last else torch.preserve_format
    G = G.to(device, memory_format=memory_format)
    D = D.to(device, memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema_halflife_kimg else None
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.train.g_lr, betas=cfg.train.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.train.d_lr, betas=cfg.train.betas)
    loss = get_loss(cfg.loss.kind)
    schedule = Schedule(cfg.train)
    batch = cfg.train.batch_size
    if isinstance(dataset, TextureSources):  # random crops of whole photographs (texture models)
        reals = RandomCrops(dataset, cfg.model.resolution, batch, device, rank=ranks.rank,
                            world_size=ranks.world_size, hflip=cfg.data.hflip, rot90=cfg.data.rot90)
    else:
        reals = RealBatches(dataset.images, batch, seed, device, rank=ranks.rank, world_size=ranks.world_size,
                            hflip=cfg.data.hflip)
    if reals.batch_per_rank % cfg.model.d_pack:
        raise ConfigError(f"the per-process batch {reals.batch_per_rank} is not divisible by model.d_pack="
                          f"{cfg.model.d_pack}: make train.batch_size a multiple of {cfg.model.d_pack} x processes")
    mine = slice(ranks.rank * reals.batch_per_rank, (ranks.rank + 1) * reals.batch_per_rank)  # rank's share
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if cfg.run.amp == "bf16" \
        else contextlib.nullcontext

    start_step, wall_time_s = 0, 0.0
    if state is not None:
        _restore(run_dir / STATE_FILE, state, G, D, G_ema, opt_g, opt_d, cfg)
        start_step, wall_time_s = state.step, state.wall_time_s
    dist.broadcast_module(ranks, G)  # identical by seeding already; this makes sure of it
    dist.broadcast_module(ranks, D)
    end_step = schedule.total_steps if until_step is None else min(until_step, schedule.total_steps)

    grid_latents = draw_latents(cfg.model, cfg.run.grid_size, make_generator(derive_seed(seed, "grid"))).to(device)
    log_every = _every(cfg.run.log_every_kimg, batch)
    sample_every = _every(cfg.run.sample_every_kimg, batch)
    snapshot_every = _every(cfg.run.snapshot_every_kimg, batch)
    metric_every = _every(cfg.run.metric_every_kimg, batch)
    metric = TrainingMetric(cfg, device, ranks) if cfg.run.metric is not None else None

    monitor = Monitor(run_dir, total_steps=schedule.total_steps, start_step=start_step, batch_size=batch,
                      progress=cfg.run.progress, tensorboard=cfg.run.tensorboard, resumed=state is not None,
                      enabled=ranks.is_main)
    cleanup.callback(monitor.close)  # on any exception too (closing twice is harmless)
    monitor.info(f"{'resuming' if state else 'starting'} {run_dir} at step {start_step}/{schedule.total_steps} "
                 f"on {device} x {ranks.world_size} process(es); data {dataset.name}: {_describe(dataset)}")
    if state is not None and state.world_size != ranks.world_size:
        monitor.info(f"the run trained on {state.world_size} process(es) and continues on {ranks.world_size}: data "
                     "order and random draws are the same (drawn for the global batch); batch-norm statistics "
                     "are now per-rank batches of a different size unless train.sync_batchnorm is on")
    outputs = _Outputs(run_dir, cfg, dataset.name, monitor, grid_latents, ranks)
    if state is None and ranks.is_main:
        outputs.grid(outputs.inference_copy(G_ema or G), 0)

    # --- the loop ----------------------------------------------------------------------------------
    means = ScalarMeans()
    last_stats, snapshot_path, step = None, None, start_step
    session_start = time.perf_counter()
    G.train()
    D.train()
    try:
        while step < end_step:
            scheduled = schedule.phase_at(step)
            # Every draw of this step comes from its own generator, drawn for the global batch and
            # sliced: a rank's share does not depend on how many ranks there are.
            gen = make_generator(derive_seed(seed, "step", step), device)
            if scheduled.phase.train_d:
                for k in range(cfg.train.d_steps):
                    real = reals.get(schedule.real_batches_before(step) + k, gen).contiguous(
                        memory_format=memory_format)
                    z = draw_latents(cfg.model, batch, gen, device)[mine]
                    eps = torch.rand(batch, device=device, generator=gen)[mine]  # WGAN-GP mixing weights
                    last = k == cfg.train.d_steps - 1
                    with torch.set_grad_enabled(last), autocast():  # the last fakes also serve the G step
                        fake = G(z)
                    _d_step(D, opt_d, loss, cfg, real, fake.detach(), eps, means, ranks, autocast)
            else:
                z = draw_latents(cfg.model, batch, gen, device)[mine]
                with autocast():
                    fake = G(z)
            _g_step(D, G, opt_g, loss, fake, means, ranks, autocast)
            step += 1
            if G_ema is not None:
                beta = ema_beta(batch, step * batch, cfg.train.ema_halflife_kimg, cfg.train.ema_rampup)
                update_ema(G_ema, G, beta)
            monitor.step_done()

            # --- periodic outputs (their time is kept out of images/s) ---
            final = step == end_step
            if step % log_every == 0 or final:
                wall = wall_time_s + time.perf_counter() - session_start
                last_stats = monitor.log(step, scheduled.phase.name,
                                         means.pop(lambda t: dist.mean_across_ranks(ranks, t)), wall)
            side = monitor.pause_clock()
            want_grid, want_snapshot = step % sample_every == 0 or final, step % snapshot_every == 0 or final
            want_metric = metric is not None and (step % metric_every == 0 or final)
            if want_metric or (ranks.is_main and (want_grid or want_snapshot)):
                inference = outputs.inference_copy(G_ema or G)  # eval mode, statistics re-estimated
                if want_grid:
                    outputs.grid(inference, step)
                if want_snapshot:
                    wall = wall_time_s + time.perf_counter() - session_start
                    snapshot_path = outputs.snapshot(inference, step)
                    outputs.state(step, wall, G, D, G_ema, opt_g, opt_d)
                if want_metric:  # every rank generates its share; rank 0 gets the values
                    outputs.evaluation(metric(inference), metric.key, inference, step)
            monitor.resume_clock(side)
    except KeyboardInterrupt:
        wall = wall_time_s + time.perf_counter() - session_start
        outputs.state(step, wall, G, D, G_ema, opt_g, opt_d)
        monitor.info(f"interrupted at step {step}; the training state is saved: resume with --resume {run_dir}")
        monitor.close()
        return TrainResult(run_dir, step, schedule.total_steps, snapshot_path, last_stats, interrupted=True,
                           generator=G, discriminator=D, generator_ema=G_ema)

    if step == schedule.total_steps:
        outputs.progress_gif()
    monitor.info(f"stopped at step {step}/{schedule.total_steps}; snapshot {run_dir / SNAPSHOT_FILE}")
    monitor.close()
    return TrainResult(run_dir, step, schedule.total_steps, snapshot_path, last_stats,
                       generator=G, discriminator=D, generator_ema=G_ema)


def _load_data(cfg: Config) -> ImageDataset | TextureSources:
    if is_spatial(cfg.model):
        return load_texture_sources(cfg.data, cfg.model.channels, cfg.model.resolution)
    return load_dataset(cfg.data, cfg.model.resolution, cfg.model.channels)


def _describe(dataset: ImageDataset | TextureSources) -> str:
    if isinstance(dataset, TextureSources):
        sizes = ", ".join(f"{im.shape[2]}x{im.shape[1]}" for im in dataset.images[:4])
        more = f" and {len(dataset) - 4} more" if len(dataset) > 4 else ""
        return f"{len(dataset)} source image(s) of {sizes}{more} px, random crops"
    return f"{len(dataset.images)} images {tuple(dataset.images.shape[1:])}"


# --- the two updates ---------------------------------------------------------------------------------


def _d_step(D: nn.Module, opt_d: torch.optim.Optimizer, loss: GanLoss, cfg: Config, real: torch.Tensor,
            fake: torch.Tensor, eps: torch.Tensor, means: ScalarMeans, ranks: dist.DistInfo, autocast) -> None:
    """One discriminator update on a real and a fake batch (each its own forward: BatchNorm
    statistics per batch, as in DCGAN)."""
    r1 = cfg.loss.r1_gamma > 0
    if r1:
        real.requires_grad_(True)
    with autocast():
        real_logits = D(real).float()  # [b]
        fake_logits = D(fake).float()  # [b]
    d_loss = loss.d_loss(real_logits, fake_logits)
    total = d_loss
    if r1:
        penalty = r1_penalty(real_logits, real)
        total = total + 0.5 * cfg.loss.r1_gamma * penalty
        means.add("r1", penalty)
    if cfg.loss.kind == "wasserstein" and cfg.loss.gp_weight > 0:
        penalty = gradient_penalty(D, real.detach(), fake, eps=eps)
        total = total + cfg.loss.gp_weight * penalty
        means.add("gp", penalty)
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    dist.average_gradients(ranks, D)
    opt_d.step()
    means.add("loss_d", d_loss)
    means.add("d_real", torch.sigmoid(real_logits.detach()).mean())
    means.add("d_fake", torch.sigmoid(fake_logits.detach()).mean())


def _g_step(D: nn.Module, G: nn.Module, opt_g: torch.optim.Optimizer, loss: GanLoss,
            fake: torch.Tensor, means: ScalarMeans, ranks: dist.DistInfo, autocast) -> None:
    """One generator update through D, whose weight gradients are not computed (only G learns)."""
    D.requires_grad_(False)
    with autocast():
        fake_logits = D(fake).float()
    g_loss = loss.g_loss(fake_logits)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    dist.average_gradients(ranks, G)
    opt_g.step()
    D.requires_grad_(True)
    means.add("loss_g", g_loss)
    means.add("d_fake_g", torch.sigmoid(fake_logits.detach()).mean())


# --- resume and outputs ------------------------------------------------------------------------------


def _restore(path: Path, state: checkpoint.TrainingState, G: nn.Module, D: nn.Module, G_ema: nn.Module | None,
             opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, cfg: Config) -> None:
    checkpoint.load_module_weights(path, G, state.generator, "generator")
    checkpoint.load_module_weights(path, D, state.discriminator, "discriminator")
    if G_ema is not None:
        checkpoint.load_module_weights(path, G_ema, state.generator_ema or state.generator, "generator average")
    opt_g.load_state_dict(state.opt_g)
    opt_d.load_state_dict(state.opt_d)
    # The rates of this session's config win over the saved ones (a user may lower them on resume).
    for opt, lr in ((opt_g, cfg.train.g_lr), (opt_d, cfg.train.d_lr)):
        for group in opt.param_groups:
            group["lr"], group["betas"] = lr, cfg.train.betas
    torch.set_rng_state(state.rng_cpu)


class _Outputs:
    """Sample grids, snapshots and training states of one run directory."""

    def __init__(self, run_dir: Path, cfg: Config, dataset_name: str, monitor: Monitor,
                 grid_latents: torch.Tensor, ranks: dist.DistInfo) -> None:
        self.run_dir, self.cfg, self.dataset_name, self.monitor = run_dir, cfg, dataset_name, monitor
        self.grid_latents = grid_latents
        self.enabled = ranks.is_main  # only rank 0 writes; the others skip every output
        self.world_size = ranks.world_size
        best = read_best(run_dir) if self.enabled else None
        self.best_value = best["value"] if best is not None else math.inf
        if self.enabled:
            (run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
            (run_dir / SNAPSHOTS_DIR).mkdir(exist_ok=True)

    def inference_copy(self, generator: nn.Module) -> nn.Module:
        # A single-process copy (no collective calls: only rank 0 runs this) in the standard format.
        local = dist.convert_local_batchnorm(copy.deepcopy(generator)).to(memory_format=torch.contiguous_format)
        gen = make_generator(derive_seed(self.cfg.train.seed, "recalibrate"), self.grid_latents.device)
        return recalibrate_batchnorm(local, self.cfg.model, num_samples=RECALIBRATION_SAMPLES,
                                     batch_size=256, gen=gen)

    @torch.no_grad()
    def grid(self, inference: nn.Module, step: int) -> None:
        if not self.enabled:
            return
        images = to_uint8(inference(self.grid_latents))
        grid = make_grid(images)
        save_png(grid, self.run_dir / SAMPLES_DIR / grid_name(step), scale=display_scale(images.shape[-1]))
        self.monitor.image("samples", grid, step)

    def snapshot(self, inference: nn.Module, step: int) -> Path:
        if not self.enabled:
            return self.run_dir / SNAPSHOT_FILE
        path = self.run_dir / SNAPSHOTS_DIR / step_snapshot_name(step)
        checkpoint.save_snapshot(path, inference, self.cfg.model, step=step,
                                 kimg=step * self.cfg.train.batch_size / 1000, run_name=self.run_dir.name,
                                 dataset=self.dataset_name)
        write_bytes(self.run_dir / SNAPSHOT_FILE, path.read_bytes())
        return self.run_dir / SNAPSHOT_FILE

    def evaluation(self, values: dict[str, float] | None, key: str, inference: nn.Module, step: int) -> None:
        """Log the metric values; keep snapshot-best.safetensors when ``key`` improved (lower is better)."""
        if not self.enabled or values is None:
            return
        self.monitor.metrics(step, values)
        if values[key] < self.best_value:
            self.best_value = values[key]
            kimg = step * self.cfg.train.batch_size / 1000
            checkpoint.save_snapshot(self.run_dir / BEST_SNAPSHOT_FILE, inference, self.cfg.model, step=step,
                                     kimg=kimg, run_name=self.run_dir.name, dataset=self.dataset_name)
            write_best(self.run_dir, step, kimg, key, values[key])

    def state(self, step: int, wall_time_s: float, G: nn.Module, D: nn.Module,
              G_ema: nn.Module | None, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> None:
        if not self.enabled:
            return
        checkpoint.save_training_state(self.run_dir / STATE_FILE, checkpoint.TrainingState(
            config=self.cfg, step=step, wall_time_s=wall_time_s,
            generator=G.state_dict(), discriminator=D.state_dict(),
            generator_ema=G_ema.state_dict() if G_ema is not None else None,
            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), rng_cpu=torch.get_rng_state(),
            world_size=self.world_size,
        ))

    def progress_gif(self) -> None:
        if not self.enabled:
            return
        from PIL import Image

        frames = []
        for path in sorted((self.run_dir / SAMPLES_DIR).glob(GRID_GLOB)):
            with Image.open(path) as image:
                frames.append(image.convert("RGB"))
        if frames:
            save_gif(frames, self.run_dir / SAMPLES_DIR / PROGRESS_GIF, frame_ms=300)

