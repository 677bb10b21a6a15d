"""Multi-process (multi-host) training: ``jax.distributed`` set-up and who does what.

``distributed='auto'`` (config key) or ``GANJAX_DISTRIBUTED=1`` (environment,
which overrides the key) calls ``jax.distributed.initialize()`` before any
other JAX call. JAX finds the cluster itself on Cloud TPU VMs, SLURM and Open
MPI; elsewhere set ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on every process.

Roles once several processes run one job (see :mod:`ganjax.trainer`):

* every process runs every train step (``parallel='shard_map'`` over a mesh of
  all global devices) and takes part in every Orbax checkpoint save/restore;
* process 0 alone holds the workdir lock, writes ``config.json``,
  ``metrics.jsonl``, samples, TensorBoard events and ``loss_curve.png``,
  evaluates, and logs progress (the others log warnings and errors only);
* SIGTERM is left to JAX's preemption notifier, and every process polls
  :func:`reached_preemption` each step, so all of them stop and checkpoint at
  the same step.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from ganjax.errors import ConfigError, unknown_name

log = logging.getLogger("ganjax")

DISTRIBUTED_MODES = ("none", "auto")
ENV_VAR = "GANJAX_DISTRIBUTED"
_ENV_VALUES = {"0": "none", "false": "none", "none": "none", "1": "auto", "true": "auto", "auto": "auto"}
_INT_ENV = ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def requested_mode(config_value: str = "none") -> str:
    """``'none'`` or ``'auto'``: ``$GANJAX_DISTRIBUTED`` if set, else ``config_value``.

    Raises ``ConfigError`` for an unknown value of either.
    """
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env:
        if env not in _ENV_VALUES:
            raise unknown_name(f"${ENV_VAR} value", env, _ENV_VALUES)
        return _ENV_VALUES[env]
    if config_value not in DISTRIBUTED_MODES:
        raise unknown_name("distributed mode", config_value, DISTRIBUTED_MODES)
    return config_value


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"${name} must be an integer, got {value!r}") from None


def initialize(config_value: str = "none") -> bool:
    """Starts ``jax.distributed`` if requested (and not yet started); True if it is up.

    Must run before any JAX computation in the process. Non-zero processes
    then log only warnings and errors.
    """
    if requested_mode(config_value) == "none" or jax.distributed.is_initialized():
        return jax.distributed.is_initialized()
    kwargs = {key: value for key, value in zip(("num_processes", "process_id"), map(_int_env, _INT_ENV))
              if value is not None}
    try:
        jax.distributed.initialize(**kwargs)
    except RuntimeError as e:
        raise ConfigError(f"cannot start jax.distributed: {str(e).splitlines()[0]}; with distributed=auto "
                          f"ganjax must start it before any other JAX computation in the process") from e
    except (ValueError, TypeError) as e:
        raise ConfigError(f"distributed=auto found no cluster ({str(e).splitlines()[0]}); run on a Cloud TPU "
                          f"VM, under SLURM or Open MPI, or set JAX_COORDINATOR_ADDRESS=host:port, "
                          f"JAX_NUM_PROCESSES and JAX_PROCESS_ID on every process") from e
    if jax.process_index() != 0:
        log.setLevel(logging.WARNING)
    log.info("jax.distributed: %d processes, %d devices (%d local)", jax.process_count(), jax.device_count(),
             jax.local_device_count())
    return True


def is_initialized() -> bool:
    return jax.distributed.is_initialized()


def is_main() -> bool:
    """True on the process that writes the run's files (process 0)."""
    return jax.process_index() == 0


def process_sorted(devices: list) -> list:
    """``devices`` grouped by process, so each process's devices are contiguous on a 1-D mesh."""
    return sorted(devices, key=lambda d: (d.process_index, d.id))


def local_rows(devices: list, global_batch: int) -> slice:
    """The rows of a global batch ``[B, ...]`` that this process's devices hold on a 1-D mesh of ``devices``."""
    per_device = global_batch // len(devices)
    mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    if mine != list(range(mine[0], mine[0] + len(mine))):
        raise ConfigError(f"this process's devices are not contiguous on the data mesh: positions {mine}")
    return slice(mine[0] * per_device, (mine[-1] + 1) * per_device)


def replicate(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """Places a host (or single-device) pytree replicated on ``sharding``, also across processes.

    Every process must pass the same values (e.g. a state initialised from the same seed).
    """
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_callback(
        np.shape(x), sharding, lambda index, host=np.asarray(x): host[index]), tree)


def local_copy(tree: Any) -> Any:
    """A replicated pytree as arrays on this process's first device (no collectives needed to use them)."""
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x.addressable_data(0)
        return x
    return jax.tree.map(one, tree)


def agree(ok: bool) -> bool:
    """Process 0's ``ok``, on every process (a collective: all processes must call it)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


def reached_preemption(step: int) -> bool:
    """True on every process at the same ``step`` after any of them got SIGTERM (or a TPU maintenance notice).

    All processes must call it at every step with the same increasing ``step``.
    """
    from jax.experimental import multihost_utils

    return multihost_utils.reached_preemption_sync_point(step)


def barrier(name: str) -> None:
    """Waits until every process reaches the barrier ``name`` (no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
