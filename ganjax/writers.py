"""Run outputs: ``metrics.jsonl`` and TensorBoard events.

Each ``metrics.jsonl`` row is written with a single ``write`` of a complete
line on a file opened in append mode, so a kill never leaves half a row behind
a complete one; :func:`read_jsonl` also skips (and reports) a damaged last line.

Object stores (``gs://``) have no append: there a JSONL file is a series of
chunk objects ``metrics.jsonl``, ``metrics.00001.jsonl``, … of at most
:data:`CHUNK_ROWS` rows, and appending rewrites the last chunk as one object
upload (atomic: a kill leaves the old or the new chunk). :func:`read_jsonl`
merges the chunks in order, on local disk too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from typing import Any, Iterable

from ganjax import storage

log = logging.getLogger("ganjax")


def _plain(value: Any) -> Any:
    """Numbers as Python floats/ints (NaN/Inf as strings, which JSON lacks), also inside dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    try:
        import numpy as np

        if isinstance(value, np.generic) or (hasattr(value, "shape") and getattr(value, "shape", None) == ()):
            value = value.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


CHUNK_ROWS = 500  # rows per chunk object of a JSONL file on an object store


def write_text_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` (a local path or URL) so that a kill leaves the old or the new file."""
    storage.write_text_atomic(path, text)


def _line(row: dict[str, Any]) -> str:
    return json.dumps({k: _plain(v) for k, v in row.items()}) + "\n"


def chunk_paths(path: str) -> list[str]:
    """The files of JSONL ``path`` in order: ``path`` itself, then its chunks ``<stem>.<NNNNN><ext>``."""
    folder = storage.dirname(path)
    stem, ext = os.path.splitext(path[len(folder):].lstrip("/"))
    pattern = re.compile(re.escape(stem) + r"\.(\d{5})" + re.escape(ext) + "$")
    numbered = sorted((int(m.group(1)), n) for n in storage.listdir(folder) if (m := pattern.match(n)))
    return [path] + [storage.join(folder, n) for _, n in numbered]


def _chunk_name(path: str, index: int) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}.{index:05d}{ext}"


def append_jsonl(path: str, row: dict[str, Any]) -> None:
    """Appends one JSON object as one line, atomically with respect to kills.

    Local disk: one ``write`` in append mode. Object store: the last chunk is
    rewritten with the row added (a new chunk after :data:`CHUNK_ROWS` rows).
    """
    line = _line(row)
    if storage.is_remote(path):
        last = chunk_paths(path)[-1]
        text = storage.read_text(last) if storage.exists(last) else ""
        if text.count("\n") >= CHUNK_ROWS:
            last, text = _chunk_name(path, len(chunk_paths(path))), ""
        storage.write_text_atomic(last, text + line)
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _parse_lines(text: str, path: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping damaged line %d", path, number)
    return rows


def _read_one(path: str) -> list[dict[str, Any]]:
    try:
        return _parse_lines(storage.read_text(path), path)
    except FileNotFoundError:
        return []


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Reads a JSONL file (and its chunks, in order), skipping (and logging) lines that do not parse."""
    return [row for chunk in chunk_paths(path) for row in _read_one(chunk)]


def drop_rows_after(path: str, step: int) -> None:
    """Rewrites the JSONL file ``path`` (each of its chunks) without the rows logged after ``step``.

    Each chunk is replaced atomically on its own, so a kill midway leaves every
    chunk whole; an emptied numbered chunk is deleted.
    """
    for index, chunk in enumerate(chunk_paths(path)):
        rows = _read_one(chunk)
        kept = [r for r in rows if r.get("step", 0) <= step]
        if len(kept) == len(rows):
            continue
        if kept or index == 0:
            storage.write_text_atomic(chunk, "".join(json.dumps(r) + "\n" for r in kept))
        else:
            storage.remove(chunk)


def summary_writer_class():
    """tensorboardX's ``SummaryWriter``, imported without PyTorch where PyTorch is not loaded yet.

    tensorboardX imports torch (2 s of every process's start-up) only to accept torch tensors, which ganjax
    never passes; with ``sys.modules['torch'] = None`` during the import its optional ``import torch``
    fails fast, and torch stays importable afterwards.
    """
    if "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class MetricWriter:
    """Writes scalar rows to ``metrics.jsonl`` and TensorBoard (if available); ``enabled=False`` writes nothing
    (the non-zero processes of a multi-process job)."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = storage.join(workdir, "metrics.jsonl")
        self.enabled = enabled
        self._tb = None
        if enabled:
            try:
                self._tb = summary_writer_class()(logdir=workdir, flush_secs=30)
            except ImportError:  # pragma: no cover - tensorboardX is in requirements
                log.warning("tensorboardX is not installed: no TensorBoard events")

    def drop_after(self, step: int) -> None:
        """Removes rows logged after ``step`` (a resumed run logs them again)."""
        if self.enabled:
            drop_rows_after(self.path, step)

    def write(self, step: int, scalars: dict[str, Any]) -> None:
        if not self.enabled:
            return
        append_jsonl(self.path, {"step": int(step), **scalars})
        if self._tb is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, int(step))

    def write_eval(self, step: int, row: dict[str, Any]) -> None:
        """An evaluation row (scores + protocol) to ``metrics.jsonl``; scores to TensorBoard as ``eval/<generator>/<name>``."""
        if not self.enabled:
            return
        append_jsonl(self.path, {"step": int(step), "kind": "eval", **row})
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self._tb.add_scalar(f"eval/{row.get('generator', 'raw')}/{k}", v, int(step))

    def write_image(self, step: int, tag: str, image_hwc) -> None:
        if self.enabled and self._tb is not None:
            self._tb.add_image(tag, image_hwc, int(step), dataformats="HWC")

    def abandon(self) -> None:
        """Writes nothing more: no rows, and events not yet flushed stay unwritten (this process lost the
        workdir to another trainer, see :class:`ganjax.workdir.WorkdirLost`)."""
        self.enabled, self._tb = False, None

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def rows_with(rows: Iterable[dict], key: str) -> list[dict]:
    """The rows that carry ``key``."""
    return [r for r in rows if key in r]
