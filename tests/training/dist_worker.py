"""Started by torchrun from test_distributed.py: train a tiny config, save this rank's weights.

    torchrun --standalone --nproc_per_node=2 dist_worker.py CONFIG.yaml IMAGES.safetensors RUN_DIR OUT_PREFIX
"""

import sys

import torch
from safetensors.torch import load_file, save_file

from deconvgan.config import load_config
from deconvgan.data import ImageDataset
from deconvgan.training import train


def main() -> None:
    config_path, images_path, run_dir, out_prefix = sys.argv[1:5]
    cfg = load_config(config_path)
    images = load_file(images_path)["images"]
    result = train(cfg, run_dir=run_dir, dataset=ImageDataset(images, None, "blobs", None))
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    weights = {f"G.{k}": v for k, v in result.generator.state_dict().items()}
    weights.update({f"D.{k}": v for k, v in result.discriminator.state_dict().items()})
    save_file({k: v.contiguous() for k, v in weights.items()}, f"{out_prefix}.rank{rank}.safetensors")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
