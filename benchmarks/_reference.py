"""The reference the speed benchmarks compare with: pytorch/examples' dcgan/main.py, re-implemented plainly.

nn.Sequential generator and discriminator with BatchNorm, the example's ``weights_init``, Sigmoid +
BCELoss, Adam 2e-4 / (0.5, 0.999), its D-then-G step order (D on a real batch, then on fakes
detached, then G through D on the same fakes), ``.item()`` of the three losses every step (it
prints them), reshuffled data every epoch (its DataLoader has ``shuffle=True``) and the default
memory format. Widths per configuration are those of the identical deconvgan architecture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Setup:
    name: str
    resolution: int
    channels: int
    batch: int
    g_widths: tuple[int, ...]  # reference generator channels from the first (4x4 or 7x7) map on
    d_widths: tuple[int, ...]


SETUPS = {
    "64x3": Setup("64x64x3, batch 128 (pytorch/examples DCGAN)", 64, 3, 128, (512, 256, 128, 64), (64, 128, 256, 512)),
    "32x1": Setup("32x32x1, batch 128", 32, 1, 128, (256, 128, 64), (64, 128, 256)),
    "mnist28": Setup("MNIST-28 preset, batch 64", 28, 1, 64, (128, 64), (64, 128)),
}
LATENT_DIM = 100


def reference_models(s: Setup, nz: int = LATENT_DIM) -> tuple[nn.Module, nn.Module]:
    base = 7 if s.resolution == 28 else 4
    g: list[nn.Module] = [nn.ConvTranspose2d(nz, s.g_widths[0], base, 1, 0, bias=False), nn.BatchNorm2d(s.g_widths[0]),
                          nn.ReLU(True)]
    for cin, cout in zip(s.g_widths, s.g_widths[1:], strict=False):
        g += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    g += [nn.ConvTranspose2d(s.g_widths[-1], s.channels, 4, 2, 1, bias=False), nn.Tanh()]
    d: list[nn.Module] = [nn.Conv2d(s.channels, s.d_widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for cin, cout in zip(s.d_widths, s.d_widths[1:], strict=False):
        d += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
    d += [nn.Conv2d(s.d_widths[-1], 1, base, 1, 0, bias=False), nn.Sigmoid()]
    G, D = nn.Sequential(*g), nn.Sequential(*d)
    for m in [*G.modules(), *D.modules()]:  # the example's weights_init
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


class ReferenceDCGAN:
    """The example's training state and step, resumable: call :meth:`train_steps` repeatedly."""

    def __init__(self, s: Setup, images: torch.Tensor, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.s = s
        self.G, self.D = reference_models(s)
        self.criterion = nn.BCELoss()
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.data = images.float() / 127.5 - 1  # the example's loader hands over normalised float batches
        # Its own random stream (shuffles, latents): whatever else runs in the process between steps
        # (deconvgan's train() re-seeds the global generator) leaves the reference's run unchanged.
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(self.data), generator=self.gen)
        self.cursor = 0
        self.steps_done = 0

    def _real_batch(self) -> torch.Tensor:
        if self.cursor + self.s.batch > len(self.order):  # a new epoch (the loader's last partial batch dropped)
            self.order, self.cursor = torch.randperm(len(self.data), generator=self.gen), 0
        index = self.order[self.cursor:self.cursor + self.s.batch]
        self.cursor += self.s.batch
        return self.data[index]

    def step(self) -> None:
        G, D, criterion, batch = self.G, self.D, self.criterion, self.s.batch
        real = self._real_batch()
        D.zero_grad()
        label = torch.full((batch,), 1.0)
        err_real = criterion(D(real).view(-1), label)
        err_real.backward()
        noise = torch.randn(batch, LATENT_DIM, 1, 1, generator=self.gen)
        fake = G(noise)
        label.fill_(0.0)
        err_fake = criterion(D(fake.detach()).view(-1), label)
        err_fake.backward()
        self.opt_d.step()
        G.zero_grad()
        label.fill_(1.0)
        err_g = criterion(D(fake).view(-1), label)
        err_g.backward()
        self.opt_g.step()
        _ = err_real.item() + err_fake.item() + err_g.item()  # the example prints these every step
        self.steps_done += 1

    def train_steps(self, steps: int) -> float:
        """Run ``steps`` steps; returns their wall time in seconds."""
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - start
