"""The training loop: one function, read top to bottom.

``train(cfg)`` builds G and D from the config, loads the data, and walks the phase schedule one
generator step at a time. An adversarial step makes ``d_steps`` discriminator updates, then one
generator update on the fakes of the last of them (as DCGAN does: one generator forward serves
both); a generator-only step updates G against the frozen D. After each step the moving average
of G follows. At fixed intervals it logs, draws a sample grid from a fixed latent batch, and
writes a snapshot plus the training state, from which ``resume`` continues bit for bit.
Two guards watch it: :mod:`~deconvgan.training.guard` (non-finite losses or weights stop the run
or roll it back; nothing poisoned is ever saved) and :mod:`~deconvgan.training.signals` (SIGTERM,
SIGUSR1 and Ctrl-C save the training state at the end of the step and return).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deconvgan import checkpoint
from deconvgan import distributed as dist
from deconvgan.atomic import remove_stale_temporaries, write_text
from deconvgan.config import Config
from deconvgan.configio import config_to_yaml
from deconvgan.data import ImageDataset, load_dataset
from deconvgan.data.classes import check_classes, class_balance, load_class_folders
from deconvgan.data.crops import RandomCrops, TextureSources, load_texture_sources
from deconvgan.data.dataset import names_of_classes
from deconvgan.data.subset import take_fraction
from deconvgan.device import select_device
from deconvgan.errors import ConfigError
from deconvgan.latents import draw_labels, draw_latents, is_spatial
from deconvgan.losses import GanLoss, get_loss, gradient_penalty, r1_penalty
from deconvgan.models import build_discriminator, build_generator
from deconvgan.runfiles import (
    CONFIG_FILE,
    SAMPLES_DIR,
    SNAPSHOT_FILE,
    SNAPSHOTS_DIR,
    STATE_FILE,
)
from deconvgan.seeds import derive_seed, make_generator
from deconvgan.training.augment import AdaptiveP
from deconvgan.training.batches import RealBatches
from deconvgan.training.ema import ema_beta, update_ema
from deconvgan.training.evaluation import TrainingMetric
from deconvgan.training.guard import DivergenceGuard
from deconvgan.training.judge import Judge
from deconvgan.training.monitor import Monitor, ScalarMeans
from deconvgan.training.outputs import RunOutputs
from deconvgan.training.rundir import new_run_dir
from deconvgan.training.schedule import Schedule
from deconvgan.training.signals import StopSignals


@dataclass(frozen=True)
class TrainResult:
    """Where a run went and how far it got."""

    run_dir: Path
    step: int
    total_steps: int
    snapshot: Path | None
    last_stats: dict[str, Any] | None
    interrupted: bool = False
    stop_signal: str | None = None  # "SIGTERM", "SIGUSR1" or "SIGINT" when a signal stopped the run
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

    Ctrl-C, SIGTERM and SIGUSR1 save the training state at the end of the current step and return
    with ``interrupted=True`` and ``stop_signal`` set (a second Ctrl-C raises ``KeyboardInterrupt`` at
    once, saving nothing: the last saved state stays). A non-finite loss or weight raises
    :class:`~deconvgan.errors.TrainingDiverged` (or rolls back, see ``train.on_divergence``); any
    other exception propagates too. Either way, and on a normal return, the process is left as it
    was found: torch's global RNG state (seeded to build G and D), its CPU thread count
    (``run.num_threads``), the cuDNN benchmark flag and current CUDA device (CUDA runs) and the signal
    handlers are restored; a torchrun process group that ``train`` joined is left (one the caller
    joined stays); the log, stats and TensorBoard files are closed.
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
        if state.step > cfg.train.total_steps:
            raise ConfigError(f"{run_dir / STATE_FILE}: the run is at step {state.step}, beyond this config's "
                              f"schedule of {cfg.train.total_steps} steps: lengthen it (--kimg or train.phases)")
    if ranks.is_main:
        numbered = run_dir is None
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(cfg.run.runs_dir, cfg.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        if numbered:  # a start that fails leaves no numbered directory behind
            cleanup.push(_removed_if_only_config(run_dir))
        stale = [p for folder in (run_dir, run_dir / SNAPSHOTS_DIR, run_dir / SAMPLES_DIR)
                 for p in remove_stale_temporaries(folder)]  # left by writes a killed run did not finish
        write_text(run_dir / CONFIG_FILE, config_to_yaml(cfg))
    run_dir = Path(str(dist.broadcast_object(ranks, str(run_dir))))

    if dataset is None:
        dataset = _load_data(cfg)
    if isinstance(dataset, ImageDataset) and tuple(dataset.images.shape[1:]) != cfg.model.image_shape:
        raise ConfigError(
            f"dataset {dataset.name} has images of shape {tuple(dataset.images.shape[1:])}, "
            f"the model makes {cfg.model.image_shape}: set model.resolution / model.channels to match"
        )
    conditional = cfg.model.num_classes > 0
    if conditional:  # images or texture sources: labels for exactly num_classes classes, each with an image
        check_classes(dataset, cfg.model.num_classes)

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
    guard = DivergenceGuard({"generator": G, "discriminator": D, "generator average": G_ema},
                            policy=cfg.train.on_divergence, max_rollbacks=cfg.train.max_rollbacks,
                            lr_factor=cfg.train.rollback_lr_factor)
    loss = get_loss(cfg.loss.kind)
    schedule = Schedule(cfg.train)
    batch = cfg.train.batch_size
    if isinstance(dataset, TextureSources):  # random crops of whole photographs (texture models)
        reals = RandomCrops(dataset, cfg.model.resolution, batch, device, rank=ranks.rank,
                            world_size=ranks.world_size, hflip=cfg.data.hflip, rot90=cfg.data.rot90,
                            labels=dataset.labels if conditional else None)
    else:
        reals = RealBatches(dataset.images, batch, seed, device, rank=ranks.rank, world_size=ranks.world_size,
                            hflip=cfg.data.hflip, labels=dataset.labels if conditional else None)
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
        guard.rollbacks_done, guard.lr_scale = state.rollbacks, state.lr_scale
    ada = AdaptiveP(cfg.augment, batch)  # p (ADA) and its accumulators; p = 1 for diffaugment
    if state is not None and state.augment is not None and cfg.augment.kind == "ada":
        ada.load_state_dict(state.augment)
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
                 f"on {device} x {ranks.world_size} process(es); data {dataset.name}: {_describe(cfg, dataset)}")
    if state is not None and state.world_size != ranks.world_size:
        monitor.info(f"the run trained on {state.world_size} process(es) and continues on {ranks.world_size}: data "
                     "order and random draws are the same (drawn for the global batch); batch-norm statistics "
                     "are now per-rank batches of a different size unless train.sync_batchnorm is on")
    if ranks.is_main and stale:
        monitor.info(f"removed {len(stale)} temporary file(s) an interrupted write left: "
                     + ", ".join(str(p.relative_to(run_dir)) for p in stale))
    if conditional:
        monitor.info(f"class balance: {class_balance(dataset)}")
    outputs = RunOutputs(run_dir, cfg, dataset.name, monitor, grid_latents, ranks, guard,
                       saved_step=state.step if state is not None else None, adaptive=ada,
                       class_names=names_of_classes(dataset) if conditional else ())
    # A resumed run has a latest snapshot already (one that has finished reports it, having nothing to do).
    snapshot_path = run_dir / SNAPSHOT_FILE if state is not None and (run_dir / SNAPSHOT_FILE).is_file() else None
    if state is None and ranks.is_main:
        outputs.grid(outputs.inference_copy(G_ema or G), 0)
        outputs.reals(reals.get(0, make_generator(derive_seed(seed, "reals"), device)))

    # --- the loop ----------------------------------------------------------------------------------
    means = ScalarMeans()
    last_stats, step = None, start_step
    session_start = time.perf_counter()
    G.train()
    D.train()
    stop = cleanup.enter_context(StopSignals())  # from here a stop signal ends the step, then saves
    try:
        while step < end_step:
            scheduled = schedule.phase_at(step)
            # Every draw of this step comes from its own generator, drawn for the global batch and
            # sliced: a rank's share does not depend on how many ranks there are.
            gen = make_generator(derive_seed(seed, "step", step), device)
            if cfg.train.lr_decay != "none":
                lr_factor = schedule.lr_factor(step)
                _set_rates(opt_g, opt_d, cfg, guard.lr_scale * lr_factor)
                means.add("lr_factor", torch.tensor(lr_factor, device=device))
            if scheduled.phase.train_d:
                for k in range(cfg.train.d_steps):
                    real_batch = schedule.real_batches_before(step) + k
                    real = reals.get(real_batch, gen).contiguous(memory_format=memory_format)
                    z = draw_latents(cfg.model, batch, gen, device)[mine]
                    eps = torch.rand(batch, device=device, generator=gen)[mine]  # WGAN-GP mixing weights
                    # D's view: augmentation drawn from gen, the reals' and the fakes' classes (conditional)
                    judge = _judge(D, gen, cfg, ada, draw_labels(cfg.model, batch, gen, device), batch, mine,
                                   reals.labels_of(real_batch) if conditional else None)
                    last = k == cfg.train.d_steps - 1
                    with torch.set_grad_enabled(last), autocast():  # the last fakes also serve the G step
                        fake = G(z) if not conditional else G(z, judge.fake_labels)
                    r1_due = cfg.loss.r1_gamma > 0 and step % cfg.loss.r1_every == 0
                    _d_step(judge, opt_d, loss, cfg, real, fake.detach(), eps, means, ranks, autocast, ada, r1_due)
            else:
                z = draw_latents(cfg.model, batch, gen, device)[mine]
                judge = _judge(D, gen, cfg, ada, draw_labels(cfg.model, batch, gen, device), batch, mine, None)
                with autocast():
                    fake = G(z) if not conditional else G(z, judge.fake_labels)
            _g_step(judge, G, opt_g, loss, fake, means, ranks, autocast)
            step += 1
            ada.step_done(step, ranks)
            if cfg.augment.kind != "none":
                means.add("augment_p", torch.tensor(ada.p, device=device))
            if G_ema is not None:
                beta = ema_beta(batch, step * batch, cfg.train.ema_halflife_kimg, cfg.train.ema_rampup)
                update_ema(G_ema, G, beta)
            monitor.step_done()

            # --- periodic outputs (their time is kept out of images/s) ---
            final = step == end_step
            stopping = stop.requested(ranks, device)  # every rank agrees on the step at which to stop
            logged = None
            if step % log_every == 0 or final:
                wall = wall_time_s + time.perf_counter() - session_start
                last_stats = logged = monitor.log(step, scheduled.phase.name,
                                                  means.pop(lambda t: dist.mean_across_ranks(ranks, t)), wall)
            side = monitor.pause_clock()
            want_grid, want_snapshot = step % sample_every == 0 or final, step % snapshot_every == 0 or final
            want_metric = metric is not None and (step % metric_every == 0 or final)
            # Only after the time-based clock says so, and only at a logged step (every rank decides alike).
            want_state = want_snapshot or stopping or (logged is not None and outputs.state_due())
            # The guard sees every logged interval and every weight before it is saved (same steps on all ranks).
            if logged is not None or want_state:
                problem = guard.check(step, logged)
                if problem is not None:
                    step = _roll_back(problem, guard, outputs, G, D, G_ema, opt_g, opt_d, cfg)
                    means = ScalarMeans()  # the interval's sums hold the non-finite values
                    monitor.resume_clock(side)
                    continue
            warning = outputs.collapse.observe(step, logged) if logged is not None else None
            if warning is not None:
                monitor.warning(step, "discriminator-wins", warning)
            if want_metric or (ranks.is_main and (want_grid or want_snapshot)):
                inference = outputs.inference_copy(G_ema or G)  # eval mode, statistics re-estimated
                if want_grid:
                    outputs.grid(inference, step)
                if want_snapshot:
                    snapshot_path = outputs.snapshot(inference, step)
                if want_metric:  # every rank generates its share; rank 0 gets the values
                    outputs.evaluation(metric(inference), metric.key, inference, step)
            if want_state:  # with the snapshot, at a stop signal, or by time; every rank notes the step
                outputs.state(step, wall_time_s + time.perf_counter() - session_start, G, D, G_ema, opt_g, opt_d)
            monitor.resume_clock(side)
            if stopping:
                monitor.info(f"{stop.name} at step {step}; the training state is saved: resume with "
                             f"--resume {run_dir}")
                monitor.close()
                return TrainResult(run_dir, step, schedule.total_steps, snapshot_path, last_stats, interrupted=True,
                                   stop_signal=stop.name, generator=G, discriminator=D, generator_ema=G_ema)
    except KeyboardInterrupt:  # a second Ctrl-C: mid-step, so nothing is saved (it would not resume exactly)
        monitor.info(f"stopped at once during step {step + 1}; the last saved training state "
                     f"({'step ' + str(outputs.saved_step) if outputs.saved_step is not None else 'none'}) is kept")
        raise

    if step == schedule.total_steps:
        outputs.progress_gif()
    monitor.info(f"stopped at step {step}/{schedule.total_steps}; snapshot {run_dir / SNAPSHOT_FILE}")
    monitor.close()
    return TrainResult(run_dir, step, schedule.total_steps, snapshot_path, last_stats,
                       generator=G, discriminator=D, generator_ema=G_ema)


def _load_data(cfg: Config) -> ImageDataset | TextureSources:
    if is_spatial(cfg.model):
        return load_texture_sources(cfg.data, cfg.model.channels, cfg.model.resolution,
                                    classes=cfg.model.num_classes > 0)  # classes: the first-level subfolders
    if cfg.model.num_classes and cfg.data.source == "folder":  # classes: the first-level subfolders
        dataset = load_class_folders(cfg.data, cfg.model.resolution, cfg.model.channels)
    else:
        dataset = load_dataset(cfg.data, cfg.model.resolution, cfg.model.channels)
    return take_fraction(dataset, cfg.data.fraction, cfg.data.fraction_seed)


def _describe(cfg: Config, dataset: ImageDataset | TextureSources) -> str:
    if isinstance(dataset, TextureSources):
        sizes = ", ".join(f"{im.shape[2]}x{im.shape[1]}" for im in dataset.images[:4])
        more = f" and {len(dataset) - 4} more" if len(dataset) > 4 else ""
        classes = f", each of {dataset.num_classes} classes equally often" if cfg.model.num_classes else ""
        return f"{len(dataset)} source image(s) of {sizes}{more} px, random crops{classes}"
    if cfg.data.fraction < 1:
        return (f"{len(dataset.images)} images {tuple(dataset.images.shape[1:])}, data.fraction={cfg.data.fraction:g} "
                f"of the set (seed {cfg.data.fraction_seed}{', per class' if dataset.labels is not None else ''})")
    return f"{len(dataset.images)} images {tuple(dataset.images.shape[1:])}"


# --- the two updates ---------------------------------------------------------------------------------


def _judge(D: nn.Module, gen: torch.Generator, cfg: Config, ada: AdaptiveP, fake_labels: torch.Tensor | None,
           batch: int, mine: slice, real_labels: torch.Tensor | None) -> Judge:
    """D as this step calls it: augmented inputs (drawn from ``gen``), the classes of reals and fakes."""
    return Judge(D, gen, cfg.augment, ada.p, real_labels=real_labels,
                 fake_labels=None if fake_labels is None else fake_labels[mine], total=batch, share=mine)


def _d_step(judge: Judge, opt_d: torch.optim.Optimizer, loss: GanLoss, cfg: Config, real: torch.Tensor,
            fake: torch.Tensor, eps: torch.Tensor, means: ScalarMeans, ranks: dist.DistInfo, autocast,
            ada: AdaptiveP, r1: bool) -> None:
    """One discriminator update on a real and a fake batch (each its own forward: BatchNorm
    statistics per batch, as in DCGAN). ``judge`` augments D's inputs and passes the classes; ``r1``:
    this step adds the R1 penalty (weighted x ``loss.r1_every``: lazy R1 keeps its average strength)."""
    D = judge.D
    if r1:
        real.requires_grad_(True)
    with autocast():
        real_logits = judge.real(real).float()  # [b]
        fake_logits = judge.fake(fake).float()  # [b]
    ada.observe(real_logits)
    d_loss = loss.d_loss(real_logits, fake_logits)
    total = d_loss
    if r1:
        penalty = r1_penalty(real_logits, real)
        total = total + 0.5 * cfg.loss.r1_gamma * cfg.loss.r1_every * penalty
        means.add("r1", penalty)
    if cfg.loss.kind == "wasserstein" and cfg.loss.gp_weight > 0:
        penalty = gradient_penalty(judge.plain, real.detach(), fake, eps=eps)
        total = total + cfg.loss.gp_weight * penalty
        means.add("gp", penalty)
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    dist.average_gradients(ranks, D)
    opt_d.step()
    means.add("loss_d", d_loss)
    means.add("d_real", torch.sigmoid(real_logits.detach()).mean())
    means.add("d_fake", torch.sigmoid(fake_logits.detach()).mean())


def _g_step(judge: Judge, G: nn.Module, opt_g: torch.optim.Optimizer, loss: GanLoss,
            fake: torch.Tensor, means: ScalarMeans, ranks: dist.DistInfo, autocast) -> None:
    """One generator update through D (its inputs augmented as in the D step, gradients flowing through
    the augmentation to G), whose weight gradients are not computed (only G learns)."""
    D = judge.D
    D.requires_grad_(False)
    with autocast():
        fake_logits = judge.fake(fake).float()
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
    checkpoint.load_optimizer_state(path, opt_g, state.opt_g, "generator")
    checkpoint.load_optimizer_state(path, opt_d, state.opt_d, "discriminator")
    # The rates of this session's config win over the saved ones (a user may lower them on resume), times
    # what the divergence guard's rollbacks took off them (the decay schedule sets its factor at each step).
    _set_rates(opt_g, opt_d, cfg, state.lr_scale)
    torch.set_rng_state(state.rng_cpu)


def _set_rates(opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, cfg: Config, scale: float) -> None:
    """Both optimisers' rates: the config's times ``scale`` (rollbacks, the decay schedule); betas from the config."""
    for opt, lr in ((opt_g, cfg.train.g_lr), (opt_d, cfg.train.d_lr)):
        for group in opt.param_groups:
            group["lr"], group["betas"] = lr * scale, cfg.train.betas


def _roll_back(problem: str, guard: DivergenceGuard, outputs: RunOutputs, G: nn.Module, D: nn.Module,
               G_ema: nn.Module | None, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               cfg: Config) -> int:
    """Reload the last good training state with lowered rates and return its step, or raise TrainingDiverged."""
    guard.on_divergence(problem, outputs.saved_step)  # raises unless a rollback is allowed
    path = outputs.run_dir / STATE_FILE
    state = checkpoint.load_training_state(path)
    state.lr_scale = guard.lr_scale
    _restore(path, state, G, D, G_ema, opt_g, opt_d, cfg)
    if outputs.adaptive is not None and state.augment is not None and outputs.adaptive.adaptive:
        outputs.adaptive.load_state_dict(state.augment)  # ADA's p goes back with the weights
    outputs.monitor.warning(state.step, "rollback", f"training diverged at {problem}: rolled back to step "
                            f"{state.step} with learning rates x{guard.lr_scale:g} (rollback {guard.rollbacks_done} "
                            f"of {guard.max_rollbacks})")
    return state.step


def _removed_if_only_config(run_dir: Path):
    """An exit callback that deletes ``run_dir`` when the run fails before writing more than its config."""
    def exit_(exc_type, exc, tb) -> bool:
        if exc_type is not None and run_dir.is_dir() and [p.name for p in run_dir.iterdir()] == [CONFIG_FILE]:
            (run_dir / CONFIG_FILE).unlink()
            run_dir.rmdir()
        return False  # the exception propagates
    return exit_
