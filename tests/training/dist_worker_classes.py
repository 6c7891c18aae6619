"""Started by torchrun from test_distributed_classes.py: train a labelled tiny set, save this rank's weights.

    torchrun --standalone --nproc_per_node=2 dist_worker_classes.py CONFIG.yaml DATA.safetensors RUN_DIR OUT_PREFIX
"""

import os
import sys

from safetensors.torch import load_file, save_file

from deconvgan.configio import load_config
from deconvgan.data import ImageDataset
from deconvgan.training import train


def main() -> None:
    config_path, data_path, run_dir, out_prefix = sys.argv[1:5]
    cfg = load_config(config_path)
    data = load_file(data_path)  # images uint8 [N, C, H, W], labels int64 [N]
    dataset = ImageDataset(data["images"], data["labels"], "blobs", int(data["labels"].max()) + 1)
    result = train(cfg, run_dir=run_dir, dataset=dataset)
    rank = int(os.environ.get("RANK", "0"))
    weights = {f"G.{k}": v for k, v in result.generator.state_dict().items()}
    weights.update({f"D.{k}": v for k, v in result.discriminator.state_dict().items()})
    save_file({k: v.contiguous() for k, v in weights.items()}, f"{out_prefix}.rank{rank}.safetensors")


if __name__ == "__main__":
    main()
