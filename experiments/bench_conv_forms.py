r"""The conv-gradient forms of ``ganjax.models.layers``, timed in a whole train step, side by side.

    python -m experiments.bench_conv_forms [--model=dcgan64|infogan28] [--steps=3] [--warmup=1] [--repeats=3]

``layers`` picks the form of two computations by shape, with two module-level thresholds:

* ``SPLIT_PHASES_MAX_PIXELS`` and ``SPLIT_PHASES_MIN_FEATURES``: a stride-2 transposed convolution
  (and a 4×4/2 convolution's input gradient) of an input of at most this many pixels, with at least
  this many output channels, computes its four output phases as four convolutions; others as one
  all-phase convolution;
* ``SHIFTED_KERNEL_GRAD_MIN_PIXELS``: a 4×4/2 convolution's kernel gradient takes the shifted
  space-to-depth products from this many input pixels on, XLA's own below (an image input keeps
  its im2col product).

This script builds the model's ganjax train step once per setting of the thresholds (each step is
traced and compiled under its setting) and times them in ``--repeats`` alternated rounds in one
process, so the ratios compare forms, not machines or minutes:

* ``chosen``: the shipped thresholds;
* ``single phases``: one all-phase convolution at every size;
* ``split, any width``: four phase convolutions for every small input, whatever its output width;
* ``XLA kernel grad``: XLA's own kernel gradient at every size;
* ``shifted kernel grad``: the shifted products at every size.

Prints ms/step (median and min–max over the rounds), each variant's speed relative to ``chosen``
per round, and the load average before and after: time on a quiet machine. The numbers of every
setting are the same function to float32 rounding (``tests/test_conv_grads.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Callable
from unittest import mock

from experiments import common
from experiments.bench_step import (MODELS, add_timing_args, alternated_timings, build_ganjax, parse_timing_args,
                                    spread)

CONV_MODELS = ("dcgan64", "infogan28")

# name → the thresholds it sets (the others keep their shipped values).
VARIANTS: dict[str, dict[str, int]] = {
    "chosen": {},
    "single phases": {"SPLIT_PHASES_MAX_PIXELS": 0},
    "split, any width": {"SPLIT_PHASES_MIN_FEATURES": 0},
    "XLA kernel grad": {"SHIFTED_KERNEL_GRAD_MIN_PIXELS": 10 ** 12},
    "shifted kernel grad": {"SHIFTED_KERNEL_GRAD_MIN_PIXELS": 0},
}


def build_variant_steps(model_name: str, batch: int, warmup: int,
                        variants: dict[str, dict[str, int]] = VARIANTS) -> dict[str, Callable[[], None]]:
    """One compiled train step of ``model_name`` per variant: the thresholds are set, the step is built and
    run ``max(warmup, 1)`` times (tracing and compiling it under them), then restored."""
    from ganjax.models import layers

    model = MODELS[model_name]
    steps = {}
    for name, settings in variants.items():
        with mock.patch.multiple(layers, **settings) if settings else contextlib.nullcontext():
            bench = build_ganjax(model.config, batch, model.shape)
            for _ in range(max(warmup, 1)):
                bench.step()
        steps[name] = bench.step
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=CONV_MODELS, default="dcgan64")
    add_timing_args(parser, 3, 1, "0: the model's default (64)", "the variants")
    args = parse_timing_args(parser)
    model = MODELS[args.model]
    batch = args.batch or model.batch
    load_before = common.load_average()
    times = alternated_timings(build_variant_steps(args.model, batch, args.warmup), args.steps, 0, args.repeats)
    print(f"{model.title} train step under each conv-gradient form, batch {batch}, {args.steps} timed steps x "
          f"{args.repeats} alternated rounds, {os.cpu_count()} CPUs; load average (1/5/15 min) before "
          f"{common.load_text(load_before)}, after {common.load_text(common.load_average())}")
    print(f"{'variant':20s} {'ms/step: median (min-max)':>28s} {'speed vs chosen, per round':>30s}")
    for name, secs in times.items():
        relative = [c / t for c, t in zip(times["chosen"], secs)]
        print(f"{name:20s} {spread([1e3 * t for t in secs]):>28s} {spread(relative):>30s}")
    print("(speed vs chosen > 1: that variant is faster than the shipped choice)")


if __name__ == "__main__":
    main()
