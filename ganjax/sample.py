r"""Sample a trained generator: ``python -m ganjax.sample --workdir=DIR --num=N --out=FILE.npy|FILE.png``.

Uses the newest checkpoint (or ``--step``), the raw generator (or ``--ema``),
and noise from ``--seed``. ``--trial=ID`` samples one trial of a sweep
(``--workdir`` = the sweep folder or its ``groups/<group>`` folder). ``.npy`` gets the samples as float32
``[N, *example_shape]`` (images in [-1, 1]); ``.png`` gets an image grid, or a
scatter plot / histogram for toy data.

Class-conditional runs: ``--labels=3,3,7`` (one sample per label) or
``--per_class=K`` (K of every class) pick the classes, and a ``.png`` then
has one row per class (``.npy`` gets the samples in the order of the labels;
without either flag, ``--num`` samples of balanced classes).
``--truncation=t`` draws z from the normal truncated to ``[−t, t]`` for
generators that support it (:mod:`ganjax.sampling`).
"""

from __future__ import annotations

import io
import os
import sys

from absl import app, flags

from ganjax import cli, storage
from ganjax.errors import ConfigError

flags.DEFINE_string("workdir", None, "A training workdir.")
flags.DEFINE_integer("num", 64, "Number of samples.")
flags.DEFINE_string("out", None, "Output file: .npy or .png.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).")
flags.DEFINE_bool("ema", False, "Sample the EMA generator instead of the raw one.")
flags.DEFINE_integer("seed", 0, "Seed of the sampling noise.")
flags.DEFINE_string("trial", None, "A trial id of a sweep: --workdir is then the sweep folder or its "
                    "groups/<group> folder (vmapped trials are sliced out of the group's checkpoint).")
flags.DEFINE_string("labels", None, "Class-conditional runs: comma list of class labels, one sample each "
                    "(e.g. 3,3,7); the .png has a row per class.")
flags.DEFINE_integer("per_class", None, "Class-conditional runs: this many samples of every class, a row per class.")
flags.DEFINE_float("truncation", None, "Truncation trick: z ~ N(0, I) truncated to [-t, t] (generators with "
                   "supports_truncation only).")
flags.mark_flags_as_required(["workdir", "out"])

FORMATS = (".npy", ".png")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS

    def body():
        ext = os.path.splitext(f.out)[1].lower()
        if ext not in FORMATS:
            raise ConfigError(f"--out={f.out!r} has extension {ext!r}; valid: {', '.join(FORMATS)}")
        if f.num <= 0:
            raise ConfigError(f"--num must be > 0, got {f.num}")
        import jax
        import numpy as np

        from ganjax import plots, sampling
        from ganjax.sweep.inference import find_trial, load_trial
        from ganjax.train import generate

        config, gan, state, step = load_trial(find_trial(f.workdir, f.trial), f.step)
        labels = sampling.requested_labels(gan, f.labels, f.per_class)
        num = f.num if labels is None else len(labels)
        z = sampling.sample_noise(gan, jax.random.key(f.seed), num, f.truncation, config.model.generator)
        samples = np.asarray(jax.jit(lambda s, z, y: generate(gan, s, z, ema=f.ema, labels=y))(state, z, labels))
        nrow = None
        if labels is not None and samples.ndim == 4 and ext == ".png":
            samples, nrow = sampling.class_rows(samples, labels)
        storage.makedirs(storage.dirname(storage.absolute(f.out)))
        if ext == ".npy":
            buffer = io.BytesIO()
            np.save(buffer, samples.astype(np.float32))
            storage.write_bytes_atomic(f.out, buffer.getvalue())
        else:
            toy = gan.toy
            plots.save_samples(f.out, samples, modes=toy.modes if toy else None,
                               target=(toy.mean, toy.std) if toy and toy.mean is not None else None,
                               title=plots.sample_title(config, step, f.ema, f.trial), nrow=nrow)
        print(f"wrote {num} samples from step {step}{' (EMA)' if f.ema else ''}"
              f"{f' of trial {f.trial}' if f.trial else ''} to {f.out}")

    return cli.run_cli(body)


def cli_main() -> None:
    """The console script ``ganjax-sample``: the same as ``python -m ganjax.sample``."""
    cli.run(main)


if __name__ == "__main__":
    cli_main()
