"""The trainer's input pipeline: ``config.data.prefetch`` and ``config.data.on_device``.

Every compiled call of ``k`` train steps takes one batch: ``k * n_disc``
consecutive batches of the run's :class:`~ganjax.data.batches.BatchStream`,
stacked ``[n_disc, B, ...]`` (``k = 1``) or ``[k, n_disc, B, ...]``
(:func:`~ganjax.data.batches.call_batches`). :func:`batch_source` builds
what serves them:

* ``data.prefetch = D > 0`` (default :data:`DEFAULT_PREFETCH`): a
  :class:`~ganjax.data.prefetch.Prefetcher` thread gathers, stacks and
  ``device_put``\\ s (``Runner.put_batch``, the step's sharding) the batches of
  the next calls, up to ``D`` ahead, while the step runs.
* ``data.prefetch = 0``: each call's host batch is built on the training
  thread when the call starts, and the step places it.
* ``data.on_device = True``: the uint8 images (and labels) are placed on the
  devices once, replicated (``Runner.put_data``); per call only the int
  indices of the same batches travel, and the batch is gathered on the
  devices with the step's sharding. Refused for a toy dataset, and for an
  array larger than :data:`ON_DEVICE_MAX_FRACTION` of a device's memory
  (where the backend reports it: GPU/TPU; XLA:CPU does not).

All three give bitwise the same batches in the same order (indexing copies
the bytes; uint8 → float happens inside the step), and the checkpoint's data
position counts the batches the steps consumed.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import jax
import numpy as np

from ganjax.data import TOY_DATASETS, Dataset
from ganjax.data.batches import BatchStream, call_batches
from ganjax.data.prefetch import Prefetcher, SyncBatches
from ganjax.errors import ConfigError

DEFAULT_PREFETCH = 2  # calls prepared ahead: double buffering
ON_DEVICE_MAX_FRACTION = 0.5  # of a device's memory (bytes_limit) that data.on_device may fill


def pipeline_options(data: Mapping[str, Any]) -> tuple[int, bool]:
    """``(prefetch, on_device)`` of ``config.data`` (defaults where absent, e.g. configs saved before them)."""
    return data.get("prefetch", DEFAULT_PREFETCH), data.get("on_device", False)


def check_pipeline_options(data: Mapping[str, Any], dataset: str) -> None:
    """Refuses (``ConfigError`` naming the value) a bad ``data.prefetch`` / ``data.on_device``, and
    ``data.on_device`` for the toy dataset ``dataset``."""
    prefetch, on_device = pipeline_options(data)
    if not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 0:
        raise ConfigError(f"data.prefetch must be an integer >= 0 (calls prepared ahead; 0 = off), got {prefetch!r}")
    if not isinstance(on_device, bool):
        raise ConfigError(f"data.on_device must be True or False, got {on_device!r}")
    if on_device and dataset in TOY_DATASETS:
        raise ConfigError(f"data.on_device=True keeps an image dataset on the devices, but dataset {dataset!r} is a "
                          "toy distribution sampled inside the step (nothing to keep); drop data.on_device")


def check_data_fits(data: Mapping[str, Any], dataset: Dataset, device: jax.Device) -> None:
    """With ``data.on_device``: refuses (``ConfigError``) a dataset whose images and labels take more than
    :data:`ON_DEVICE_MAX_FRACTION` of ``device``'s memory; a device that reports no memory limit (XLA:CPU)
    takes any size."""
    if not pipeline_options(data)[1] or dataset.images is None:
        return
    nbytes = dataset.images.nbytes + (0 if dataset.labels is None else dataset.labels.nbytes)
    limit = (device.memory_stats() or {}).get("bytes_limit")
    if limit and nbytes > ON_DEVICE_MAX_FRACTION * limit:
        raise ConfigError(f"data.on_device=True: the dataset takes {nbytes / 2**30:.2f} GiB, more than "
                          f"{ON_DEVICE_MAX_FRACTION:.0%} of the {limit / 2**30:.2f} GiB of {device}; "
                          "set --config.data.on_device=False (batches are then gathered on the host)")


def device_gather(put_data: Callable[[Any], Any], data: Any) -> Callable[[jax.Array], Any]:
    """``idx → data[idx]`` (each leaf of ``data`` alike) computed on the devices: ``data`` (host arrays
    ``[N, ...]``) is placed once with ``put_data``; ``idx`` is a placed int array ``[..., b]`` and the result
    ``[..., b, ...]`` has ``idx``'s sharding."""
    placed = put_data(data)
    compiled: dict[Any, Callable] = {}

    def gather(idx: jax.Array) -> Any:
        if idx.sharding not in compiled:
            out = jax.tree.map(lambda _: idx.sharding, data)
            compiled[idx.sharding] = jax.jit(lambda d, i: jax.tree.map(lambda a: a[i], d), out_shardings=out)
        return compiled[idx.sharding](placed, idx)

    return gather


def batch_source(data: Mapping[str, Any], runner, stream: BatchStream | None, n_disc: int,
                 plan: Iterable[int]) -> SyncBatches | Prefetcher:
    """What serves the trainer's calls: ``next(k)`` → the call's batch (None for toy data), ``position`` →
    the batches consumed, ``close()``.

    Args:
      data: ``config.data`` (``prefetch``, ``on_device``; see the module docstring).
      runner: the :class:`ganjax.parallel.Runner` whose steps take the batches.
      stream: the run's batches (None: toy data, sampled in the step).
      n_disc: real batches per train step.
      plan: the call lengths the trainer will ask for, in order (:func:`ganjax.calls.call_plan`).
    """
    if stream is None:
        return SyncBatches(lambda k: None, lambda: 0)
    depth, on_device = pipeline_options(data)
    if on_device:
        arrays = stream.images if stream.labels is None else (stream.images, stream.labels)
        gather = device_gather(runner.put_data, arrays)
        indices = lambda: stream.next_indices().astype(np.int32)  # noqa: E731
        produce = lambda k: gather(runner.put_batch(call_batches(indices, n_disc, k), k))  # noqa: E731
    elif depth:
        produce = lambda k: runner.put_batch(call_batches(stream.next, n_disc, k), k)  # noqa: E731
    else:
        produce = lambda k: call_batches(stream.next, n_disc, k)  # noqa: E731
    position = lambda: stream.position  # noqa: E731
    return Prefetcher(produce, position, plan, depth) if depth else SyncBatches(produce, position)
