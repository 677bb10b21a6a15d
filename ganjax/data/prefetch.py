"""A background thread that prepares the batches of the next compiled calls while the current one runs.

The training loop asks for one batch per compiled call, ``next(k)`` for a
call of ``k`` train steps. :class:`Prefetcher` runs ``produce(k)`` (host
gather, stacking, ``device_put`` with the step's sharding) for the calls of a
fixed plan on a thread, at most ``depth`` calls ahead, in order; the loop
takes them ready. :class:`SyncBatches` is the same interface without a
thread (``data.prefetch = 0``).

``position`` is what a checkpoint stores: the value ``position()`` had right
after the batch of the last call *taken* by the loop was produced — the
batches consumed by steps, never those the thread made ahead — so a run
resumed from it sees the batches the uninterrupted run saw.

``close()`` stops and joins the thread (also when it is blocked on a full
queue); an exception raised by ``produce`` is re-raised by the ``next`` that
would have returned its batch.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Callable, Iterable

_POLL_S = 0.05  # how often a blocked producer or consumer checks whether the other side has gone


@dataclasses.dataclass(frozen=True)
class _Item:
    k: int
    batch: Any
    position: int


@dataclasses.dataclass(frozen=True)
class _Failure:
    error: BaseException


class SyncBatches:
    """``next(k)`` calls ``produce(k)`` on the caller's thread; ``position`` is ``position()``."""

    def __init__(self, produce: Callable[[int], Any], position: Callable[[], int]):
        self._produce = produce
        self._position = position

    def next(self, k: int) -> Any:
        """The batch of the next call of ``k`` steps."""
        return self._produce(k)

    @property
    def position(self) -> int:
        return self._position()

    def close(self) -> None:
        """Nothing to stop."""


class Prefetcher:
    """Produces the batches of the calls ``plan`` (their lengths ``k``, in order) on a thread, ``depth`` ahead.

    Args:
      produce: ``k → batch`` of one call; runs on the thread, calls in plan order.
      position: the data position after the last ``produce`` (read on the thread right after it).
      plan: the call lengths the loop will ask for, in order (it may stop early).
      depth: how many produced batches may wait for the loop (>= 1).
    """

    def __init__(self, produce: Callable[[int], Any], position: Callable[[], int], plan: Iterable[int],
                 depth: int):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self.position = position()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce, position, plan),
                                        name="ganjax-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        """Puts ``item`` unless ``close`` was called first; True if it was put."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce: Callable[[int], Any], position: Callable[[], int], plan: Iterable[int]) -> None:
        try:
            for k in plan:
                if self._stop.is_set() or not self._put(_Item(k, produce(k), position())):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(_Failure(e))

    def next(self, k: int) -> Any:
        """The batch of the next call, which must be of ``k`` steps (the plan's next length)."""
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(f"the prefetch thread has no batch for a call of {k} step(s): "
                                       "the loop asked for more calls than its plan") from None
        if isinstance(item, _Failure):
            raise item.error
        if item.k != k:
            raise RuntimeError(f"the prefetch plan has a call of {item.k} step(s) here, the loop asked for {k}")
        self.position = item.position
        return item.batch

    def close(self) -> None:
        """Stops the thread and waits for it (the batches made ahead are dropped)."""
        self._stop.set()
        self._thread.join()
