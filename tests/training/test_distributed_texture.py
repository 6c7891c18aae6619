"""A texture model under torchrun: two gloo ranks draw their shares of the same crops and follow one
process of twice the batch (synchronised batch norm), and both ranks hold the same weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from deconvgan.data.crops import TextureSources
from deconvgan.training import train
from tests.training.test_distributed import _launch, _params
from tests.training.test_spatial_training import TEXTURE

pytestmark = pytest.mark.distributed


def test_two_ranks_of_a_tileable_texture_model_match_one_process(make_config, tmp_path):
    y, x = torch.meshgrid(torch.arange(40), torch.arange(48), indexing="ij")
    source = torch.stack([(y + x) % 8 * 32, (y - x) % 6 * 40, (2 * y) % 10 * 25]).to(torch.uint8)  # [3, 40, 48]
    cfg = make_config(*TEXTURE, "model.tileable=true", "train.batch_size=8", "train.phases=[{steps: 4}]",
                      "train.sync_batchnorm=true", "run.num_threads=1")
    process = _launch(tmp_path, cfg, source)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    rank0 = load_file(str(tmp_path / "weights.rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "weights.rank1.safetensors"))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    single = train(cfg, run_dir=tmp_path / "single", dataset=TextureSources((source,), "stripes"))
    expected = {f"G.{k}": v for k, v in single.generator.state_dict().items()}
    expected.update({f"D.{k}": v for k, v in single.discriminator.state_dict().items()})
    for key, value in _params(expected).items():
        assert torch.allclose(rank0[key], value, rtol=1e-4, atol=1e-5), key
