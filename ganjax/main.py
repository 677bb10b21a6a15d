r"""Train a GAN: ``python -m ganjax.main --config=configs/NAME.py[:VARIANT] --workdir=DIR``.

Override any config key with ``--config.KEY=VALUE`` (unknown keys are an
error). Rerunning the same command resumes from the newest checkpoint in DIR.
Outputs in DIR: config.json, metrics.jsonl, TensorBoard events,
checkpoints/, samples/step_<N>.png and loss_curve.png (plus pretrain/ when
pretrain.autoencoder_steps > 0: seed 004's autoencoder phase, see ganjax.pretrain).

Multi-host: run the same command on every host with
``--config.distributed=auto`` (or ``GANJAX_DISTRIBUTED=1``) and
``--config.parallel=shard_map``; process 0 writes the outputs.
"""

from __future__ import annotations

import sys

from absl import app, flags
from ml_collections import config_flags

from ganjax import cli

config_flags.DEFINE_config_file("config", None, "Training config file, e.g. configs/gaussian_1d.py:quick.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output folder (created; resumed if it holds checkpoints).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")

    def body():
        from ganjax import distributed
        from ganjax.errors import ConfigError
        from ganjax.trainer import train_and_evaluate

        config = flags.FLAGS.config
        try:
            config.get("seed")  # a config file that failed to load raises here
        except OSError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise ConfigError(f"cannot load --config={flags.FLAGS['config'].config_filename}: {reason}") from None
        # jax.distributed (distributed=auto or $GANJAX_DISTRIBUTED=1) must start before any other JAX call.
        distributed.initialize(config.get("distributed", "none"))
        from ganjax.config import import_user_modules

        import_user_modules(config)  # the config's own losses, models, ...: before validation, recorded resolved
        train_and_evaluate(config, flags.FLAGS.workdir)

    return cli.run_cli(body)


if __name__ == "__main__":
    cli.run(main)
