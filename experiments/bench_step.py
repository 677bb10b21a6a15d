r"""Train-step throughput: ganjax vs a plain PyTorch implementation, side by side.

    python -m experiments.bench_step [--model=mlp|infogan28|dcgan64|sngan32|biggan32] [--steps=200] [--batch=128]
        [--warmup=10] [--repeats=3]

``mlp`` (default): seed 002's MLP GAN step (G 100→256→512→1024→784, D
784→1024→512→256→1 with dropout, Adam 2e-4, BCE; one D update on a real batch
and a fake batch, then one G update). ``infogan28``: the Lucic'18 InfoGAN-style
nets of ``configs/infogan_fashion_mnist.py`` on 28×28×1 (batch 64 by default).
``dcgan64``: the PyTorch DCGAN tutorial's nets (``configs/dcgan_celeba64.py``)
on 64×64×3 (batch 64 by default). ``sngan32``: the SN-GAN ResNet nets of
``configs/sngan_cifar10.py`` on 32×32×3 (hinge loss, 5 D updates per G
update, batch 64), ganjax only: it has no PyTorch twin. The conv nets have BatchNorm in D, so both
frameworks run D on the real and the fake batch separately; BCE on logits,
Adam(2e-4, β1 0.5). ``biggan32``: the class-conditional BigGAN nets of
``configs/biggan_cifar10.py`` on 32×32×3 (hinge loss, 5 D updates per G update,
each on its own real batch with its labels and a fresh generated batch with
uniform labels, then G's update and G's EMA; Adam(2e-4, β (0.5, 0.999)),
batch 64) against the hand-written twin of :mod:`experiments.torch_twins`
(spectral norm, one power iteration per D or G call, in both).

ganjax runs one jitted, buffer-donating step; PyTorch the same loop in eager
mode, in one process on the same CPU threads. The functions here
(:func:`build_ganjax`, :func:`bench_ganjax`, :func:`bench_torch`, :data:`MODELS`)
are also the step benchmarks of ``experiments/accelerator_suite.py``. Both steps are built once, then
timed in ``--repeats`` rounds in which the frameworks take turns (each round starts with the other
one), and the load average before and after is printed: time on a quiet machine. Prints images/s (the real
images a step consumes, batch × n_disc; the median round and the min–max spread) for both and the
per-round ratio, the parameter counts of G and D in each framework (the script stops if the twin's
differ from ganjax's), and each framework's achieved GFLOP/s as a fraction of its own large float32
matmul's GFLOP/s measured in the same run. The FLOPs per step are counted by hand for ``mlp`` and
are XLA's cost analysis of the compiled ganjax step for the conv nets (the same nets in both
frameworks, so the same useful work).
PyTorch is a benchmark-only dependency: ``pip install torch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from experiments import common


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
      batch: the real images of one step, uint8 ``[n_disc, B_rows, H, W, C]`` (this process's rows), for a
        class-conditional config the pair ``(images, labels int32 [n_disc, B_rows])``, or None for toy data
        (sampled inside the step).
      batch_size: the global batch.
    """

    runner: Any
    state: Any
    batch: np.ndarray | tuple[np.ndarray, np.ndarray] | None
    batch_size: int

    @property
    def n_disc(self) -> int:
        """D updates, so real batches, per step (the leading axis of the batch's images)."""
        images = self.batch[0] if isinstance(self.batch, tuple) else self.batch
        return len(images)

    def param_counts(self) -> tuple[int, int]:
        """``(G, D)``: the number of parameters of each net (D's summed over an ensemble's members)."""
        return tree_size(self.state.g_params), tree_size(self.state.d_params)

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
        reset: the benchmark feeds ready-made images), with uniform random labels when the config is
        class-conditional (``model.num_classes > 0``); None for a toy-data config.
      variant: the config's variant (``"quick"``) or None.
      overrides: dotted config keys to set (``{"compute_dtype": "bfloat16"}``).
      parallel: ``none | pmap | shard_map`` (:func:`ganjax.parallel.make_runner`).
    """
    import jax

    from ganjax.parallel import make_runner
    from ganjax.train import init_state

    gan, images = build_gan(config, batch, shape, variant, overrides)
    runner = make_runner(gan, parallel, batch)
    rows = None if images is None else jax.tree.map(lambda leaf: leaf[:, runner.rows], images)
    return GanjaxStep(runner, runner.put(init_state(gan, 0)), rows, batch)


def build_gan(config: str, batch: int, shape: tuple[int, int, int] | None = None, variant: str | None = None,
              overrides: dict[str, Any] | None = None):
    """``(gan, batch)``: the :class:`ganjax.train.GAN` of ``configs/<config>.py[:variant]`` at global batch
    ``batch`` and one step's real batch (:func:`bench_data`; None for toy data). Arguments as
    :func:`build_ganjax`'s."""
    from ganjax import config as config_lib

    c = config_lib.load_config_file(config, variant)
    c.batch_size = batch
    if overrides:
        c.update_from_flattened_dict(dict(overrides))
    dataset, images = None, None
    if shape is not None:
        c.data = type(c.data)()  # image_size/crop: the benchmark feeds ready-made images
        dataset, images = bench_data(shape, c.n_disc, batch, c.model.num_classes)
    return config_lib.build(c, dataset)[1], images


def tree_size(tree: Any) -> int:
    """The number of scalars in a pytree of arrays (or of ``jax.ShapeDtypeStruct``s)."""
    import jax

    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def ganjax_param_counts(config: str, shape: tuple[int, int, int] | None, variant: str | None = None,
                        overrides: dict[str, Any] | None = None) -> tuple[int, int]:
    """``(G, D)`` parameter counts of ``configs/<config>.py[:variant]``'s nets, from the shapes of its
    initial train state (``jax.eval_shape``: nothing is computed or compiled)."""
    import jax

    from ganjax.train import init_state

    gan, _ = build_gan(config, 2, shape, variant, overrides)
    state = jax.eval_shape(lambda: init_state(gan, 0))
    return tree_size(state.g_params), tree_size(state.d_params)


def bench_data(shape: tuple[int, int, int], n_disc: int, batch: int, num_classes: int = 0):
    """``(dataset, batch)``: a stand-in dataset of ``shape`` images (labelled with ``num_classes`` classes
    when > 0) and one step's random real batch, uint8 ``[n_disc, batch, *shape]`` (with uniform labels
    int32 ``[n_disc, batch]`` as the pair ``(images, labels)`` when ``num_classes > 0``)."""
    from ganjax.data import Dataset

    rng = np.random.default_rng(0)
    n = n_disc * batch
    images = rng.integers(0, 256, (n_disc, batch) + shape, dtype=np.uint8)
    if not num_classes:
        return Dataset("bench", shape, images=np.zeros((n,) + shape, np.uint8)), images
    labels = rng.integers(0, num_classes, (n_disc, batch)).astype(np.int32)
    dataset = Dataset("bench", shape, images=np.zeros((n,) + shape, np.uint8), labels=np.arange(n) % num_classes,
                      num_classes=num_classes)
    return dataset, (images, labels)


def bench_ganjax(model: "Model", batch: int, steps: int, warmup: int, variant: str | None = None,
                 overrides: dict[str, Any] | None = None) -> dict:
    """``{"sec_per_step", "flops", "n_disc", "params"}`` of ``model``'s ganjax step (``flops``: XLA's count per
    step, or None; ``n_disc``: D updates, so real batches, per step; ``params``: G's and D's parameter
    counts)."""
    bench = build_ganjax(model.config, batch, model.shape, variant, overrides)
    flops = bench.compiled_flops()
    return {"sec_per_step": time_loop(bench.step, steps, warmup), "flops": flops, "n_disc": bench.n_disc,
            "params": bench.param_counts()}


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


@dataclasses.dataclass
class TorchTwin:
    """A PyTorch twin ready to step: its nets and optimizers on ``device``, and the autocast of ``dtype``.

    Attributes:
      model: the benchmarked model.
      G, D: the twin's nets (train mode).
      g_opt, d_opt: their Adam optimizers (lr 2e-4, ``model.torch_betas``).
      batch: the batch size.
      device: ``"cpu"`` | ``"cuda"``.
      dtype: ``"float32"`` | ``"bfloat16"`` (the nets under ``torch.autocast``, the losses in float32).
      ema: G's exponential moving average, one tensor per ``G.parameters()`` (for steps that keep one).
    """

    model: "Model"
    G: Any
    D: Any
    g_opt: Any
    d_opt: Any
    batch: int
    device: str
    dtype: str
    ema: list = dataclasses.field(default_factory=list)

    def nets(self):
        """The context the nets run in: nothing for float32, ``torch.autocast`` to bfloat16 otherwise."""
        import contextlib

        import torch

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)

    def d_of(self, *inputs):
        """D's output in float32 (BCELoss is not autocast-safe)."""
        with self.nets():
            return self.D(*inputs).float()

    def real_images(self, n: int | None = None):
        """Uniform images in [-1, 1], ``[B, C, H, W]`` (``[n, B, C, H, W]`` when ``n`` is given)."""
        import torch

        h, w, c = self.model.shape
        lead = () if n is None else (n,)
        return torch.rand(*lead, self.batch, c, h, w, device=self.device) * 2 - 1


def seed_step(t: TorchTwin) -> Callable[[], None]:
    """Seed 002's ``discriminator_train_step`` + ``generator_train_step``: BCE (on D's sigmoid, or on its
    logits), D on one real and one fake batch (two backward passes), then G; the loss read every step."""
    import torch
    from torch import nn

    loss = nn.BCELoss() if isinstance(t.D[-1], nn.Sigmoid) else nn.BCEWithLogitsLoss()
    real, batch, device, z_dim = t.real_images(), t.batch, t.device, t.model.z_dim
    ones, zeros = torch.ones(batch, 1, device=device), torch.zeros(batch, 1, device=device)

    def one():
        with t.nets():
            fake = t.G(torch.randn(batch, z_dim, device=device)).detach()
        t.d_opt.zero_grad()
        error_real = loss(t.d_of(real), ones)
        error_real.backward()
        error_fake = loss(t.d_of(fake), zeros)
        error_fake.backward()
        t.d_opt.step()
        t.g_opt.zero_grad()
        with t.nets():
            fake = t.G(torch.randn(batch, z_dim, device=device))
        error = loss(t.d_of(fake), ones)
        error.backward()
        t.g_opt.step()
        error.item()  # the seed reads the loss every step (and this waits for the device)

    return one


def conditional_hinge_step(t: TorchTwin) -> Callable[[], None]:
    """ganjax's alternating step of a class-conditional hinge-loss GAN: ``model.n_disc`` D updates, each on
    its own real batch and labels and a fresh generated batch of uniform labels (``mean relu(1 - D(x, y))
    + mean relu(1 + D(G(z, y'), y'))``), then one G update (``-mean D(G(z, y), y)``) and G's EMA
    (``model.ema_decay``); the loss read every step."""
    import torch
    import torch.nn.functional as F

    m, batch, device = t.model, t.batch, t.device
    reals = t.real_images(m.n_disc)
    real_labels = torch.randint(0, m.num_classes, (m.n_disc, batch), device=device)
    g_params = list(t.G.parameters())
    t.ema = [p.detach().clone() for p in g_params]

    def draw():
        return torch.randn(batch, m.z_dim, device=device), torch.randint(0, m.num_classes, (batch,), device=device)

    def one():
        for j in range(m.n_disc):
            z, y = draw()
            with torch.no_grad(), t.nets():
                fake = t.G(z, y)
            t.d_opt.zero_grad()
            d_loss = F.relu(1 - t.d_of(reals[j], real_labels[j])).mean() + F.relu(1 + t.d_of(fake, y)).mean()
            d_loss.backward()
            t.d_opt.step()
        z, y = draw()
        t.g_opt.zero_grad()
        with t.nets():
            fake = t.G(z, y)
        g_loss = -t.d_of(fake, y).mean()
        g_loss.backward()
        t.g_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(t.ema, g_params, 1.0 - m.ema_decay)
        g_loss.item()

    return one


@dataclasses.dataclass
class TorchBench:
    """A built PyTorch twin step ready to time: ``step`` runs one train step (and waits for it)."""

    step: Callable[[], None]
    threads: int
    n_disc: int
    params: tuple[int, int]


def build_torch(model: "Model", batch: int, device: str = "cpu", dtype: str = "float32") -> TorchBench:
    """``model``'s PyTorch twin and its train step in eager mode on ``device`` (``"cpu"`` | ``"cuda"``);
    ``dtype="bfloat16"`` runs the nets under ``torch.autocast`` (the losses in float32, as ganjax's
    ``compute_dtype``). Raises ``ValueError`` for a model without a twin."""
    import torch

    if model.torch_nets is None:
        raise ValueError(f"{model.title} has no PyTorch twin")
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    torch.manual_seed(0)
    G, D = (net.to(device) for net in model.torch_nets())
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=model.torch_betas)
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=model.torch_betas)
    one = model.torch_step(TorchTwin(model, G, D, g_opt, d_opt, batch, device, dtype))
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    return TorchBench(one, torch.get_num_threads(), model.n_disc, (count(G), count(D)))


def bench_torch(model: "Model", batch: int, steps: int, warmup: int, device: str = "cpu",
                dtype: str = "float32") -> dict:
    """``{"sec_per_step", "threads", "n_disc", "params"}`` of :func:`build_torch`'s twin step
    (``params``: G's and D's parameter counts)."""
    t = build_torch(model, batch, device, dtype)
    return {"sec_per_step": time_loop(t.step, steps, warmup), "threads": t.threads, "n_disc": t.n_disc,
            "params": t.params}


def torch_biggan32_nets():
    """BigGAN-32's G and D at the width of ``configs/biggan_cifar10.py`` (:mod:`experiments.torch_twins`)."""
    from experiments.torch_twins import biggan32_nets

    return biggan32_nets()


@dataclasses.dataclass(frozen=True)
class Model:
    """One benchmarked GAN: the ganjax config, the PyTorch twin, shapes and defaults.

    ``torch_step`` builds the twin's train step (:func:`seed_step`, :func:`conditional_hinge_step`);
    ``n_disc``, ``num_classes`` and ``ema_decay`` are the config's, for the twin's step.
    """

    title: str
    config: str
    torch_nets: Callable | None  # None: no PyTorch twin (ganjax only)
    shape: tuple[int, int, int]
    z_dim: int
    batch: int
    torch_betas: tuple[float, float] = (0.5, 0.999)
    flops: Callable[[int], float] | None = None
    torch_step: Callable[[TorchTwin], Callable[[], None]] = seed_step
    n_disc: int = 1
    num_classes: int = 0
    ema_decay: float = 0.0


MODELS = {
    "mlp": Model("seed 002 MLP GAN", "fashion_mnist_mlp", torch_mlp_nets, (28, 28, 1), 100, 128,
                 torch_betas=(0.9, 0.999), flops=mlp_step_flops),
    "infogan28": Model("Lucic'18 InfoGAN-style GAN, 28x28x1", "infogan_fashion_mnist", torch_infogan28_nets,
                       (28, 28, 1), 64, 64),
    "dcgan64": Model("DCGAN (PyTorch tutorial), 64x64x3", "dcgan_celeba64", torch_dcgan64_nets, (64, 64, 3), 100, 64),
    "sngan32": Model("SN-GAN ResNet (Miyato'18 Table 4), 32x32x3, n_disc 5", "sngan_cifar10", None, (32, 32, 3),
                     128, 64, torch_betas=(0.0, 0.9), n_disc=5),
    "biggan32": Model("class-conditional BigGAN (StudioGAN CIFAR-10), 32x32x3, n_disc 5", "biggan_cifar10",
                      torch_biggan32_nets, (32, 32, 3), 80, 64, torch_step=conditional_hinge_step, n_disc=5,
                      num_classes=10, ema_decay=0.9999),
}


def check_param_counts(results: dict[str, dict]) -> str:
    """The line that states G's and D's parameter counts of every framework in ``results`` (each result
    has ``params = (G, D)``); raises ``AssertionError`` if they differ: a twin must have ganjax's shapes."""
    counts = {name: r["params"] for name, r in results.items()}
    line = "parameters: " + "; ".join(f"{name} G {g:,} D {d:,}" for name, (g, d) in counts.items())
    if len(set(counts.values())) > 1:
        raise AssertionError(f"the PyTorch twin's parameter counts differ from ganjax's: {line}")
    return line


def spread(values: Sequence[float]) -> str:
    """``median (min–max)`` of ``values``."""
    return f"{np.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def alternated_timings(steppers: dict[str, Callable[[], None]], steps: int, warmup: int,
                       repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each framework's ``steppers[name]``, ``repeats`` rounds, the frameworks taking
    turns (round r starts with framework r mod n, so neither always runs first); ``warmup`` untimed steps
    before each framework's first round only."""
    names = list(steppers)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(time_loop(steppers[name], steps, warmup if r == 0 else 0))
    return times


def add_timing_args(parser: argparse.ArgumentParser, steps: int, warmup: int, batch_help: str,
                    turns: str) -> None:
    """The ``--steps``, ``--batch``, ``--warmup`` and ``--repeats`` flags of the step benchmarks (defaults
    ``steps`` and ``warmup``; ``turns``: what takes turns in a round)."""
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=0, help=batch_help)
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps before timing (after compiling)")
    parser.add_argument("--repeats", type=int, default=3,
                        help=f"timed rounds, {turns} taking turns; medians and min-max spreads are reported")


def parse_timing_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """``parser``'s arguments, with :func:`add_timing_args`'s checked (a usage error names the bad values)."""
    args = parser.parse_args()
    if min(args.steps, args.repeats) < 1 or min(args.warmup, args.batch) < 0:
        parser.error(f"--steps and --repeats must be >= 1, --warmup and --batch >= 0; got --steps={args.steps} "
                     f"--repeats={args.repeats} --warmup={args.warmup} --batch={args.batch}")
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    add_timing_args(parser, 200, 10, "0: the model's default (mlp 128, conv nets 64)", "the frameworks")
    args = parse_timing_args(parser)
    model = MODELS[args.model]
    batch = args.batch or model.batch
    load_before = common.load_average()
    bench = build_ganjax(model.config, batch, model.shape)
    steppers, info = {"ganjax": bench.step}, {"ganjax": {"n_disc": bench.n_disc, "params": bench.param_counts()}}
    flops = model.flops(batch) if model.flops is not None else bench.compiled_flops()
    if model.torch_nets is None:
        print(f"{model.title}: no PyTorch twin, reporting ganjax only")
    else:
        try:
            twin = build_torch(model, batch)
            steppers["pytorch"], info["pytorch"] = twin.step, {"n_disc": twin.n_disc, "params": twin.params}
        except ImportError:
            print("PyTorch is not installed (pip install torch): reporting ganjax only")
    times = alternated_timings(steppers, args.steps, args.warmup, args.repeats)
    peaks = {"ganjax": matmul_gflops_jax, "pytorch": matmul_gflops_torch}
    peak = {name: peaks[name]() for name in steppers} if flops else {}
    load_after = common.load_average()
    print(f"{model.title} train step, batch {batch}, {args.steps} timed steps x {args.repeats} alternated rounds, "
          f"{os.cpu_count()} CPUs; load average (1/5/15 min) before {common.load_text(load_before)}, "
          f"after {common.load_text(load_after)}")
    print(check_param_counts(info))
    if flops:
        source = "counted by hand" if model.flops else "XLA cost analysis of the ganjax step"
        same = "; both frameworks compute the same nets" if len(steppers) > 1 else ""
        print(f"FLOPs per step: {flops / 1e9:.2f} G ({source}{same})")
    print(f"{'':10s} {'images/s':>10s} {'ms/step: median (min-max)':>30s}" +
          (f" {'GFLOP/s':>9s} {'matmul GFLOP/s':>15s} {'fraction':>9s}" if flops else ""))
    for name, secs in times.items():
        sec = float(np.median(secs))
        line = f"{name:10s} {batch * info[name]['n_disc'] / sec:10.1f} {spread([1e3 * t for t in secs]):>30s}"
        if flops:
            line += f" {flops / sec / 1e9:9.1f} {peak[name]:15.1f} {flops / sec / 1e9 / peak[name]:9.2f}"
        print(line)
    if "pytorch" in times:
        ratios = [p / g for g, p in zip(times["ganjax"], times["pytorch"])]
        print(f"ratio ganjax/pytorch images/s, per round: {spread(ratios)}"
              + (" (target >= 1.3x)" if args.model == "mlp" else ""))


if __name__ == "__main__":
    main()
