r"""Train-step throughput: ganjax vs a plain PyTorch implementation, side by side.

    python -m experiments.bench_step [--model=mlp|infogan28|dcgan64|sngan32] [--steps=200] [--batch=128] [--warmup=10]

``mlp`` (default): seed 002's MLP GAN step (G 100→256→512→1024→784, D
784→1024→512→256→1 with dropout, Adam 2e-4, BCE; one D update on a real batch
and a fake batch, then one G update). ``infogan28``: the Lucic'18 InfoGAN-style
nets of ``configs/infogan_fashion_mnist.py`` on 28×28×1 (batch 64 by default).
``dcgan64``: the PyTorch DCGAN tutorial's nets (``configs/dcgan_celeba64.py``)
on 64×64×3 (batch 64 by default). ``sngan32``: the SN-GAN ResNet nets of
``configs/sngan_cifar10.py`` on 32×32×3 (hinge loss, 5 D updates per G
update, batch 64), ganjax only: it has no PyTorch twin. The conv nets have BatchNorm in D, so both
frameworks run D on the real and the fake batch separately; BCE on logits,
Adam(2e-4, β1 0.5).

ganjax runs one jitted, buffer-donating step; PyTorch the same loop in eager
mode, in one process on the same CPU threads. The functions here
(:func:`build_ganjax`, :func:`bench_ganjax`, :func:`bench_torch`, :data:`MODELS`)
are also the step benchmarks of ``experiments/accelerator_suite.py``. Prints images/s for both and
their ratio; for ``mlp`` also the achieved GFLOP/s as a fraction of a large
float32 matmul's GFLOP/s measured in the same run (by each framework).
PyTorch is a benchmark-only dependency: ``pip install torch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any, Callable

import numpy as np


def mlp_step_flops(batch: int) -> float:
    """Multiply-adds ×2 of one seed-002 step (forward + backward ≈ 3× forward).

    D runs on real and fake (2 forwards + 2 backwards to weights/inputs) in
    the D update; G's update runs G forward/backward and D forward/backward.
    The D update also runs G forward once to make the fake batch.
    """
    g = 100 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784
    d = 784 * 1024 + 1024 * 512 + 512 * 256 + 256
    fwd = lambda macs: 2.0 * macs * batch
    d_update = 2 * 3 * fwd(d) + fwd(g)
    g_update = 3 * fwd(g) + 3 * fwd(d)
    return d_update + g_update


def time_loop(fn, steps: int, warmup: int = 10) -> float:
    """Seconds per call of ``fn`` (which must block until its work is done)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def matmul_gflops_jax() -> float:
    import jax
    import jax.numpy as jnp

    n = 2048
    a = jnp.ones((n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    return 2 * n ** 3 / time_loop(lambda: mm(a).block_until_ready(), 20, warmup=3) / 1e9


def matmul_gflops_torch() -> float:
    import torch

    n = 2048
    a = torch.ones(n, n)
    return 2 * n ** 3 / time_loop(lambda: a @ a, 20, warmup=3) / 1e9


@dataclasses.dataclass
class GanjaxStep:
    """A built ganjax train step ready to time: the runner, its placed state and one step's input.

    Attributes:
      runner: :func:`ganjax.parallel.make_runner`'s runner.
      state: the placed train state (replaced after every step: the step donates it).
      batch: the real images of one step, uint8 ``[n_disc, B_rows, H, W, C]`` (this process's rows), or
        None for toy data (sampled inside the step).
      batch_size: the global batch.
    """

    runner: Any
    state: Any
    batch: np.ndarray | None
    batch_size: int

    def step(self) -> None:
        """Runs one train step and waits for it."""
        import jax

        self.state, metrics = self.runner.step(self.state, self.batch)
        jax.block_until_ready(metrics["g_loss"])

    def compiled_flops(self) -> float | None:
        """FLOPs of one step from XLA's cost analysis of the compiled step, or None where the backend or the
        wrapper (``pmap``, ``shard_map``'s host-side wrapper) does not report them."""
        lower = getattr(self.runner.step, "lower", None)
        if lower is None:
            return None
        try:
            cost = lower(self.state, self.batch).compile().cost_analysis()
        except Exception:  # noqa: BLE001 - cost analysis is optional and backend-specific
            return None
        if isinstance(cost, (list, tuple)):  # older jax: one dict per device program
            cost = cost[0] if cost else None
        flops = (cost or {}).get("flops")
        return float(flops) if flops and flops > 0 else None


def build_ganjax(config: str, batch: int, shape: tuple[int, int, int] | None = None, variant: str | None = None,
                 overrides: dict[str, Any] | None = None, parallel: str = "none") -> GanjaxStep:
    """The train step of ``configs/<config>.py[:variant]`` at global batch ``batch`` under ``parallel``.

    Args:
      config: a config file name under ``configs/``.
      batch: the global batch size.
      shape: ``(H, W, C)`` of the random uint8 images fed as real data (the config's data options are
        reset: the benchmark feeds ready-made images); None for a toy-data config.
      variant: the config's variant (``"quick"``) or None.
      overrides: dotted config keys to set (``{"compute_dtype": "bfloat16"}``).
      parallel: ``none | pmap | shard_map`` (:func:`ganjax.parallel.make_runner`).
    """
    from ganjax import config as config_lib
    from ganjax.data import Dataset
    from ganjax.parallel import make_runner
    from ganjax.train import init_state

    c = config_lib.load_config_file(config, variant)
    c.batch_size = batch
    if overrides:
        c.update_from_flattened_dict(dict(overrides))
    dataset, images = None, None
    if shape is not None:
        c.data = type(c.data)()  # image_size/crop: the benchmark feeds ready-made images
        dataset = Dataset("bench", shape, images=np.zeros((c.n_disc * batch,) + shape, np.uint8))
        images = np.random.default_rng(0).integers(0, 256, (c.n_disc, batch) + shape, dtype=np.uint8)
    _, gan = config_lib.build(c, dataset)
    runner = make_runner(gan, parallel, batch)
    rows = None if images is None else images[:, runner.rows]
    return GanjaxStep(runner, runner.put(init_state(gan, 0)), rows, batch)


def bench_ganjax(model: "Model", batch: int, steps: int, warmup: int, variant: str | None = None,
                 overrides: dict[str, Any] | None = None) -> dict:
    """``{"sec_per_step", "flops", "n_disc"}`` of ``model``'s ganjax step (``flops``: XLA's count per step, or
    None; ``n_disc``: D updates, so real batches, per step)."""
    bench = build_ganjax(model.config, batch, model.shape, variant, overrides)
    flops = bench.compiled_flops()
    return {"sec_per_step": time_loop(bench.step, steps, warmup), "flops": flops, "n_disc": len(bench.batch)}


def torch_mlp_nets():
    from torch import nn

    D = nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(1024, 512),
                      nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                      nn.Linear(256, 1), nn.Sigmoid())  # the seed's sigmoid + BCELoss
    G = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                      nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh(),
                      nn.Unflatten(1, (1, 28, 28)))
    return G, D


def torch_infogan28_nets():
    """Lucic'18 / compare_gan InfoGAN-style G and D for 28×28×1 (the shapes of ganjax's ``infogan``)."""
    from torch import nn

    G = nn.Sequential(nn.Linear(64, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Linear(1024, 128 * 7 * 7),
                      nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128),
                      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024),
                      nn.LeakyReLU(0.2), nn.Linear(1024, 1))
    return G, D


def torch_dcgan64_nets():
    """The PyTorch DCGAN tutorial's G and D (nz=100, ngf=ndf=64, nc=3; bias-free)."""
    from torch import nn

    def up(cin, cout, stride=2, pad=1):
        return [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

    def down(cin, cout, bn=True):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)] + ([nn.BatchNorm2d(cout)] if bn else []) + \
            [nn.LeakyReLU(0.2, inplace=True)]

    G = nn.Sequential(nn.Unflatten(1, (100, 1, 1)), *up(100, 512, 1, 0), *up(512, 256), *up(256, 128), *up(128, 64),
                      nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(*down(3, 64, bn=False), *down(64, 128), *down(128, 256), *down(256, 512),
                      nn.Conv2d(512, 1, 4, 1, 0, bias=False), nn.Flatten())
    return G, D


def bench_torch(model: "Model", batch: int, steps: int, warmup: int, device: str = "cpu",
                dtype: str = "float32") -> dict:
    """``{"sec_per_step", "threads"}`` of ``model``'s PyTorch twin in eager mode on ``device``
    (``"cpu"`` | ``"cuda"``); ``dtype="bfloat16"`` runs the nets under ``torch.autocast`` (the losses in
    float32, as ganjax's ``compute_dtype``). Raises ``ValueError`` for a model without a twin."""
    import contextlib

    import torch
    from torch import nn

    if model.torch_nets is None:
        raise ValueError(f"{model.title} has no PyTorch twin")
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    torch.manual_seed(0)
    G, D = (net.to(device) for net in model.torch_nets())
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=model.torch_betas)
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=model.torch_betas)
    loss = nn.BCELoss() if isinstance(D[-1], nn.Sigmoid) else nn.BCEWithLogitsLoss()
    h, w, c = model.shape
    real = torch.rand(batch, c, h, w, device=device) * 2 - 1
    ones, zeros = torch.ones(batch, 1, device=device), torch.zeros(batch, 1, device=device)

    def nets():
        if dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)

    def d_of(x):  # D's output in float32 (BCELoss is not autocast-safe)
        with nets():
            return D(x).float()

    def one():  # seed 002's discriminator_train_step + generator_train_step
        with nets():
            fake = G(torch.randn(batch, model.z_dim, device=device)).detach()
        d_opt.zero_grad()
        error_real = loss(d_of(real), ones)
        error_real.backward()
        error_fake = loss(d_of(fake), zeros)
        error_fake.backward()
        d_opt.step()
        g_opt.zero_grad()
        with nets():
            fake = G(torch.randn(batch, model.z_dim, device=device))
        error = loss(d_of(fake), ones)
        error.backward()
        g_opt.step()
        error.item()  # the seed reads the loss every step (and this waits for the device)

    return {"sec_per_step": time_loop(one, steps, warmup), "threads": torch.get_num_threads()}


@dataclasses.dataclass(frozen=True)
class Model:
    """One benchmarked GAN: the ganjax config, the PyTorch twin, shapes and defaults."""

    title: str
    config: str
    torch_nets: Callable | None  # None: no PyTorch twin (ganjax only)
    shape: tuple[int, int, int]
    z_dim: int
    batch: int
    torch_betas: tuple[float, float] = (0.5, 0.999)
    flops: Callable[[int], float] | None = None


MODELS = {
    "mlp": Model("seed 002 MLP GAN", "fashion_mnist_mlp", torch_mlp_nets, (28, 28, 1), 100, 128,
                 torch_betas=(0.9, 0.999), flops=mlp_step_flops),
    "infogan28": Model("Lucic'18 InfoGAN-style GAN, 28x28x1", "infogan_fashion_mnist", torch_infogan28_nets,
                       (28, 28, 1), 64, 64),
    "dcgan64": Model("DCGAN (PyTorch tutorial), 64x64x3", "dcgan_celeba64", torch_dcgan64_nets, (64, 64, 3), 100, 64),
    "sngan32": Model("SN-GAN ResNet (Miyato'18 Table 4), 32x32x3, n_disc 5", "sngan_cifar10", None, (32, 32, 3),
                     128, 64, torch_betas=(0.0, 0.9)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=0, help="0: the model's default (mlp 128, conv nets 64)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before timing (after compiling)")
    args = parser.parse_args()
    model = MODELS[args.model]
    batch = args.batch or model.batch
    results = {"ganjax": bench_ganjax(model, batch, args.steps, args.warmup)}
    if model.torch_nets is None:
        print(f"{model.title}: no PyTorch twin, reporting ganjax only")
    else:
        try:
            results["pytorch"] = bench_torch(model, batch, args.steps, args.warmup)
        except ImportError:
            print("PyTorch is not installed (pip install torch): reporting ganjax only")
    if model.flops is not None:
        results["ganjax"]["matmul_gflops"] = matmul_gflops_jax()
        if "pytorch" in results:
            results["pytorch"]["matmul_gflops"] = matmul_gflops_torch()
    print(f"{model.title} train step, batch {batch}, {args.steps} timed steps, {os.cpu_count()} CPUs")
    print(f"{'':10s} {'images/s':>10s} {'ms/step':>9s}" +
          (f" {'GFLOP/s':>9s} {'matmul GFLOP/s':>15s} {'fraction':>9s}" if model.flops else ""))
    for name, r in results.items():
        line = f"{name:10s} {batch / r['sec_per_step']:10.0f} {1e3 * r['sec_per_step']:9.2f}"
        if model.flops is not None:
            gflops = model.flops(batch) / r["sec_per_step"] / 1e9
            line += f" {gflops:9.1f} {r['matmul_gflops']:15.1f} {gflops / r['matmul_gflops']:9.2f}"
        print(line)
    if "pytorch" in results:
        ratio = results["pytorch"]["sec_per_step"] / results["ganjax"]["sec_per_step"]
        print(f"ratio ganjax/pytorch images/s: {ratio:.2f}x" + (" (target >= 1.3x)" if args.model == "mlp" else ""))


if __name__ == "__main__":
    main()
