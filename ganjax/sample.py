r"""Sample a trained generator: ``python -m ganjax.sample --workdir=DIR --num=N --out=FILE.npy|FILE.png``.

Uses the newest checkpoint (or ``--step``), the raw generator (or ``--ema``),
and noise from ``--seed``. ``--trial=ID`` samples one trial of a sweep
(``--workdir`` = the sweep folder or its ``groups/<group>`` folder). ``.npy`` gets the samples as float32
``[N, *example_shape]`` (images in [-1, 1]); ``.png`` gets an image grid, or a
scatter plot / histogram for toy data.
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

        from ganjax import plots
        from ganjax.sweep.inference import find_trial, load_trial
        from ganjax.train import generate

        config, gan, state, step = load_trial(find_trial(f.workdir, f.trial), f.step)
        z = gan.sample_noise(jax.random.key(f.seed), f.num)
        samples = np.asarray(jax.jit(lambda s, z: generate(gan, s, z, ema=f.ema))(state, z))
        storage.makedirs(storage.dirname(storage.absolute(f.out)))
        if ext == ".npy":
            buffer = io.BytesIO()
            np.save(buffer, samples.astype(np.float32))
            storage.write_bytes_atomic(f.out, buffer.getvalue())
        else:
            toy = gan.toy
            plots.save_samples(f.out, samples, modes=toy.modes if toy else None,
                               target=(toy.mean, toy.std) if toy and toy.mean is not None else None,
                               title=plots.sample_title(config, step, f.ema, f.trial))
        print(f"wrote {f.num} samples from step {step}{' (EMA)' if f.ema else ''}"
              f"{f' of trial {f.trial}' if f.trial else ''} to {f.out}")

    return cli.run_cli(body)


def cli_main() -> None:
    """The console script ``ganjax-sample``: the same as ``python -m ganjax.sample``."""
    cli.run(main)


if __name__ == "__main__":
    cli_main()
