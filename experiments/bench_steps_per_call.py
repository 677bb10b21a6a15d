r"""Train steps per compiled call: steps/s at K = 1 vs larger K, side by side in one run.

    python -m experiments.bench_steps_per_call [--ks=1,5,10,25] [--steps=100] [--repeats=3]
        [--cases=ring_quick,ring,dcgan32]

Cases (``parallel='none'``, one device): ``ring_quick`` = the nets of
``configs/ring_2d.py:quick`` (G/D 2×32, batch 64: dispatch dominates),
``ring`` = the VEEGAN/PacGAN nets of ``configs/ring_2d.py`` (G 4×400,
D 4×200, batch 500), ``dcgan32`` = ``configs/dcgan_cifar10.py:quick``'s conv
nets on random 32×32×3 images (batch 64). For each K the trainer's own path
runs (:func:`ganjax.trainer.run_steps`: the plain step for K = 1, one
``lax.scan`` call of K steps otherwise), each K compiled first, then timed in
``--repeats`` rounds in which the Ks take turns; steps/s and the ratio to K = 1 per
round are printed as median (min–max), with the load average before and after
(time on a quiet machine). ``auto`` marks the K that
``steps_per_call = 0`` picks on this backend (:mod:`ganjax.calls`). The rule
table in :mod:`ganjax.calls` comes from this benchmark; rerun it on a quiet
machine (and on each accelerator) before changing the table.
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from experiments import common
from experiments.bench_step import alternated_timings, spread

CASES = {  # name → (config file, variant, batch size, synthetic image shape or None for toy data)
    "ring_quick": ("ring_2d", "quick", 64, None),
    "ring": ("ring_2d", None, 500, None),
    "dcgan32": ("dcgan_cifar10", "quick", 64, (32, 32, 3)),
}


def build_case(case: str):
    """``(runner, gan, config, stream)`` of ``case`` on one device (``stream``: None for toy data)."""
    from ganjax import config as config_lib
    from ganjax.data import Dataset
    from ganjax.data.batches import BatchStream
    from ganjax.parallel import make_runner

    name, variant, batch, shape = CASES[case]
    c = config_lib.load_config_file(name, variant)
    c.batch_size = batch
    dataset = None
    if shape is not None:
        images = np.random.default_rng(0).integers(0, 256, (4 * batch,) + shape, dtype=np.uint8)
        dataset = Dataset(c.dataset, shape, images=images)
    _, gan = config_lib.build(c, dataset)
    stream = None if dataset is None else BatchStream(dataset.images, 0, batch)
    return make_runner(gan, "none", batch), gan, c, stream


class Caller:
    """Runs one call of ``k`` train steps (the trainer's own path) per ``()`` and waits for it; ``state`` starts
    at ``init_state`` and carries over from call to call. The first call (compiling) runs on construction."""

    def __init__(self, runner, gan, config, stream, k: int):
        from ganjax.train import init_state

        self.runner, self.stream, self.n_disc, self.k = runner, stream, config.n_disc, k
        self.state = runner.put(init_state(gan, 0))
        self()

    def __call__(self) -> None:
        import jax

        from ganjax.trainer import run_steps

        self.state, metrics = run_steps(self.runner, self.state, self.stream, self.n_disc, self.k)
        jax.block_until_ready(metrics)


def steps_per_second(case: str, ks: list[int], steps: int, repeats: int = 3) -> tuple[dict[int, list[float]], int]:
    """``({K: steps/s per round}, automatic K)`` for ``case``, timing ``ks`` and the automatic K: each K
    compiled first, then ``repeats`` rounds in which every K runs ``max(1, steps // K)`` calls, the Ks
    taking turns (round r starts with the r-th K)."""
    from ganjax import calls

    runner, gan, c, stream = build_case(case)
    c.steps_per_call = 0
    auto = calls.resolve(c, gan)
    ks = sorted(set(ks) | {auto})
    n_calls = {k: max(1, steps // k) for k in ks}

    def calls_of(caller: Caller) -> Callable[[], None]:
        return lambda: [caller() for _ in range(n_calls[caller.k])]

    rounds = alternated_timings({k: calls_of(Caller(runner, gan, c, stream, k)) for k in ks}, 1, 0, repeats)
    return {k: [k * n_calls[k] / sec for sec in secs] for k, secs in rounds.items()}, auto


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="1,5,10,25", help="comma list of steps per call to time")
    parser.add_argument("--steps", type=int, default=100, help="timed train steps per K and round")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, the Ks taking turns")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    args = parser.parse_args(argv)
    import jax

    cases = [x for x in args.cases.split(",") if x]
    bad = [x for x in cases if x not in CASES]
    if bad:
        parser.error(f"unknown case(s) {bad}; valid choices: {', '.join(CASES)}")
    try:
        ks = sorted({int(x) for x in args.ks.split(",") if x.strip()} | {1})
    except ValueError:
        parser.error(f"--ks must be a comma list of positive integers, got {args.ks!r}")
    if min(ks) < 1 or min(args.steps, args.repeats) < 1:
        parser.error(f"--ks, --steps and --repeats must be >= 1; got --ks={args.ks} --steps={args.steps} "
                     f"--repeats={args.repeats}")
    load_before = common.load_average()
    print(f"{jax.default_backend()} backend, {jax.devices()[0].device_kind}, jax {jax.__version__}; "
          f"{args.repeats} alternated rounds of {args.steps} steps per K; steps/s: median (min-max); "
          f"ratio to K=1 per round: median (min-max)")
    for case in cases:
        rates, auto = steps_per_second(case, ks, args.steps, args.repeats)
        cells = "  ".join(f"K={k}{' (auto)' if k == auto else ''}: {spread(r)} steps/s "
                          f"({spread([a / b for a, b in zip(r, rates[1])])}x)" for k, r in sorted(rates.items()))
        print(f"{case:11s} {cells}")
    print(f"load average (1/5/15 min) before {common.load_text(load_before)}, after "
          f"{common.load_text(common.load_average())}")


if __name__ == "__main__":
    main()
