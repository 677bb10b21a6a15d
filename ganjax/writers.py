"""Run outputs: ``metrics.jsonl`` and TensorBoard events.

Each ``metrics.jsonl`` row is written with a single ``write`` of a complete
line on a file opened in append mode, so a kill never leaves half a row behind
a complete one; :func:`read_jsonl` also skips (and reports) a damaged last line.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Iterable

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


def write_text_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename: a kill leaves the old or the new file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def append_jsonl(path: str, row: dict[str, Any]) -> None:
    """Appends one JSON object as one line, atomically with respect to kills."""
    line = (json.dumps({k: _plain(v) for k, v in row.items()}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Reads a JSONL file, skipping (and logging) lines that do not parse."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: skipping damaged line %d", path, number)
    return rows


def drop_rows_after(path: str, step: int) -> None:
    """Rewrites the JSONL file ``path`` without its rows logged after ``step`` (atomic replace)."""
    rows = read_jsonl(path)
    kept = [r for r in rows if r.get("step", 0) <= step]
    if len(kept) != len(rows):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(tmp, path)


class MetricWriter:
    """Writes scalar rows to ``metrics.jsonl`` and TensorBoard (if available); ``enabled=False`` writes nothing
    (the non-zero processes of a multi-process job)."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = enabled
        self._tb = None
        if enabled:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(logdir=workdir, flush_secs=30)
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

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def rows_with(rows: Iterable[dict], key: str) -> list[dict]:
    """The rows that carry ``key``."""
    return [r for r in rows if key in r]
