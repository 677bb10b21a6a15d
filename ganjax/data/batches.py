"""Deterministic, resumable batches over an in-memory array.

``position`` counts the batches consumed since training started. Epoch ``e``
visits the examples in the order ``epoch_permutation(seed, e, N)``; the last
incomplete batch of an epoch is dropped (as seed 002's ``drop_last=True``).
Batch ``position`` is therefore a pure function of ``(seed, position)``, so a
run resumed at a checkpoint's position sees exactly the batches the
uninterrupted run saw.

Labels (class-conditional runs) travel with their images: a stream built
with ``labels`` serves ``(images, labels)`` of the same indices.

With several processes (multi-host) each process reads only ``rows``, its
contiguous share of every global batch; together they see exactly the
batches of a one-process run.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ganjax.errors import ConfigError


# config.data keys that say how batches are served (ganjax.data.pipeline), not what the data is.
PIPELINE_KEYS = ("on_device", "prefetch")


def dataset_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config.data`` without :data:`PIPELINE_KEYS`: the options a dataset builder takes."""
    return {k: v for k, v in (options or {}).items() if k not in PIPELINE_KEYS}


def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The visiting order of epoch ``epoch``: int64 ``[num_examples]``."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batches_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch (the remainder is dropped)."""
    if batch_size <= 0 or batch_size > num_examples:
        raise ConfigError(f"batch_size must be in [1, {num_examples}] for {num_examples} examples, got {batch_size}")
    return num_examples // batch_size


def batch_indices(seed: int, position: int, batch_size: int, num_examples: int) -> np.ndarray:
    """Example indices of batch number ``position``: int64 ``[batch_size]``."""
    epoch, i = divmod(position, batches_per_epoch(num_examples, batch_size))
    return epoch_permutation(seed, epoch, num_examples)[i * batch_size:(i + 1) * batch_size]


def call_batches(next_batch: Callable[[], Any], n_disc: int, k: int) -> Any:
    """One compiled call's host batches: ``n_disc`` of ``next_batch()`` stacked ``[n_disc, ...]`` for ``k = 1``,
    ``k`` of those stacked ``[k, n_disc, ...]`` otherwise (each leaf of a pair alike)."""
    def one_step():
        return stack_batches([next_batch() for _ in range(n_disc)])

    return one_step() if k == 1 else stack_batches([one_step() for _ in range(k)])


def stack_batches(batches: list) -> Any:
    """Host batches (arrays, or ``(images, labels)`` pairs) stacked on a new leading axis, leaf by leaf."""
    if isinstance(batches[0], tuple):
        return tuple(np.stack(leaves) for leaves in zip(*batches))
    return np.stack(batches)


class BatchStream:
    """Serves ``images[batch_indices(seed, position, ...)]`` for position = 0, 1, …

    With ``labels`` (int ``[N]``) every batch is ``(images[idx], labels[idx])``
    for the same indices ``idx``.

    Attributes:
      position: the number of batches served so far (store it in checkpoints).
      rows: the rows of each (global) batch this stream serves; all by default.
    """

    def __init__(self, images: np.ndarray, seed: int, batch_size: int, position: int = 0,
                 rows: slice = slice(None), labels: np.ndarray | None = None):
        self.images = images
        self.labels = labels
        self.rows = rows
        self.seed = seed
        self.batch_size = batch_size
        self.position = position
        self._per_epoch = batches_per_epoch(len(images), batch_size)
        self._epoch = -1
        self._order = np.empty(0, np.int64)

    def next_indices(self) -> np.ndarray:
        """The example indices of the next batch's ``rows``: int64 ``[len(rows)]``; advances ``position``."""
        epoch, i = divmod(self.position, self._per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, epoch_permutation(self.seed, epoch, len(self.images))
        self.position += 1
        return self._order[i * self.batch_size:(i + 1) * self.batch_size][self.rows]

    def next(self) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The next batch's ``rows``: ``[len(rows), *images.shape[1:]]``, a copy (default: all rows);
        with labels, ``(images, labels [len(rows)])``."""
        idx = self.next_indices()
        return self.images[idx] if self.labels is None else (self.images[idx], self.labels[idx])
