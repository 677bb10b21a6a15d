r"""One trial of a sweep, for ``ganjax.sample`` and ``ganjax.evaluate`` (``--trial=ID``).

A vmapped group (:mod:`ganjax.sweep.vmapped`) checkpoints its trials stacked
along a leading axis in ``<sweep>/groups/<group>/``; its ``group.json`` names
the trials in stacking order with their configs. :func:`find_trial` accepts the
sweep folder or the group folder with a trial id; :func:`load_trial` restores
the stacked checkpoint and slices trial ``i`` out of it, giving the same
``(config, gan, state, step)`` as :func:`ganjax.trainer.load_for_inference`
gives for an ordinary workdir. A process-mode trial is an ordinary workdir
(``<sweep>/trials/<id>``) and is loaded as one.

Group folders written before ``group.json`` existed are read too: the trial
order comes from their ``metrics.jsonl`` (rows are written in stacking order),
the configs from the sweep's ``sweep.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import ml_collections

from ganjax import storage
from ganjax.errors import ConfigError, GanjaxError

SWEEP_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class TrialRef:
    """Where a run's checkpoints are: ``workdir``, and the trial's id when they are a vmapped group's."""

    workdir: str
    trial: str | None = None


def _read_json(path: str) -> Any:
    return json.loads(storage.read_text(path))


def _group_file(group_dir: str) -> str:
    from ganjax.sweep.vmapped import GROUP_FILE

    return storage.join(group_dir, GROUP_FILE)


def group_trial_ids(group_dir: str) -> list[str]:
    """The trial ids of a group folder in stacking order."""
    if storage.exists(_group_file(group_dir)):
        return list(_read_json(_group_file(group_dir))["trials"])
    from ganjax.writers import read_jsonl

    ids: list[str] = []
    for row in read_jsonl(storage.join(group_dir, "metrics.jsonl")):
        if "trial" in row and row["trial"] not in ids:
            ids.append(row["trial"])
    return ids


def _group_dirs(sweep_dir: str) -> list[str]:
    root = storage.join(sweep_dir, "groups")
    return [storage.join(root, d) for d in storage.listdir(root)]


def _is_group_dir(path: str) -> bool:
    return storage.exists(_group_file(path)) or os.path.basename(storage.dirname(path.rstrip("/"))) == "groups"


def find_trial(path: str, trial: str | None) -> TrialRef:
    """Where trial ``trial`` of the sweep folder or group folder ``path`` lives (``path`` itself without a trial).

    Raises ``ConfigError`` naming the valid trial ids when ``trial`` is not in ``path``.
    """
    if trial is None:
        return TrialRef(path)
    if not storage.isdir(path):
        raise ConfigError(f"--workdir={path!r} does not exist")
    if _is_group_dir(path):
        ids = group_trial_ids(path)
        if trial not in ids:
            raise ConfigError(f"unknown trial {trial!r} in group {path}; valid choices: {', '.join(ids) or 'none'}")
        return TrialRef(path, trial)
    if storage.exists(storage.join(path, SWEEP_FILE)):
        process_dir = storage.join(path, "trials", trial)
        if storage.exists(storage.join(process_dir, "config.json")):
            return TrialRef(process_dir)
        for group_dir in _group_dirs(path):
            if trial in group_trial_ids(group_dir):
                return TrialRef(group_dir, trial)
        ids = [t["id"] for t in _read_json(storage.join(path, SWEEP_FILE))["trials"]]
        raise ConfigError(f"unknown trial {trial!r} in sweep {path} (or it has not started); "
                          f"valid choices: {', '.join(ids)}")
    raise ConfigError(f"--trial={trial} needs a sweep folder (holding {SWEEP_FILE}) or one of its groups/<group> "
                      f"folders; {path} is neither")


def _group_configs(group_dir: str, ids: list[str]) -> tuple[list[dict], list[int] | None]:
    """The plain configs of the group's trials (stacking order) and the example shape (None if unrecorded)."""
    if storage.exists(_group_file(group_dir)):
        info = _read_json(_group_file(group_dir))
        return info["configs"], info["example_shape"]
    from ganjax import config as config_lib
    from ganjax.sweep import spec

    manifest_path = storage.join(storage.dirname(storage.dirname(group_dir.rstrip("/"))), SWEEP_FILE)
    if not storage.exists(manifest_path):
        raise GanjaxError(f"{group_dir} has no {os.path.basename(_group_file(group_dir))} and {manifest_path} "
                          f"is missing: cannot rebuild its trials' configs")
    manifest = _read_json(manifest_path)
    params = {t["id"]: t["params"] for t in manifest["trials"]}
    sweep = ml_collections.ConfigDict(manifest["sweep"])
    configs = spec.trial_configs(sweep, [spec.Trial(i, params[i]) for i in ids])
    return [config_lib.to_plain(c) for c in configs], None


def _example_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The example shape of ``config``'s data, by loading it (group folders without ``group.json`` only)."""
    from ganjax.data import make_dataset

    return make_dataset(config.dataset, config.data.to_dict(), data_dir=config.data_dir or None).example_shape


def load_trial(ref: TrialRef, step: int | None = None):
    """``(config, gan, state, step)`` of ``ref`` at checkpoint ``step`` (default: newest).

    For a group trial the stacked checkpoint is restored and trial ``ref.trial``
    sliced out of it (single-trial layout, as a single run's state).
    """
    from ganjax.checkpoint import Checkpointer
    from ganjax.sweep.vmapped import abstract_group, unstack
    from ganjax.trainer import checkpoint_step, config_for_inference, gan_for_inference, load_for_inference

    if ref.trial is None:
        return load_for_inference(ref.workdir, step)
    ids = group_trial_ids(ref.workdir)
    plain, example_shape = _group_configs(ref.workdir, ids)
    configs = [config_for_inference(c) for c in plain]
    index = ids.index(ref.trial)
    config = configs[index]
    gan = gan_for_inference(config, example_shape or _example_shape(config))
    ckpt = Checkpointer(ref.workdir, async_save=False)
    try:
        target = checkpoint_step(ckpt, ref.workdir, step)
        abstract = abstract_group(gan, configs)
        restored, _, at = ckpt.restore(abstract, lambda: "group.json does not match the checkpoint", step=target)
    finally:
        ckpt.close()
    return config, gan, unstack(restored["state"], index), at
