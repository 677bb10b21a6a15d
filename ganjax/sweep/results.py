"""``results.jsonl``: one row per trial, and the scores that go into it.

A row (written once per finished trial, by either execution mode)::

    {"trial": "t0003-9efe7583", "group": "g-c04483b3", "mode": "vmap" | "process",
     "params": {"loss": "minimax", "optimizer_d.learning_rate": 0.001, ..., "seed": 1},
     "status": "ok" | "diverged" | "failed", "error": null | "one line",
     "steps": 2000, "wall_seconds": 12.3,
     "final": {"d_loss": ..., "g_loss": ..., "modes": 7, ...},
     "best": {"modes": 8, ...}}

``final`` holds the last logged losses and the scores of the last evaluation
(of the EMA generator when the run scores it, else the raw one); ``best``
holds, per score, the best value over all evaluations, in the direction of
:data:`HIGHER_IS_BETTER`. A trial run again (a resumed sweep) appends a new
row; readers keep the last row per trial.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping

from ganjax import storage
from ganjax.writers import append_jsonl, read_jsonl

RESULTS = "results.jsonl"
UNIT_RESULTS = "results"  # multi-worker sweeps: results/<group or trial>.jsonl, one file per claimed unit
STATUSES = ("ok", "diverged", "failed")
# Scores where larger is better; every other score (fid, kid, ks, reverse_kl, ...) is lower-is-better.
HIGHER_IS_BETTER = frozenset({"modes", "high_quality", "is", "precision", "recall", "density", "coverage"})
# Row fields that describe how a score was computed, not a score.
_NOT_SCORES = frozenset({"step", "kind", "generator", "num_samples", "split", "features", "weights_sha256",
                         "resize", "num_modes", "is_std", "kid_std", "kid_stderr", "gen_mean", "gen_std"})
_LOSSES = ("d_loss", "g_loss", "penalty", "d_real", "d_fake")


def better(metric: str, a: float, b: float) -> bool:
    """Whether score ``a`` is better than ``b`` for ``metric`` (NaN is never better)."""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return False
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return a > b if metric in HIGHER_IS_BETTER else a < b


def scores_of(eval_row: Mapping[str, Any]) -> dict[str, float]:
    """The score fields of an evaluation row (protocol fields dropped)."""
    return {k: v for k, v in eval_row.items() if k not in _NOT_SCORES and isinstance(v, (int, float))}


def final_and_best(rows: Iterable[Mapping[str, Any]], ema: bool = True) -> tuple[dict, dict]:
    """``(final, best)`` from a run's ``metrics.jsonl`` rows (train and eval rows mixed).

    Args:
      rows: the run's rows in order; train rows have ``d_loss``; eval rows
        have ``kind == "eval"`` and ``generator``.
      ema: use the EMA generator's evaluations when there are any.
    """
    rows = list(rows)
    evals = [r for r in rows if r.get("kind") == "eval"]
    which = "ema" if ema and any(r.get("generator") == "ema" for r in evals) else "raw"
    evals = [r for r in evals if r.get("generator") == which]
    train = [r for r in rows if r.get("kind", "train") != "eval" and "d_loss" in r]
    final: dict[str, Any] = {k: train[-1][k] for k in _LOSSES if train and k in train[-1]}
    best: dict[str, Any] = {}
    if evals:
        final.update(scores_of(evals[-1]))
        final["eval_step"] = evals[-1]["step"]
        for r in evals:
            for k, v in scores_of(r).items():
                if k not in best or better(k, v, best[k]):
                    best[k] = v
    return final, best


def make_row(trial, mode: str, status: str, steps: int, wall_seconds: float, final: Mapping[str, Any],
             best: Mapping[str, Any], error: str | None = None) -> dict[str, Any]:
    """A ``results.jsonl`` row (see the module docstring)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {"trial": trial.id, "group": trial.group, "mode": mode, "params": dict(trial.params), "status": status,
            "error": error, "steps": int(steps), "wall_seconds": round(float(wall_seconds), 3),
            "final": dict(final), "best": dict(best)}


def append_result(sweep_dir: str, row: Mapping[str, Any]) -> None:
    """Appends ``row`` to ``<sweep_dir>/results.jsonl`` (one line, flushed and fsynced)."""
    append_jsonl(storage.join(sweep_dir, RESULTS), dict(row))


def write_unit_results(sweep_dir: str, unit: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """``<sweep_dir>/results/<unit>.jsonl``: the rows of one group or trial, written at once by the worker
    that claimed it (one writer per file, so object stores need no append)."""
    text = "".join(json.dumps(dict(r)) + "\n" for r in rows)
    storage.write_text_atomic(storage.join(sweep_dir, UNIT_RESULTS, f"{unit}.jsonl"), text)


def read_results(sweep_dir: str) -> dict[str, dict[str, Any]]:
    """``{trial id: its last row}`` of ``<sweep_dir>/results.jsonl`` and then of the workers'
    ``results/<unit>.jsonl`` files (empty if none yet)."""
    folder = storage.join(sweep_dir, UNIT_RESULTS)
    paths = [storage.join(sweep_dir, RESULTS)] + [storage.join(folder, n) for n in storage.listdir(folder)
                                                   if n.endswith(".jsonl")]
    return {r["trial"]: r for path in paths for r in read_jsonl(path) if "trial" in r}
