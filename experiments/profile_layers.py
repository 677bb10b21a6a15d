r"""DCGAN-64 layer by layer: forward and forward + backward time of each G and D layer, ganjax vs PyTorch.

    python -m experiments.profile_layers [--batch=64] [--steps=5] [--warmup=2] [--repeats=3]

Each layer of the PyTorch DCGAN tutorial's nets (``configs/dcgan_celeba64.py``, the
``dcgan64`` model of :mod:`experiments.bench_step`) runs alone at the train batch
size: ganjax's layer as the train step runs it (``layers.ConvTranspose``'s four
phase convolutions, ``layers.Conv``'s SAME 4×4/2 convolution, train-mode BatchNorm + activation,
each jitted) against the same PyTorch module (``ConvTranspose2d``, ``Conv2d``,
``BatchNorm2d`` + activation, eager, NCHW). "fwd" is the output alone; "fwd+bwd"
is the output and the gradients of ``sum(out · c)`` (a fixed random ``c``) with
respect to the input and the parameters, as in a train step. The frameworks take
turns in ``--repeats`` rounds; medians are printed, with the load average before
and after. GFLOP/s counts the layer's useful multiply-adds (×2; ×3 for fwd+bwd),
so a transposed convolution is not charged for the zeros a dilated lowering inserts.

The rows say where a DCGAN step's time goes in each framework (the whole step:
``python -m experiments.bench_step --model=dcgan64``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Callable

import numpy as np

from experiments.bench_step import spread, time_loop


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer: its kind (``convT``, ``conv``, ``conv_valid``, ``bn_relu``, ``bn_lrelu``), the input
    ``(H, W, C_in)`` and the output channels (``C_in`` again for the BatchNorm layers)."""

    name: str
    kind: str
    hwc: tuple[int, int, int]
    out: int

    def flops(self, batch: int) -> float:
        """Useful FLOPs of one forward pass on ``batch`` examples (2 per multiply-add; the BatchNorm
        layers: about 10 per element)."""
        h, w, c = self.hwc
        if self.kind == "convT":  # every input pixel meets every 4×4 tap once
            return 2.0 * batch * h * w * c * self.out * 16
        if self.kind == "conv":
            return 2.0 * batch * (h // 2) * (w // 2) * c * self.out * 16
        if self.kind == "conv_valid":
            return 2.0 * batch * (h - 3) * (w - 3) * c * self.out * 16
        return 10.0 * batch * h * w * c


DCGAN64 = [
    Layer("G convT 512->256, 4->8", "convT", (4, 4, 512), 256),
    Layer("G BN+ReLU 8x8x256", "bn_relu", (8, 8, 256), 256),
    Layer("G convT 256->128, 8->16", "convT", (8, 8, 256), 128),
    Layer("G BN+ReLU 16x16x128", "bn_relu", (16, 16, 128), 128),
    Layer("G convT 128->64, 16->32", "convT", (16, 16, 128), 64),
    Layer("G BN+ReLU 32x32x64", "bn_relu", (32, 32, 64), 64),
    Layer("G convT 64->3, 32->64", "convT", (32, 32, 64), 3),
    Layer("D conv 3->64, 64->32", "conv", (64, 64, 3), 64),
    Layer("D conv 64->128, 32->16", "conv", (32, 32, 64), 128),
    Layer("D BN+LReLU 16x16x128", "bn_lrelu", (16, 16, 128), 128),
    Layer("D conv 128->256, 16->8", "conv", (16, 16, 128), 256),
    Layer("D BN+LReLU 8x8x256", "bn_lrelu", (8, 8, 256), 256),
    Layer("D conv 256->512, 8->4", "conv", (8, 8, 256), 512),
    Layer("D conv 512->1, 4x4 valid", "conv_valid", (4, 4, 512), 1),
]


def jax_layer(layer: Layer, batch: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(fwd, fwd_bwd)``: ganjax's ``layer`` jitted on a random ``[batch, H, W, C]`` input, each call
    blocking until done."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from ganjax.models import layers

    modules = {
        "convT": lambda: layers.ConvTranspose(layer.out, 4, use_bias=False),
        "conv": lambda: layers.Conv(layer.out, 4, 2, "SAME", use_bias=False),
        "conv_valid": lambda: layers.Conv(layer.out, 4, 1, "VALID", use_bias=False),
        "bn_relu": lambda: nn.Sequential([nn.BatchNorm(use_running_average=False), nn.relu]),
        "bn_lrelu": lambda: nn.Sequential([nn.BatchNorm(use_running_average=False),
                                           lambda t: nn.leaky_relu(t, 0.2)]),
    }
    module = modules[layer.kind]()
    x = jax.random.normal(jax.random.key(0), (batch, *layer.hwc), jnp.float32)
    variables = module.init(jax.random.key(1), x)
    params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def apply(p, xx):
        out = module.apply({"params": p, **state}, xx, mutable=list(state) or False)
        return out[0] if state else out

    cot = jax.random.normal(jax.random.key(2), jax.eval_shape(apply, params, x).shape, jnp.float32)
    fwd = jax.jit(apply)
    grad = jax.jit(jax.grad(lambda p, xx: jnp.sum(apply(p, xx) * cot), argnums=(0, 1)))
    return (lambda: jax.block_until_ready(fwd(params, x)), lambda: jax.block_until_ready(grad(params, x)))


def torch_layer(layer: Layer, batch: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(fwd, fwd_bwd)``: the same layer in PyTorch (eager, NCHW) on a random input."""
    import torch
    from torch import nn

    h, w, c = layer.hwc
    modules = {
        "convT": lambda: nn.ConvTranspose2d(c, layer.out, 4, 2, 1, bias=False),
        "conv": lambda: nn.Conv2d(c, layer.out, 4, 2, 1, bias=False),
        "conv_valid": lambda: nn.Conv2d(c, layer.out, 4, 1, 0, bias=False),
        "bn_relu": lambda: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()),
        "bn_lrelu": lambda: nn.Sequential(nn.BatchNorm2d(c), nn.LeakyReLU(0.2)),
    }
    torch.manual_seed(0)
    module = modules[layer.kind]().train()
    x = torch.randn(batch, c, h, w, requires_grad=True)
    with torch.no_grad():
        cot = torch.randn_like(module(x))

    def fwd() -> None:
        with torch.no_grad():
            module(x)

    def fwd_bwd() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        (module(x) * cot).sum().backward()

    return fwd, fwd_bwd


def profile(layers_: list[Layer], batch: int, steps: int, warmup: int, repeats: int) -> list[dict]:
    """One row per layer: the median seconds of each framework's fwd and fwd+bwd over ``repeats``
    alternated rounds (:func:`experiments.bench_step.alternated_timings`)."""
    from experiments.bench_step import alternated_timings

    rows = []
    for layer in layers_:
        (jf, jb), (tf, tb) = jax_layer(layer, batch), torch_layer(layer, batch)
        fwd = alternated_timings({"ganjax": jf, "pytorch": tf}, steps, warmup, repeats)
        both = alternated_timings({"ganjax": jb, "pytorch": tb}, steps, warmup, repeats)
        rows.append({"layer": layer, "fwd": fwd, "fwd_bwd": both})
    return rows


def report(rows: list[dict], batch: int, peaks: dict[str, float]) -> str:
    """The table: per layer ms (median over rounds) of each framework, fwd and fwd+bwd, the ratio
    PyTorch time / ganjax time (> 1: ganjax faster), and each framework's fwd+bwd fraction of its matmul peak."""
    head = (f"{'layer':28s} {'fwd ms jax':>10s} {'torch':>8s} {'ratio':>6s} {'f+b ms jax':>10s} {'torch':>8s} "
            f"{'ratio':>6s} {'jax %pk':>8s} {'torch %pk':>9s}")
    lines = [head]
    total = {k: 0.0 for k in ("jf", "tf", "jb", "tb")}
    for r in rows:
        med = {"jf": float(np.median(r["fwd"]["ganjax"])), "tf": float(np.median(r["fwd"]["pytorch"])),
               "jb": float(np.median(r["fwd_bwd"]["ganjax"])), "tb": float(np.median(r["fwd_bwd"]["pytorch"]))}
        for k in total:
            total[k] += med[k]
        gflop = 3 * r["layer"].flops(batch) / 1e9
        lines.append(f"{r['layer'].name:28s} {1e3 * med['jf']:10.2f} {1e3 * med['tf']:8.2f} {med['tf'] / med['jf']:6.2f} "
                     f"{1e3 * med['jb']:10.2f} {1e3 * med['tb']:8.2f} {med['tb'] / med['jb']:6.2f} "
                     f"{100 * gflop / med['jb'] / peaks['ganjax']:7.0f}% {100 * gflop / med['tb'] / peaks['pytorch']:8.0f}%")
    lines.append(f"{'sum of the layers':28s} {1e3 * total['jf']:10.2f} {1e3 * total['tf']:8.2f} "
                 f"{total['tf'] / total['jf']:6.2f} {1e3 * total['jb']:10.2f} {1e3 * total['tb']:8.2f} "
                 f"{total['tb'] / total['jb']:6.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed calls per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before a layer's first round")
    parser.add_argument("--repeats", type=int, default=3, help="alternated rounds")
    a = parser.parse_args()
    if min(a.batch, a.steps, a.repeats) < 1 or a.warmup < 0:
        parser.error(f"--batch, --steps and --repeats must be >= 1 and --warmup >= 0; got --batch={a.batch} "
                     f"--steps={a.steps} --repeats={a.repeats} --warmup={a.warmup}")
    from experiments import common
    from experiments.bench_step import matmul_gflops_jax, matmul_gflops_torch

    before = common.load_average()
    rows = profile(DCGAN64, a.batch, a.steps, a.warmup, a.repeats)
    peaks = {"ganjax": matmul_gflops_jax(), "pytorch": matmul_gflops_torch()}
    after = common.load_average()
    print(f"DCGAN-64 layers, batch {a.batch}, {a.steps} timed calls x {a.repeats} alternated rounds, "
          f"{os.cpu_count()} CPUs; load average before {common.load_text(before)}, after "
          f"{common.load_text(after)}; matmul peak GFLOP/s: ganjax {peaks['ganjax']:.1f}, "
          f"pytorch {peaks['pytorch']:.1f}; ratio = PyTorch ms / ganjax ms (> 1: ganjax faster)")
    print(report(rows, a.batch, peaks))
    spreads = [spread([t / p for t, p in zip(r["fwd_bwd"]["pytorch"], r["fwd_bwd"]["ganjax"])]) for r in rows]
    print("fwd+bwd ratio per round, median (min-max): " + "; ".join(
        f"{r['layer'].name.split(',')[0]}: {s}" for r, s in zip(rows, spreads)))


if __name__ == "__main__":
    main()
