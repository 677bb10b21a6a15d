r"""Train steps per compiled call: steps/s at K = 1 vs larger K, side by side in one run.

    python -m experiments.bench_steps_per_call [--ks=1,5,10,25] [--steps=100] [--cases=ring_quick,ring,dcgan32]

Cases (``parallel='none'``, one device): ``ring_quick`` = the nets of
``configs/ring_2d.py:quick`` (G/D 2×32, batch 64: dispatch dominates),
``ring`` = the VEEGAN/PacGAN nets of ``configs/ring_2d.py`` (G 4×400,
D 4×200, batch 500), ``dcgan32`` = ``configs/dcgan_cifar10.py:quick``'s conv
nets on random 32×32×3 images (batch 64). For each K the trainer's own path
runs (:func:`ganjax.trainer.run_steps`: the plain step for K = 1, one
``lax.scan`` call of K steps otherwise); ``auto`` marks the K that
``steps_per_call = 0`` picks on this backend (:mod:`ganjax.calls`). The rule
table in :mod:`ganjax.calls` comes from this benchmark; rerun it on a quiet
machine (and on each accelerator) before changing the table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

CASES = {  # name → (config file, variant, batch size, synthetic image shape or None for toy data)
    "ring_quick": ("ring_2d", "quick", 64, None),
    "ring": ("ring_2d", None, 500, None),
    "dcgan32": ("dcgan_cifar10", "quick", 64, (32, 32, 3)),
}


def steps_per_second(case: str, ks: list[int], steps: int) -> tuple[dict[int, float], int]:
    """``({K: steps/s}, automatic K)`` for ``case``; each K first runs once (compilation) outside the timing."""
    import jax

    from ganjax import calls
    from ganjax import config as config_lib
    from ganjax.data import Dataset
    from ganjax.data.batches import BatchStream
    from ganjax.parallel import make_runner
    from ganjax.train import init_state
    from ganjax.trainer import run_steps

    name, variant, batch, shape = CASES[case]
    c = config_lib.load_config_file(name, variant)
    c.batch_size = batch
    dataset = None
    if shape is not None:
        images = np.random.default_rng(0).integers(0, 256, (4 * batch,) + shape, dtype=np.uint8)
        dataset = Dataset(c.dataset, shape, images=images)
    _, gan = config_lib.build(c, dataset)
    runner = make_runner(gan, "none", batch)
    stream = None if dataset is None else BatchStream(dataset.images, 0, batch)
    out = {}
    for k in ks:
        state = runner.put(init_state(gan, 0))
        state, m = run_steps(runner, state, stream, c.n_disc, k)  # compile
        jax.block_until_ready(m)
        calls_needed = max(1, steps // k)
        start = time.perf_counter()
        for _ in range(calls_needed):
            state, m = run_steps(runner, state, stream, c.n_disc, k)
        jax.block_until_ready(m)
        out[k] = calls_needed * k / (time.perf_counter() - start)
    c.steps_per_call = 0
    return out, calls.resolve(c, gan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="1,5,10,25", help="comma list of steps per call to time")
    parser.add_argument("--steps", type=int, default=100, help="timed train steps per K")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    args = parser.parse_args(argv)
    import jax

    cases = [x for x in args.cases.split(",") if x]
    bad = [x for x in cases if x not in CASES]
    if bad:
        parser.error(f"unknown case(s) {bad}; valid choices: {', '.join(CASES)}")
    print(f"{jax.default_backend()} backend, {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for case in cases:
        ks = sorted({int(x) for x in args.ks.split(",")} | {1})
        rates, auto = steps_per_second(case, ks, args.steps)
        if auto not in rates:
            rates.update(steps_per_second(case, [auto], args.steps)[0])
        cells = "  ".join(f"K={k}{' (auto)' if k == auto else ''}: {r:8.1f} steps/s ({r / rates[1]:.2f}x)"
                          for k, r in sorted(rates.items()))
        print(f"{case:11s} {cells}")


if __name__ == "__main__":
    main()
