"""Hand-written PyTorch twins of ganjax nets, for the side-by-side step benchmarks of
:mod:`experiments.bench_step` (PyTorch is a benchmark-only dependency: ``pip install torch``).

:func:`biggan32_nets` builds BigGAN (Brock et al. 2018) for 32×32×3 with the layer shapes of
``configs/biggan_cifar10.py``'s ganjax nets (:mod:`ganjax.models.biggan`), written here from the
paper's description of the architecture, not from the ganjax code:

* G: hierarchical z (``z_dim`` split into 4 equal chunks: ``z₀`` → spectrally normalised linear →
  ``4 × 4 × 4ch``, ``z₁ … z₃`` one per block), a shared class embedding (``num_classes × shared_dim``,
  no spectral norm), three up-blocks ``4ch → 4ch`` (cBN → ReLU → nearest 2× → conv 3×3 → cBN → ReLU →
  conv 3×3, plus conv 1×1 of the upsampled input), self-attention after the 16×16 block, BatchNorm →
  ReLU → conv 3×3 → 3 → tanh. Each conditional BatchNorm is BatchNorm without affine, then
  ``(1 + gain(c)) · x̂ + bias(c)`` with bias-free linear heads of ``c = [shared embedding, zᵢ]``.
* D: four residual blocks of ``2ch`` channels (the first "optimised": no ReLU before its first conv;
  the first two halve the map with 2×2 average pooling, shortcut conv 1×1 then pooling; the last two
  keep it, identity shortcut), self-attention after the first block (16×16), ReLU → sum over the map →
  linear 1, plus the projection term ``⟨embed(y), φ⟩`` (a spectrally normalised ``num_classes × 2ch``
  embedding).
* Spectral norm (``torch.nn.utils.parametrizations.spectral_norm``, one power iteration per forward in
  training mode) on every conv, linear and embedding layer of both nets but G's shared embedding, the
  cBN heads and the attention convs included (:func:`spectralize`); orthogonal init of those weights,
  zero biases. Self-attention is SAGAN's: bias-free 1×1
  convs θ (C/8), φ and g (C/8, C/2, each max-pooled 2×2), ``softmax(θᵀφ)`` over the pooled positions,
  the output conv (C), scaled by a learnt scalar that starts at 0 and added to the input.

Tensors are NCHW. Labels are int64 ``[B]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

Z_CHUNKS = 4  # z₀ for the first linear layer, one chunk per up-block
BASE = 4  # side of G's first feature map
ATTENTION_SIDE = 16  # both nets attend at 16×16


def conv(cin: int, cout: int, kernel: int, bias: bool = True) -> nn.Conv2d:
    """A ``kernel × kernel`` conv with 'same' padding."""
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)


def spectralize(net: nn.Module, skip: tuple[nn.Module, ...] = (), orthogonal: bool = True) -> nn.Module:
    """Spectral norm (one power iteration per forward in training mode) on every conv, linear and embedding
    layer of ``net`` but those in ``skip``; with ``orthogonal``, each of those weights is first
    initialised orthogonally (biases to zero), BigGAN's init, else PyTorch's default init is kept (the
    same shapes and step cost; cheaper to build). Returns ``net``."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))
              and not any(m is s for s in skip)]
    for layer in layers:
        if orthogonal:
            nn.init.orthogonal_(layer.weight)
            if getattr(layer, "bias", None) is not None:
                nn.init.zeros_(layer.bias)
        spectral_norm(layer, n_power_iterations=1)
    return net


def up2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2× upsampling ``[B, C, H, W] → [B, C, 2H, 2W]``."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


class SelfAttention(nn.Module):
    """SAGAN's self-attention: ``[B, C, H, W]`` → the same shape, ``x + σ · o``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.theta = conv(channels, channels // 8, 1, bias=False)
        self.phi = conv(channels, channels // 8, 1, bias=False)
        self.g = conv(channels, channels // 2, 1, bias=False)
        self.o = conv(channels // 2, channels, 1, bias=False)
        self.sigma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [B, C/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [B, C/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [B, C/2, HW/4]
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi).float(), dim=-1).to(g.dtype)  # [B, HW, HW/4]
        o = torch.bmm(g, beta.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.sigma * self.o(o)


class ConditionalBatchNorm(nn.Module):
    """BigGAN's cBN: ``BN(x) · (1 + gain(c)) + bias(c)``, ``x [B, C, H, W]``, ``c [B, D]``."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=1e-4, momentum=0.1, affine=False)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.bias = nn.Linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(cond)[:, :, None, None]) + self.bias(cond)[:, :, None, None]


class GBlock(nn.Module):
    """Up-block ``[B, cin, S, S] → [B, cout, 2S, 2S]``, both BatchNorms conditioned on ``c``."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(cin, cond_dim), ConditionalBatchNorm(cout, cond_dim)
        self.conv1, self.conv2, self.skip = conv(cin, cout, 3), conv(cout, cout, 3), conv(cin, cout, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(up2x(F.relu(self.bn1(x, cond))))
        h = self.conv2(F.relu(self.bn2(h, cond)))
        return h + self.skip(up2x(x))


class Generator(nn.Module):
    """``(z [B, z_dim], y [B])`` → images ``[B, 3, 32, 32]`` in [-1, 1]."""

    def __init__(self, width: int, z_dim: int, shared_dim: int, num_classes: int) -> None:
        super().__init__()
        if z_dim % Z_CHUNKS:
            raise ValueError(f"z_dim = {z_dim} must be a multiple of {Z_CHUNKS}")
        channels, chunk = 4 * width, z_dim // Z_CHUNKS
        self.channels, self.chunk = channels, chunk
        self.shared = nn.Embedding(num_classes, shared_dim)  # N(0, 1) init; no spectral norm (biggan32_nets)
        self.linear = nn.Linear(chunk, BASE * BASE * channels)
        self.blocks = nn.ModuleList(GBlock(channels, channels, shared_dim + chunk) for _ in range(Z_CHUNKS - 1))
        self.attention = SelfAttention(channels)
        self.bn = nn.BatchNorm2d(channels, eps=1e-4, momentum=0.1)
        self.out = conv(channels, 3, 3)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z0, *chunks = torch.split(z, self.chunk, dim=1)
        shared = self.shared(y)
        h = self.linear(z0).view(z.shape[0], self.channels, BASE, BASE)
        for block, zi in zip(self.blocks, chunks):
            h = block(h, torch.cat([shared, zi], dim=1))
            if h.shape[-1] == ATTENTION_SIDE:
                h = self.attention(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class DBlock(nn.Module):
    """Residual D block ``[B, cin, S, S] → [B, cout, S', S']`` (S' = S/2 if ``down``)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = conv(cin, cout, 3), conv(cout, cout, 3)
        self.skip = conv(cin, cout, 1) if (first or down or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        shortcut = x if self.skip is None else self.skip(x)
        if self.down:
            h, shortcut = F.avg_pool2d(h, 2), F.avg_pool2d(shortcut, 2)
        return h + shortcut


class Discriminator(nn.Module):
    """``(x [B, 3, 32, 32], y [B])`` → logits ``[B]`` (projection discriminator)."""

    def __init__(self, width: int, num_classes: int) -> None:
        super().__init__()
        channels = 2 * width
        self.blocks = nn.ModuleList([DBlock(3, channels, down=True, first=True),
                                     DBlock(channels, channels, down=True, first=False),
                                     DBlock(channels, channels, down=False, first=False),
                                     DBlock(channels, channels, down=False, first=False)])
        self.attention = SelfAttention(channels)
        self.linear = nn.Linear(channels, 1)
        self.embed = nn.Embedding(num_classes, channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x
        attended = False
        for block in self.blocks:
            h = block(h)
            if h.shape[-1] == ATTENTION_SIDE and not attended:
                h, attended = self.attention(h), True
        phi = torch.sum(F.relu(h), dim=(2, 3))
        return self.linear(phi)[:, 0] + torch.sum(self.embed(y) * phi, dim=1)


def biggan32_nets(width: int = 96, d_width: int = 96, z_dim: int = 80, shared_dim: int = 128,
                  num_classes: int = 10, orthogonal: bool = True) -> tuple[Generator, Discriminator]:
    """BigGAN-32's ``(G, D)`` at G width ``width`` and D width ``d_width`` (``ch``; 96 in
    ``configs/biggan_cifar10.py``), spectrally normalised everywhere but G's shared embedding
    (:func:`spectralize`; ``orthogonal``: BigGAN's init, else PyTorch's default)."""
    G = Generator(width, z_dim, shared_dim, num_classes)
    return (spectralize(G, skip=(G.shared,), orthogonal=orthogonal),
            spectralize(Discriminator(d_width, num_classes), orthogonal=orthogonal))


def param_count(module: nn.Module) -> int:
    """The number of trainable parameters of ``module`` (a spectrally normalised weight counts once:
    its power-iteration vectors are buffers)."""
    return sum(p.numel() for p in module.parameters())
