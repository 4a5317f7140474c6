"""A plain PyTorch WaveGAN and SpecGAN WGAN-GP training step: the peer that benchmarks/compare_torch.py
times this project against (issue 11).

What a PyTorch user writes first, on purpose: eager mode, PyTorch's default threads, no torch.compile,
channels-first tensors (PyTorch's native layout), G's forward under `no_grad` in the D step, the gradient
penalty through `torch.autograd.grad(create_graph=True)`, Adam with the reference's WGAN-GP settings
(lr 1e-4, betas (0.5, 0.9)), n_critic D steps then one G step per iteration. The layout is the reference's
(chrisdonahue/wavegan): WaveGAN G dense -> [16d, 16] -> five transposed convs (kernel 25, stride 4), D five
convs (kernel 25, stride 4) with LeakyReLU(0.2) and phase shuffle (radius 2, one shift per batch and
layer, reflect padding) after the first four, then dense 1; SpecGAN the same with 5x5 stride-2 2-D convs
and no phase shuffle. At slice_len 16 * 4^L (side 4 * 2^L) it has L layers, as wavegan/models/ builds.

    .venv/bin/python benchmarks/peer_torch.py [--model wavegan|dcgan] [--dim 8] [--batch 16] [--iters 5]

Installed from the optional `bench` extra (`pip install -e .[bench]`); nothing in the package or the
tests imports it.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F
from torch import nn

LATENT_DIM = 100
KERNEL_1D, STRIDE_1D = 25, 4
KERNEL_2D, STRIDE_2D = 5, 2
LEAKY_SLOPE = 0.2
GP_WEIGHT = 10.0
ADAM = {"lr": 1e-4, "betas": (0.5, 0.9)}


def _wavegan_layers(slice_len: int) -> int:
    layers = {16 * 4**k: k for k in range(1, 6)}
    if slice_len not in layers:
        raise ValueError(f"slice_len must be 16 * 4^L (64 ... 16384), got {slice_len}")
    return layers[slice_len]


def _dcgan_layers(side: int) -> int:
    layers = {4 * 2**k: k for k in range(1, 8)}
    if side not in layers:
        raise ValueError(f"side must be 4 * 2^L, got {side}")
    return layers[side]


class PhaseShuffle(nn.Module):
    """Shift by one random integer in [-radius, radius] per call, reflect-padded (the reference's)."""

    def __init__(self, radius: int) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift = random.randint(-self.radius, self.radius)
        if shift == 0:
            return x
        length = x.shape[-1]
        if shift > 0:
            return F.pad(x, (shift, 0), mode="reflect")[..., :length]
        return F.pad(x, (0, -shift), mode="reflect")[..., -length:]


class WaveGANGenerator(nn.Module):
    def __init__(self, dim: int, slice_len: int) -> None:
        super().__init__()
        n = _wavegan_layers(slice_len)
        self.width = dim * 2 ** (n - 1)
        self.project = nn.Linear(LATENT_DIM, 16 * self.width)
        widths = [dim * 2 ** (n - 1 - k) for k in range(n)] + [1]
        # 'same' transposed convolution of stride 4: output length 4 * input length.
        self.upconvs = nn.ModuleList(
            nn.ConvTranspose1d(a, b, KERNEL_1D, STRIDE_1D, padding=11, output_padding=1)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.project(z).view(-1, self.width, 16))
        for i, conv in enumerate(self.upconvs):
            x = conv(x)
            x = torch.tanh(x) if i == len(self.upconvs) - 1 else F.relu(x)
        return x


class WaveGANDiscriminator(nn.Module):
    def __init__(self, dim: int, slice_len: int, phase_shuffle: int = 2) -> None:
        super().__init__()
        n = _wavegan_layers(slice_len)
        widths = [1] + [dim * 2**k for k in range(n)]
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, KERNEL_1D, STRIDE_1D, padding=11)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.shuffles = nn.ModuleList(PhaseShuffle(phase_shuffle) for _ in range(n - 1))
        self.output = nn.Linear(16 * widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
            if i < len(self.shuffles):
                x = self.shuffles[i](x)
        return self.output(x.flatten(1))


class SpecGANGenerator(nn.Module):
    def __init__(self, dim: int, side: int) -> None:
        super().__init__()
        n = _dcgan_layers(side)
        self.width = dim * 2 ** (n - 1)
        self.project = nn.Linear(LATENT_DIM, 16 * self.width)
        widths = [dim * 2 ** (n - 1 - k) for k in range(n)] + [1]
        self.upconvs = nn.ModuleList(
            nn.ConvTranspose2d(a, b, KERNEL_2D, STRIDE_2D, padding=2, output_padding=1)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.project(z).view(-1, self.width, 4, 4))
        for i, conv in enumerate(self.upconvs):
            x = conv(x)
            x = torch.tanh(x) if i == len(self.upconvs) - 1 else F.relu(x)
        return x


class SpecGANDiscriminator(nn.Module):
    def __init__(self, dim: int, side: int) -> None:
        super().__init__()
        n = _dcgan_layers(side)
        widths = [1] + [dim * 2**k for k in range(n)]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, KERNEL_2D, STRIDE_2D, padding=2)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.output = nn.Linear(16 * widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        return self.output(x.flatten(1))


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)))
    interpolates = (real + alpha * (fake - real)).requires_grad_(True)
    (grads,) = torch.autograd.grad(discriminator(interpolates).sum(), interpolates, create_graph=True)
    norms = grads.flatten(1).norm(dim=1)
    return ((norms - 1.0) ** 2).mean()


class PeerWGANGP:
    """G, D, their Adam optimizers and one training iteration (n_critic D steps + 1 G step)."""

    def __init__(self, model: str, dim: int, batch: int, size: int, n_critic: int = 5, seed: int = 0) -> None:
        torch.manual_seed(seed)
        random.seed(seed)
        if model == "wavegan":
            self.generator = WaveGANGenerator(dim, size)
            self.discriminator = WaveGANDiscriminator(dim, size)
            self.data_shape: tuple[int, ...] = (1, size)
        elif model == "dcgan":
            self.generator = SpecGANGenerator(dim, size)
            self.discriminator = SpecGANDiscriminator(dim, size)
            self.data_shape = (1, size, size)
        else:
            raise ValueError(f"model must be wavegan or dcgan, got {model!r}")
        self.batch, self.n_critic = batch, n_critic
        self.g_opt = torch.optim.Adam(self.generator.parameters(), **ADAM)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), **ADAM)

    def latent(self) -> torch.Tensor:
        return torch.rand(self.batch, LATENT_DIM) * 2.0 - 1.0

    def d_step(self, real: torch.Tensor) -> float:
        with torch.no_grad():
            fake = self.generator(self.latent())
        self.d_opt.zero_grad(set_to_none=True)
        d_loss = self.discriminator(fake).mean() - self.discriminator(real).mean()
        loss = d_loss + GP_WEIGHT * gradient_penalty(self.discriminator, real, fake)
        loss.backward()
        self.d_opt.step()
        return float(loss)

    def g_step(self) -> float:
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = -self.discriminator(self.generator(self.latent())).mean()
        g_loss.backward()
        self.g_opt.step()
        return float(g_loss)

    def iteration(self, real_batches: torch.Tensor) -> float:
        for i in range(self.n_critic):
            self.d_step(real_batches[i])
        return self.g_step()

    def real_batches(self) -> torch.Tensor:
        return torch.rand(self.n_critic, self.batch, *self.data_shape) * 2.0 - 1.0


def time_iterations(peer: PeerWGANGP, warmup: int, iters: int) -> list[float]:
    real = peer.real_batches()
    for _ in range(warmup):
        peer.iteration(real)
    times = []
    for _ in range(iters):
        started = time.perf_counter()
        peer.iteration(real)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("wavegan", "dcgan"), default="wavegan")
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=None, help="slice_len (wavegan) or side (dcgan)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()
    size = args.size or (16384 if args.model == "wavegan" else 128)
    peer = PeerWGANGP(args.model, args.dim, args.batch, size)
    times = time_iterations(peer, args.warmup, args.iters)
    times.sort()
    result = {
        "model": args.model,
        "dim": args.dim,
        "batch": args.batch,
        "size": size,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "s_per_iter": round(times[len(times) // 2], 4),
        "params": [sum(p.numel() for p in m.parameters()) for m in (peer.generator, peer.discriminator)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
