"""Started by torchrun from test_distributed.py: train a tiny config, save this rank's weights.

    torchrun --standalone --nproc_per_node=2 dist_worker.py CONFIG.yaml IMAGES.safetensors RUN_DIR OUT_PREFIX
"""

import os
import sys

from safetensors.torch import load_file, save_file

from deconvgan.configio import load_config
from deconvgan.data import ImageDataset
from deconvgan.data.crops import TextureSources
from deconvgan.training import train


def main() -> None:
    config_path, images_path, run_dir, out_prefix = sys.argv[1:5]
    cfg = load_config(config_path)
    images = load_file(images_path)["images"]
    # [N, C, H, W]: whole images; [C, H, W]: one texture photograph, trained on through random crops
    dataset = TextureSources((images,), "stripes") if images.dim() == 3 else ImageDataset(images, None, "blobs", None)
    result = train(cfg, run_dir=run_dir, dataset=dataset)
    assert not torch_distributed_joined(), "train() must leave the process group it joined"
    rank = int(os.environ.get("RANK", "0"))
    weights = {f"G.{k}": v for k, v in result.generator.state_dict().items()}
    weights.update({f"D.{k}": v for k, v in result.discriminator.state_dict().items()})
    save_file({k: v.contiguous() for k, v in weights.items()}, f"{out_prefix}.rank{rank}.safetensors")


def torch_distributed_joined() -> bool:
    import torch.distributed

    return torch.distributed.is_initialized()


if __name__ == "__main__":
    main()
