"""Resuming with a changed config: which keys define the experiment, and the record of every resume.

A checkpoint was trained under the config in ``config.json``. Changing a key
that defines the experiment (the loss, a learning rate, the architecture, the
data, the seed...) on resume would leave a run whose first steps used other
settings than its ``config.json`` says, so such a change is refused unless the
user passes ``--allow_config_change``. Bookkeeping keys — how long to train,
how often to log, checkpoint, sample and evaluate, how to score, where the
data lives and how the devices are used — may change freely.

Every resume appends one row to ``<workdir>/config_history.jsonl``:
``{"step": N, "time": ISO-8601, "changes": {key: {"old": x, "new": y}},
"experiment_keys": [...], "allowed": bool}`` (``changes`` is ``{}`` when the
config is unchanged), so the file tells which settings produced which steps.
"""

from __future__ import annotations

import datetime
from typing import Any, Mapping

from ganjax import storage
from ganjax.config import base_config, flatten
from ganjax.errors import ConfigError

HISTORY_FILE = "config_history.jsonl"

# Keys that change what is recorded or how the work is laid out, never the
# numbers a step computes. ``eval.*`` rows carry their own protocol.
BOOKKEEPING_KEYS = frozenset({
    "num_steps", "log_every", "checkpoint_every", "checkpoint_every_secs", "sample_every", "eval_every", "keep_checkpoints",
    "data_dir", "parallel", "distributed", "steps_per_call", "data.on_device", "data.prefetch",
    "imports",  # brings names in; the keys that use them (loss, model, ...) are checked themselves
})
BOOKKEEPING_PREFIXES = ("eval.",)


def is_bookkeeping(key: str) -> bool:
    """True for a dotted config key that may change on resume without ``--allow_config_change``."""
    return key in BOOKKEEPING_KEYS or key.startswith(BOOKKEEPING_PREFIXES)


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def changed_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{dotted key: {"old": x, "new": y}}`` for every key whose value differs (missing = None).

    A key that ``old`` lacks and ``new`` sets to its :func:`~ganjax.config.base_config`
    default is no change: ``old`` was saved before the key existed, and such
    configs are read with that ("off") default. The same holds for a
    ``model.g.*`` / ``model.d.*`` option that ``old`` lacks and ``new`` sets to
    the default of the module ``new`` names (a module option added later).
    """
    a, b = flatten(dict(old)), flatten(dict(new))
    defaults = {**flatten(base_config().to_dict()), **_model_option_defaults(new)}
    a = {**{k: v for k, v in defaults.items() if k in b}, **a}  # a key old lacks reads as its off default
    return {k: {"old": _norm(a.get(k)), "new": _norm(b.get(k))}
            for k in sorted(set(a) | set(b)) if _norm(a.get(k)) != _norm(b.get(k))}


def _model_option_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model.g.<option>": default, "model.d.<option>": default}`` of the modules ``config`` names."""
    from ganjax.models import option_defaults

    model = config.get("model") or {}
    out: dict[str, Any] = {}
    for kind, prefix, key in (("generator", "model.g.", "generator"), ("discriminator", "model.d.", "discriminator")):
        name = model.get(key)
        if isinstance(name, str):
            out.update({prefix + option: value for option, value in option_defaults(kind, name).items()})
    return out


def experiment_keys(changes: Mapping[str, Any]) -> list[str]:
    """The keys of ``changes`` that define the experiment (see :func:`is_bookkeeping`)."""
    return [k for k in changes if not is_bookkeeping(k)]


def describe(changes: Mapping[str, Mapping[str, Any]]) -> str:
    """``"loss 'non_saturating' -> 'hinge', num_steps 20 -> 40"``."""
    return ", ".join(f"{k} {v['old']!r} -> {v['new']!r}" for k, v in changes.items())


def check_resume(changes: Mapping[str, Mapping[str, Any]], step: int, workdir: str, allow: bool) -> None:
    """Refuses (``ConfigError``) experiment-defining changes on resume unless ``allow``."""
    keys = experiment_keys(changes)
    if keys and not allow:
        raise ConfigError(
            f"resuming {workdir} at step {step} would change experiment-defining config keys: "
            f"{describe({k: changes[k] for k in keys})}; steps 1-{step} were trained with the old values. "
            f"Use a new --workdir, the saved values, or --allow_config_change to continue with the new ones "
            f"(recorded in {HISTORY_FILE})")


def history_row(step: int, changes: Mapping[str, Mapping[str, Any]], allowed: bool) -> dict[str, Any]:
    """One ``config_history.jsonl`` row for a resume at ``step``."""
    return {"step": step, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "changes": dict(changes), "experiment_keys": experiment_keys(changes), "allowed": allowed}


def history_path(workdir: str) -> str:
    """``<workdir>/config_history.jsonl``."""
    return storage.join(workdir, HISTORY_FILE)
