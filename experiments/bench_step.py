r"""Train-step throughput: ganjax vs a plain PyTorch implementation, side by side.

    python -m experiments.bench_step [--steps=200] [--batch=128] [--threads=0]

Times seed 002's MLP GAN step (G 100→256→512→1024→784, D 784→1024→512→256→1
with dropout, Adam 2e-4, BCE; one D update on a real batch and a fake batch,
then one G update) in ganjax (one jitted, buffer-donating step) and in PyTorch
(the seed's own loop, eager mode), in one process on the same CPU threads.
Prints images/s for both, their ratio, and the achieved GFLOP/s as a fraction
of a large float32 matmul's GFLOP/s measured in the same run (by each
framework). PyTorch is a benchmark-only dependency: ``pip install torch``.
"""

from __future__ import annotations

import argparse
import os
import time

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


def bench_ganjax(batch: int, steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    from ganjax import config as config_lib
    from ganjax.data import Dataset
    from ganjax.parallel import make_runner
    from ganjax.train import init_state

    c = config_lib.load_config_file("fashion_mnist_mlp")
    c.batch_size = batch
    dataset = Dataset("bench", (28, 28, 1), images=np.zeros((batch, 28, 28, 1), np.uint8))
    _, gan = config_lib.build(c, dataset)
    runner = make_runner(gan, "none", batch)
    state = runner.put(init_state(gan, 0))
    images = np.random.default_rng(0).integers(0, 256, (1, batch, 28, 28, 1), dtype=np.uint8)
    holder = {"state": state}

    def one():
        holder["state"], metrics = runner.step(holder["state"], images)
        jax.block_until_ready(metrics["g_loss"])

    sec = time_loop(one, steps)
    n = 2048
    a = jnp.ones((n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    mm_sec = time_loop(lambda: mm(a).block_until_ready(), 20, warmup=3)
    return {"sec_per_step": sec, "matmul_gflops": 2 * n ** 3 / mm_sec / 1e9}


def bench_torch(batch: int, steps: int) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(1024, 512),
                      nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                      nn.Linear(256, 1), nn.Sigmoid())
    G = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                      nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh())
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4)
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4)
    loss = nn.BCELoss()
    real = torch.rand(batch, 784) * 2 - 1
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def one():  # seed 002's discriminator_train_step + generator_train_step
        fake = G(torch.randn(batch, 100)).detach()
        d_opt.zero_grad()
        error_real = loss(D(real), ones)
        error_real.backward()
        error_fake = loss(D(fake), zeros)
        error_fake.backward()
        d_opt.step()
        g_opt.zero_grad()
        error = loss(D(G(torch.randn(batch, 100))), ones)
        error.backward()
        g_opt.step()
        error.item()  # the seed reads the loss every step

    sec = time_loop(one, steps)
    n = 2048
    a = torch.ones(n, n)
    mm_sec = time_loop(lambda: a @ a, 20, warmup=3)
    return {"sec_per_step": sec, "matmul_gflops": 2 * n ** 3 / mm_sec / 1e9, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    flops = mlp_step_flops(args.batch)
    results = {"ganjax": bench_ganjax(args.batch, args.steps)}
    try:
        results["pytorch"] = bench_torch(args.batch, args.steps)
    except ImportError:
        print("PyTorch is not installed (pip install torch): reporting ganjax only")
    print(f"seed 002 MLP GAN train step, batch {args.batch}, {args.steps} timed steps, {os.cpu_count()} CPUs")
    print(f"{'':10s} {'images/s':>10s} {'ms/step':>9s} {'GFLOP/s':>9s} {'matmul GFLOP/s':>15s} {'fraction':>9s}")
    for name, r in results.items():
        gflops = flops / r["sec_per_step"] / 1e9
        print(f"{name:10s} {args.batch / r['sec_per_step']:10.0f} {1e3 * r['sec_per_step']:9.2f} "
              f"{gflops:9.1f} {r['matmul_gflops']:15.1f} {gflops / r['matmul_gflops']:9.2f}")
    if "pytorch" in results:
        ratio = results["pytorch"]["sec_per_step"] / results["ganjax"]["sec_per_step"]
        print(f"ratio ganjax/pytorch images/s: {ratio:.2f}x (target >= 1.3x)")


if __name__ == "__main__":
    main()
