r"""Train a GAN: ``python -m ganjax.main --config=configs/NAME.py[:VARIANT] --workdir=DIR``.

Override any config key with ``--config.KEY=VALUE`` (unknown keys are an
error). Rerunning the same command resumes from the newest checkpoint in DIR.
Outputs in DIR: config.json, metrics.jsonl, TensorBoard events,
checkpoints/, samples/step_<N>.png and loss_curve.png (plus pretrain/ when
pretrain.autoencoder_steps > 0: seed 004's autoencoder phase, see ganjax.pretrain).

``--print_config`` prints the resolved config and exits (no workdir needed).
Resuming with changed experiment-defining keys (loss, learning rates, model,
data, ...) needs ``--allow_config_change``; every resume is recorded in
``DIR/config_history.jsonl`` (see ganjax.resume).

Multi-host: run the same command on every host with
``--config.distributed=auto`` (or ``GANJAX_DISTRIBUTED=1``) and
``--config.parallel=shard_map``; process 0 writes the outputs.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from absl import app, flags
from ml_collections import config_flags

from ganjax import cli

config_flags.DEFINE_config_file("config", None, "Training config file, e.g. configs/gaussian_1d.py:quick.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output folder (created; resumed if it holds checkpoints). "
                    "Not needed with --print_config.")
flags.DEFINE_bool("print_config", False, "Print the resolved config (variants and --config.KEY overrides "
                  "applied) as JSON, check it, and exit without training or creating the workdir.")
flags.DEFINE_bool("allow_config_change", False, "Resume even if experiment-defining config keys (loss, "
                  "learning rates, model, data, ...) differ from the workdir's config.json; the change is "
                  "recorded in config_history.jsonl.")
flags.mark_flags_as_required(["config"])


def config_overrides(argv: Sequence[str]) -> list[str]:
    """The ``KEY=VALUE`` of every ``--config.KEY=VALUE`` in ``argv``, in order."""
    return [a[len("--config."):] for a in argv if a.startswith("--config.")]


def split_config_arg(config_arg: str) -> tuple[str, str]:
    """``'configs/x.py:quick,mnist'`` → ``('configs/x.py', 'quick,mnist')`` (``''`` for no variant)."""
    path, _, variants = config_arg.partition(":")
    return path, variants


def startup_line(config_arg: str, overrides: Sequence[str], backend: str, num_devices: int, parallel: str,
                 parallel_devices: int) -> str:
    """The one line that says what a run is: config file, variants, overrides, backend, devices, parallel mode.

    E.g. ``config=configs/ring_2d.py variants=quick overrides=loss=hinge backend=cpu devices=8
    parallel=pmap on 8 devices``.
    """
    path, variants = split_config_arg(config_arg)
    plural = "s" if parallel_devices != 1 else ""
    return (f"config={path} variants={variants or 'none'} overrides={' '.join(overrides) or 'none'} "
            f"backend={backend} devices={num_devices} parallel={parallel} on {parallel_devices} device{plural}")


def parallel_device_count(parallel: str) -> int:
    """Devices a single run's step uses: 1 (``none``), the local ones (``pmap``), all (``shard_map``)."""
    import jax

    return {"none": 1, "pmap": jax.local_device_count()}.get(parallel, jax.device_count())


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS

    def body():
        from ganjax import config as config_lib
        from ganjax import distributed
        from ganjax.errors import ConfigError

        config = f.config
        config_arg = f["config"].config_filename
        try:
            config.get("seed")  # a config file that failed to load raises here
        except OSError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise ConfigError(f"cannot load --config={config_arg}: {reason}") from None
        if f.print_config:
            config_lib.validate(config)
            print(config_lib.to_json(config))
            return 0
        if not f.workdir:
            raise ConfigError("--workdir is missing; give --workdir=DIR (or --print_config to only show the config)")
        # jax.distributed (distributed=auto or $GANJAX_DISTRIBUTED=1) must start before any other JAX call.
        distributed.initialize(config.get("distributed", "none"))
        config_lib.validate(config)
        import jax

        from ganjax.trainer import train_and_evaluate

        line = startup_line(config_arg, config_overrides(sys.argv[1:]), jax.default_backend(), jax.device_count(),
                            config.parallel, parallel_device_count(config.parallel))
        # Logged once the run is known to be valid, so a refused run prints only its one error line.
        train_and_evaluate(config, f.workdir, allow_config_change=f.allow_config_change,
                           on_start=lambda: logging.getLogger("ganjax").info("%s", line))

    return cli.run_cli(body)


def cli_main() -> None:
    """The console script ``ganjax-train``: the same as ``python -m ganjax.main``."""
    cli.run(main)


if __name__ == "__main__":
    cli_main()
