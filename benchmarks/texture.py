"""Texture benchmark: train the ``texture`` preset on each shared material photograph, score it, and
time texture generation at 1024², 4096² and 8192².

Training rows (``runs/bench-texture/<texture>-<kimg>kimg-seed<s>/``, resumable like every quality table):
training images/s and minutes to the preset's budget, SIFID against random crops, the seam score of
tileable output and of a plain window of the unbounded texture, and diversity (generated vs real crops).
Generation rows: ``deconvgan texture`` at each size in a fresh process (what a user runs), its wall
time, megapixels/s, the generator's FLOPs per image (counted with torch's FlopCounterMode, margins
included) over the time as a fraction of this machine's FP32 matmul rate at the same thread count
(measured beside each row), and the process's peak RSS (VmHWM).

    python benchmarks/texture.py --threads 2                       # all eight textures, then generation
    python benchmarks/texture.py --textures gravel,bricks --threads 1
    python benchmarks/texture.py --generation-only --threads 2     # generation rows from the first texture
    python benchmarks/texture.py --picture docs/texture.png        # the README's opening picture

Textures: ../shared/data/textures (CC0 photographs, see their SOURCES.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _runs
from _runs import Row, add_run_arguments, choices, data_root, minutes, run_dir_of, run_row

from deconvgan.runfiles import CONFIG_FILE, SNAPSHOT_FILE, STATS_FILE

TEXTURES = ("bark", "bricks", "grass", "gravel", "leaves", "rusty_metal", "sand", "wood")
SIZES = (1024, 4096, 8192)
# The shared photographs are 1024 px; at half size a 64-pixel crop holds as many pebbles, planks or
# bricks as the preset's own (512-px) sample does.
SCALE = 0.5
# Materials that look the same turned by 90 degrees: these train with quarter turns (data.rot90);
# sand ripples, wood grain, bark, bricks, grass blades and the rust's streaks have a direction.
ISOTROPIC = ("gravel", "leaves")


def preset_kimg() -> float:
    """The texture preset's training budget (its first phase), read from the preset itself."""
    from deconvgan.configio import load_config

    return load_config("texture").train.phases[0].kimg


def texture_row(name: str, root: str, kimg: float, seed: int) -> Row:
    path = Path(root) / "textures" / f"{name}.jpg"
    return Row(name=f"{name}-{kimg:g}kimg-seed{seed}", preset="texture", kimg=kimg, seed=seed,
               sets=("data.source=folder", f"data.path={path}", f"data.scale={SCALE:g}",
                     f"data.rot90={'true' if name in ISOTROPIC else 'false'}"),
               metrics=("sifid", "diversity", "seam", "spectral"),
               labels={"texture": name})


def quarter_turns(out: Path, row: str) -> str:
    """Whether the row's run trained with quarter turns, read from the run's own config."""
    from deconvgan.configio import load_config

    return "yes" if load_config(run_dir_of(out / row) / CONFIG_FILE).data.rot90 else "no"


def training_table(results: list[dict], out: Path) -> str:
    lines = ["| texture | quarter turns | training images/s | training time | SIFID | seam (tileable) | "
             "seam (unbounded) | diversity (real crops) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["metrics"]
        lines.append(f"| {r['texture']} | {quarter_turns(out, r['row'])} | {r['images_per_s']:.1f} | "
                     f"{minutes(r['train_wall_s'])} ({r['kimg']:g} kimg) "
                     f"| {m['sifid']:.2f} | {m['seam']:.3f} | {m['seam-unbounded']:.2f} | "
                     f"{m['diversity']:.3f} ({m['diversity-real']:.3f}) |")
    return "\n".join(lines)


# --- generation: a fresh process per size, its time and peak memory -----------------------------------

_CHILD = """
import contextlib, io, json, re, sys, time
import torch, tqdm  # imported before the clock starts: the command's own time is what is measured
import deconvgan.tiles, deconvgan.checkpoint, deconvgan.models
from deconvgan.cli import main
out = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
seconds = time.perf_counter() - start
generation = float(re.search(r" in ([0-9.]+) s ", out.getvalue()).group(1))
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(json.dumps({"status": status, "seconds": seconds, "generation_s": generation,
                  "rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None}))
"""

_PEAK = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
n = 2048
a, b = torch.randn(n, n), torch.randn(n, n)
a @ b
best = 0.0
for _ in range(8):
    start = time.perf_counter()
    a @ b
    best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
print(best)
"""


def generate_in_child(snapshot: Path, size: int, threads: int, out: Path) -> dict:
    """``deconvgan texture`` in a fresh process: command and generation seconds, peak RSS in MB."""
    argv = ["texture", str(snapshot), "--size", f"{size}x{size}", "--out", str(out), "--threads", str(threads),
            "--no-progress"]
    done = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=_runs.child_env(threads), capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def matmul_peak_in_child(threads: int) -> float:
    """The best of eight 2048² float32 matmuls, GFLOP/s, in a fresh process at ``threads`` threads."""
    done = subprocess.run([sys.executable, "-c", _PEAK, str(threads)], env=_runs.child_env(threads),
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def generator_gflop(snapshot: Path, size: int, tile: int = 512) -> float:
    """FLOPs the tiled generation computes for a size x size texture (each tile with its margin)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from deconvgan.checkpoint import load_snapshot
    from deconvgan.latents import seed_field
    from deconvgan.models import fuse_for_inference

    generator, _ = load_snapshot(snapshot)
    generator = fuse_for_inference(generator)
    s, m = generator.scale, generator.margin
    total = 0.0
    per_side = [min(tile, size - start) for start in range(0, size, tile)]
    for h in per_side:
        for w in per_side:
            field = seed_field(generator.config, 0, -m, -m, h // s + 2 * m, w // s + 2 * m)
            with FlopCounterMode(display=False) as counter, torch.inference_mode():
                generator(field)
            total += counter.get_total_flops()
    return total / 1e9


def generation_table(snapshot: Path, sizes: list[int], threads: int) -> str:
    lines = [f"| size | generation ({threads} thread(s)) | whole command | megapixels/s | GFLOP | "
             "% of FP32 matmul rate | peak RSS |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            gflop = generator_gflop(snapshot, size)
            peak_before = matmul_peak_in_child(threads)
            run = generate_in_child(snapshot, size, threads, Path(tmp) / f"t{size}.png")
            peak = max(peak_before, matmul_peak_in_child(threads))
            seconds = run["generation_s"]
            rate = gflop / seconds
            lines.append(f"| {size}² | {seconds:.1f} s | {run['seconds']:.1f} s | {size * size / 1e6 / seconds:.2f} | "
                         f"{gflop:.0f} | {100 * rate / peak:.0f}% ({rate:.0f} of {peak:.0f} GFLOP/s) | "
                         f"{run['rss_mb']:.0f} MB |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def preset_training_speed(threads: int, steps: int = 60) -> float:
    """Images/s of the texture preset's training loop on its embedded sample, at ``threads`` threads.

    The loop logs every step; images over the total time of the logged steps, the first (warm-up) left out.
    """
    import torch
    from _loop_speed import timed_config
    from _timing import interval_images_per_s

    from deconvgan.data.crops import load_texture_sources
    from deconvgan.training import train

    torch.set_num_threads(threads)
    cfg = timed_config("texture", [], steps)
    sources = load_texture_sources(cfg.data, cfg.model.channels, cfg.model.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = train(cfg, run_dir=Path(tmp) / "run", dataset=sources).run_dir
        return interval_images_per_s(run_dir / STATS_FILE, cfg.train.batch_size)


# --- the README picture ------------------------------------------------------------------------------


def picture(snapshot: Path, source: Path, out: Path, side: int = 512, seed: int = 7) -> None:
    """Source photograph | generated tileable texture | that texture tiled 2x2 (shrunk to the same size)."""
    from PIL import Image, ImageDraw

    from deconvgan.checkpoint import load_snapshot
    from deconvgan.images import to_pil, to_uint8
    from deconvgan.models import fuse_for_inference
    from deconvgan.tiles import generate_texture

    generator, _ = load_snapshot(snapshot)
    tile = to_pil(to_uint8(generate_texture(fuse_for_inference(generator), seed, side, side, tileable=True)[None])[0])
    tiled = Image.new("RGB", (2 * side, 2 * side))
    for y in (0, side):
        for x in (0, side):
            tiled.paste(tile, (x, y))
    with Image.open(source) as photo:
        photo = photo.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    gap, label = 8, 24
    canvas = Image.new("RGB", (3 * side + 2 * gap, side + label), "white")
    for i, (image, text) in enumerate(((photo, "source photograph"), (tile, f"generated, tileable ({side} px)"),
                                       (tiled.resize((side, side), Image.Resampling.LANCZOS), "tiled 2x2"))):
        canvas.paste(image, (i * (side + gap), label))
        ImageDraw.Draw(canvas).text((i * (side + gap) + 4, 5), text, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "runs/bench-texture")
    parser.add_argument("--textures", default=",".join(TEXTURES), help="comma-separated, from ../shared/data/textures")
    parser.add_argument("--kimg", type=float, default=preset_kimg(), help="training budget per texture (default: "
                        "the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="generation sizes (pixels per side)")
    parser.add_argument("--generation-only", action="store_true", help="skip training; time generation")
    parser.add_argument("--picture", type=Path, help="write the README picture (first texture's snapshot) here")
    parser.add_argument("--speed-only", action="store_true", help="only time the preset's training loop")
    args = parser.parse_args()
    root = data_root(args.data_root)
    names = choices(parser, "--textures", args.textures, TEXTURES)
    threads = args.threads or os.cpu_count() or 1
    rows = [texture_row(n, root, args.kimg, args.seed) for n in names]
    if args.speed_only:
        rate = preset_training_speed(threads)
        print(f"texture preset: {rate:.1f} training images/s on {threads} thread(s): "
              f"{args.kimg:g} kimg in {args.kimg * 1000 / rate / 60:.1f} min")
        return 0
    if not args.generation_only:
        results = [run_row(row, args.out, root, args.threads) for row in rows]
        print(f"\n`python benchmarks/texture.py --threads {threads}` (texture preset, {args.kimg:g} kimg each):\n")
        print(training_table(results, args.out), flush=True)
    first = run_dir_of(args.out / rows[0].name)
    if first is None or not (first / SNAPSHOT_FILE).is_file():
        raise SystemExit(f"no trained snapshot under {args.out / rows[0].name}: run the training rows first")
    snapshot = first / SNAPSHOT_FILE
    if args.picture is not None:
        picture(snapshot, Path(root) / "textures" / f"{names[0]}.jpg", args.picture)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"\nGeneration from {snapshot} (tiles of 512 px, tileable, PNG written):\n")
    print(generation_table(snapshot, sizes, threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
