r"""Vmapped sweep vs the same trials one after another, side by side in one run.

    python -m experiments.bench_sweep [--trials=64] [--steps=200] [--mnist_trials=8] [--mnist_steps=50]

Both sides go through the same code path, :class:`ganjax.sweep.vmapped.GroupRun`:
*vmapped* trains all trials as one group (one compiled program, states
stacked ``[T, ...]``); *sequential* runs a group of one trial per trial, one
after another, and costs what separate ``ganjax.main`` processes cost: JAX's
caches (and ganjax's compiled-init cache) are cleared before each trial, so
each compiles its own programs, and the start-up of one fresh
``python -c 'import ganjax.trainer'`` process, measured once, is added per
trial. Wall times include compilation, which is what a user waits for; the
number of XLA compilations of each side and the per-step times after
compilation are printed too.

1. ``--trials`` trials of the 2-D ring GAN, learning rates log-spaced in
   [1e-5, 1e-3] × seeds, for each of ``--ring_bases``: the small nets of
   ``configs/ring_2d.py:quick`` (G/D 2×32, batch 64: fixed costs dominate)
   and the VEEGAN/PacGAN nets of ``configs/ring_2d.py`` (G 4×400, D 4×200,
   batch 500: arithmetic dominates on a CPU);
2. ``--mnist_trials`` trials of seed 002's Fashion-MNIST MLP GAN (batch 128),
   when Fashion-MNIST is available.

No evaluation and no checkpoints during the timed runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from experiments import common


def _sweep(base: str, num_trials: int, steps: int):
    from ganjax.sweep import spec

    seeds = max(1, int(np.sqrt(num_trials)))
    lrs = tuple(float(x) for x in np.geomspace(1e-5, 1e-3, num_trials // seeds))
    s = spec.sweep_config(base=base, axes=[spec.axis(("optimizer_g.learning_rate", "optimizer_d.learning_rate"),
                                                     grid=lrs)], seeds=seeds,
                          fixed={"num_steps": steps, "log_every": steps, "eval_every": 0, "sample_every": 0,
                                 "checkpoint_every": 0})
    trials = spec.expand(s)
    return trials, spec.trial_configs(s, trials)


def process_startup_seconds() -> float:
    """Wall seconds of a fresh Python process that imports the trainer (what each separate run pays first)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ganjax.trainer, ganjax.sweep.vmapped"], check=True,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return time.perf_counter() - start


def fresh_process_caches() -> None:
    """Forgets every compiled program, as a new process would start."""
    import jax

    from ganjax.train import compiled_init

    jax.clear_caches()
    compiled_init.cache_clear()


def _time_groups(groups, configs_of, dataset, root: str, fresh: bool) -> tuple[float, float, int]:
    """``(wall seconds, seconds per step after compilation, XLA compilations)`` for running ``groups`` one after
    another; ``fresh``: each group starts with empty compilation caches (a separate process)."""
    from ganjax.compiles import CompileCounter
    from ganjax.sweep.vmapped import GroupRun

    wall, per_step, compiles = 0.0, 0.0, 0
    for n, members in enumerate(groups):
        configs = configs_of(members)
        if fresh:
            fresh_process_caches()
        run = GroupRun(members, configs, os.path.join(root, f"g{n}"), dataset)
        start = time.perf_counter()
        with CompileCounter() as counter:
            run.run()
        wall += time.perf_counter() - start
        compiles += counter.count
        # Steady state: the compiled program once more, from the trained states.
        import jax
        import jax.numpy as jnp

        from ganjax.sweep.vmapped import _image_batches, make_group_step

        images = dataset is not None and dataset.images is not None
        step = make_group_step(run.gan, configs[0].batch_size, images, run.k)
        states = run.states
        alive = jnp.ones(len(members), bool)
        batches = None
        if images:
            from ganjax.data.batches import BatchStream

            streams = [BatchStream(dataset.images, c.seed, c.batch_size) for c in configs]
            batches = _image_batches(streams, configs[0].n_disc, run.k)
        states, alive, m = step(states, alive, batches)  # compile
        jax.block_until_ready(m)
        start = time.perf_counter()
        states, alive, m = step(states, alive, batches)
        jax.block_until_ready(m)
        per_step += (time.perf_counter() - start) / run.k
    return wall, per_step, compiles


def bench(base: str, num_trials: int, steps: int, dataset=None) -> dict:
    trials, configs = _sweep(base, num_trials, steps)
    by_id = dict(zip((t.id for t in trials), configs))
    configs_of = lambda members: [by_id[t.id] for t in members]  # noqa: E731
    startup = process_startup_seconds()
    with tempfile.TemporaryDirectory() as root:
        vm_wall, vm_step, vm_compiles = _time_groups([trials], configs_of, dataset, os.path.join(root, "vmap"),
                                                     fresh=True)
        seq_wall, seq_step, seq_compiles = _time_groups([[t] for t in trials], configs_of, dataset,
                                                        os.path.join(root, "seq"), fresh=True)
    return {"trials": len(trials), "steps": steps, "vmap_wall": vm_wall + startup,
            "seq_wall": seq_wall + len(trials) * startup, "startup": startup, "vmap_step": vm_step,
            "seq_step": seq_step, "vmap_compiles": vm_compiles, "seq_compiles": seq_compiles}


def _print(name: str, r: dict) -> None:
    print(f"{name}: {r['trials']} trials x {r['steps']} steps")
    print(f"  wall (incl. compile and {r['startup']:.1f}s process start-up per process): vmapped "
          f"{r['vmap_wall']:8.1f}s   sequential {r['seq_wall']:8.1f}s   ratio {r['seq_wall'] / r['vmap_wall']:.1f}x")
    print(f"  XLA compilations: vmapped {r['vmap_compiles']}   sequential {r['seq_compiles']}")
    print(f"  compiled step, all trials: vmapped {1e3 * r['vmap_step']:8.2f}ms  sequential "
          f"{1e3 * r['seq_step']:8.2f}ms  ratio {r['seq_step'] / r['vmap_step']:.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--mnist_trials", type=int, default=8)
    parser.add_argument("--mnist_steps", type=int, default=50)
    parser.add_argument("--ring_bases", default="configs/ring_2d.py:quick,configs/ring_2d.py",
                        help="comma list of ring configs: ':quick' has G/D 2x32 and batch 64, the plain config "
                             "the VEEGAN/PacGAN nets (G 4x400, D 4x200, batch 500)")
    args = parser.parse_args(argv)
    import logging

    import jax

    logging.getLogger("ganjax").setLevel(logging.WARNING)
    print(f"{jax.devices()[0].platform} backend, {len(jax.devices())} device(s), {os.cpu_count()} CPUs, "
          f"jax {jax.__version__}; load average (1/5/15 min) {common.load_text(common.load_average())}")
    try:
        run_benches(args)
    finally:
        print(f"load average (1/5/15 min) at the end {common.load_text(common.load_average())}")


def run_benches(args: argparse.Namespace) -> None:
    """The ring benchmarks of ``--ring_bases``, then the Fashion-MNIST one (when its data is there)."""
    for base in args.ring_bases.split(","):
        _print(f"2-D ring GAN ({base})", bench(base, args.trials, args.steps))
    if args.mnist_trials:
        from ganjax.config import load_config_file
        from ganjax.data import make_dataset
        from ganjax.errors import GanjaxError

        try:
            c = load_config_file("fashion_mnist_mlp")
            dataset = make_dataset(c.dataset, data_dir=c.data_dir or None)
        except GanjaxError as e:
            print(f"Fashion-MNIST MLP GAN skipped: {e}")
            return
        _print("Fashion-MNIST MLP GAN (seed 002)", bench("configs/fashion_mnist_mlp.py", args.mnist_trials,
                                                          args.mnist_steps, dataset))


if __name__ == "__main__":
    main()
