r"""Sweep configs: a base training config, axes, seeds → a list of trials.

A sweep config file (``configs/sweeps/NAME.py``) defines ``get_config(arg)``
returning :func:`sweep_config`'s ConfigDict::

    from ganjax.sweep.spec import axis, sweep_config

    def get_config(arg=None):
        return sweep_config(
            base="configs/ring_2d.py:quick",
            axes=[axis("loss", grid=("non_saturating", "hinge")),
                  axis(("optimizer_g.learning_rate", "optimizer_d.learning_rate"), log_uniform=(1e-5, 1e-2)),
                  axis("optimizer_d.clip_value", grid=(0.01,), when={"loss": "wasserstein"})],
            num_random=4, seeds=3, metric="modes")

Axes, applied in order:

* ``grid=(v1, v2, ...)``: one branch per value (cartesian product);
* ``uniform=(low, high)``, ``log_uniform=(low, high)`` (low > 0) or
  ``choice=(v1, v2, ...)``: random axes, drawn ``num_random`` times per grid
  point from ``sweep_seed`` (so a sweep config always gives the same trials);
* ``keys``: one dotted config key, or several set to the same value (e.g. the
  G and D learning rates together);
* ``when={"key": value or (values...)}``: the axis applies only to trials whose
  values (set by earlier axes, else the base config) match — conditional axes
  such as the clip value of ``wasserstein`` or λ of a penalty.

Then every point is repeated for each seed (``seeds``: a count or a tuple),
``seed`` being one more config key of the trial. A trial is its ``params``:
``{dotted key: value}``; its id ``t<index>-<hash>`` names its workdir, and the
hash makes a finished trial recognisable when the sweep is run again.
Trials whose params differ only in :data:`VMAP_KEYS` (learning rates, betas,
eps, clip values, penalty weight, seed) share a compiled program: they form a
*group* and can be trained stacked with ``vmap`` (:mod:`ganjax.sweep.vmapped`).
In ``vmap`` mode ``data_parallel`` (devices per trial) also splits each
trial's batch over a ``data`` device axis (:func:`check_vmap_layout`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

import ml_collections
import numpy as np

from ganjax import config as config_lib
from ganjax import optim
from ganjax.errors import ConfigError

VMAP_KEYS = frozenset({"seed", "penalty_weight"} | {f"optimizer_{w}.{h}" for w in "gd" for h in optim.HYPERPARAMS})
AXIS_KINDS = ("grid", "uniform", "log_uniform", "choice")
MODES = ("vmap", "process")


def axis(keys: str | Sequence[str], *, grid: Sequence[Any] | None = None, uniform: Sequence[float] | None = None,
         log_uniform: Sequence[float] | None = None, choice: Sequence[Any] | None = None,
         when: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
    """One axis of a sweep (exactly one of ``grid``, ``uniform``, ``log_uniform``, ``choice``)."""
    a = ml_collections.ConfigDict()
    a.targets = (keys,) if isinstance(keys, str) else tuple(keys)
    given = {k: v for k, v in zip(AXIS_KINDS, (grid, uniform, log_uniform, choice)) if v is not None}
    if len(given) != 1:
        raise ConfigError(f"axis {a.targets}: give exactly one of {', '.join(AXIS_KINDS)}, got "
                          f"{', '.join(given) or 'none'}")
    (a.kind, values), = given.items()
    a.domain = tuple(values)
    a.when = tuple((k, tuple(v) if isinstance(v, (list, tuple)) else (v,)) for k, v in (when or {}).items())
    return a


def sweep_config(base: str, axes: Sequence[ml_collections.ConfigDict], seeds: int | Sequence[int] = 1,
                 metric: str = "", num_random: int = 0, sweep_seed: int = 0, mode: str = "vmap",
                 workers: int = 2, fixed: Mapping[str, Any] | None = None, data_parallel: int = 1
                 ) -> ml_collections.ConfigDict:
    """The ConfigDict a sweep config file returns.

    Args:
      base: the training config, ``path[:arg]`` as ``--config`` takes it.
      axes: :func:`axis` entries, applied in order.
      seeds: a count (seeds 0..n-1) or the seeds themselves.
      metric: the score the summary ranks trials by (e.g. ``fid``, ``modes``,
        ``ks``); ``""`` = the first evaluation metric of the data kind.
      num_random: draws of the random axes per grid point.
      sweep_seed: seed of those draws.
      mode: ``vmap`` (groups stacked in one program) or ``process`` (one
        ``ganjax.main`` process per trial).
      workers: processes at once in ``process`` mode.
      fixed: ``{dotted key: value}`` applied to every trial.
      data_parallel: ``vmap`` mode: devices per trial. Each trial's global
        batch is split over this many devices (the ``data`` axis of the
        group's ``(trials, data)`` mesh); it must divide the device count and
        every trial's ``batch_size``. 1 = no data axis.
    """
    s = ml_collections.ConfigDict()
    s.base = base
    s.axes = tuple(axes)
    s.seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    s.metric = metric
    s.num_random = num_random
    s.sweep_seed = sweep_seed
    s.mode = mode
    s.workers = workers
    s.fixed = tuple((fixed or {}).items())
    s.data_parallel = data_parallel
    return s


@dataclasses.dataclass(frozen=True)
class Trial:
    """One training run of a sweep: ``params`` = ``{dotted key: value}`` over the base config."""

    id: str
    params: Mapping[str, Any]

    @property
    def group(self) -> str:
        """Trials with equal groups differ only in :data:`VMAP_KEYS`."""
        static = {k: v for k, v in self.params.items() if k not in VMAP_KEYS}
        return "g-" + _digest(static)

    def overrides(self) -> list[str]:
        """``--config.KEY=VALUE`` flags that turn the base config into this trial's."""
        return override_flags(self.params)


def override_flags(params: Mapping[str, Any]) -> list[str]:
    """``{dotted key: value}`` → ``--config.KEY=VALUE`` flags, in order."""
    return [f"--config.{k}={format_value(v)}" for k, v in params.items()]


def _digest(params: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=list).encode()).hexdigest()[:8]


def format_value(v: Any) -> str:
    """A value as ml_collections' ``--config.KEY=VALUE`` parses it back.

    Strings inside tuples are quoted (``('a.py',)``): the tuple parser would
    otherwise read ``(a.py,)`` as the one string ``'(a.py,)'``.
    """
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (tuple, list)):
        items = [repr(x) if isinstance(x, str) else format_value(x) for x in v]
        return "(" + ",".join(items) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def split_base(base: str) -> tuple[str, str | None]:
    """``"configs/x.py:quick"`` → ``("configs/x.py", "quick")``."""
    path, _, arg = base.partition(":")
    return path, (arg or None)


def load_base(s: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The base training config with ``fixed`` applied."""
    if not s.base:
        raise ConfigError("the sweep config has no 'base' training config (e.g. base='configs/ring_2d.py')")
    c = config_lib.load_config_file(*split_base(s.base))
    return apply_params(c, dict(s.fixed), what="fixed")


def _get(c: ml_collections.ConfigDict, key: str) -> Any:
    node: Any = c
    for part in key.split("."):
        node = node[part]
    return node


def _check_key(flat_keys: set[str], key: str, where: str) -> None:
    if key not in flat_keys:
        near = sorted(k for k in flat_keys if k.split(".")[-1] == key.split(".")[-1]) or sorted(
            k for k in flat_keys if "." not in k)
        raise ConfigError(f"{where}: unknown config key {key!r}; valid keys include {', '.join(near[:12])}")


def apply_params(c: ml_collections.ConfigDict, params: Mapping[str, Any], what: str = "trial"
                 ) -> ml_collections.ConfigDict:
    """A copy of ``c`` with ``params`` set (ints are accepted for float keys)."""
    c = ml_collections.ConfigDict(c.to_dict())
    flat_keys = set(config_lib.flatten(c.to_dict()))
    for key, value in params.items():
        _check_key(flat_keys, key, what)
        *parents, leaf = key.split(".")
        node = c
        for part in parents:
            node = node[part]
        old = node[leaf]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, tuple) and isinstance(value, list):
            value = tuple(value)
        try:
            node[leaf] = value
        except TypeError as e:
            raise ConfigError(f"{what}: {key}={value!r} does not fit the config's {type(old).__name__} "
                              f"value {old!r} ({e})") from None
    return c


def data_parallel_of(s: ml_collections.ConfigDict) -> int:
    """The sweep's ``data_parallel`` (1 for sweep.json files written before the key existed)."""
    return s.get("data_parallel", 1)


def check_data_parallel(data_parallel: Any, num_devices: int) -> None:
    """``data_parallel`` is a positive integer that divides ``num_devices`` (ConfigError otherwise)."""
    if not isinstance(data_parallel, int) or isinstance(data_parallel, bool) or data_parallel < 1:
        raise ConfigError(f"sweep data_parallel must be a positive integer (devices per trial), got "
                          f"{data_parallel!r}")
    if num_devices % data_parallel:
        valid = [d for d in range(1, num_devices + 1) if num_devices % d == 0]
        raise ConfigError(f"sweep data_parallel={data_parallel} does not divide the {num_devices} "
                          f"device{'s' if num_devices != 1 else ''}; "
                          f"valid choices: {', '.join(map(str, valid))}")


def check_vmap_layout(c: ml_collections.ConfigDict, data_parallel: int) -> None:
    """A trial config fits a vmapped group with ``data_parallel`` devices per trial (ConfigError otherwise).

    A group lays out its devices itself (``(trials, data)`` mesh), so the
    single-run key ``parallel`` must stay ``'none'``; each trial's global
    batch is split evenly over the data axis.
    """
    if c.parallel != "none":
        raise ConfigError(f"parallel={c.parallel!r} is for single runs; a vmapped sweep places trials and data on "
                          f"devices itself: set parallel='none' and the sweep's data_parallel=N to split each "
                          f"trial's batch over N devices (or use mode='process')")
    if c.batch_size % data_parallel:
        raise ConfigError(f"batch_size={c.batch_size} is not divisible by the sweep's data_parallel="
                          f"{data_parallel}; use a multiple of {data_parallel}")


def _validate_axis(a: ml_collections.ConfigDict, i: int, flat_keys: set[str]) -> None:
    where = f"sweep axis {i} ({', '.join(a.targets)})"
    if not a.targets:
        raise ConfigError(f"sweep axis {i} has no config key")
    for key in a.targets:
        _check_key(flat_keys, key, where)
    if a.kind not in AXIS_KINDS:
        raise ConfigError(f"{where}: unknown axis kind {a.kind!r}; valid choices: {', '.join(AXIS_KINDS)}")
    if not a.domain:
        raise ConfigError(f"{where}: the axis is empty (no {a.kind} values)")
    if a.kind in ("uniform", "log_uniform"):
        if len(a.domain) != 2 or not all(isinstance(v, (int, float)) for v in a.domain):
            raise ConfigError(f"{where}: {a.kind} needs (low, high), got {a.domain!r}")
        low, high = a.domain
        if not low < high:
            raise ConfigError(f"{where}: {a.kind} needs low < high, got ({low!r}, {high!r})")
        if a.kind == "log_uniform" and low <= 0:
            raise ConfigError(f"{where}: log_uniform needs positive bounds, got ({low!r}, {high!r})")
    for key, _ in a.when:
        _check_key(flat_keys, key, f"{where} 'when'")


def _applies(a: ml_collections.ConfigDict, point: Mapping[str, Any], base: ml_collections.ConfigDict) -> bool:
    return all((point[k] if k in point else _get(base, k)) in values for k, values in a.when)


def _draw(a: ml_collections.ConfigDict, rng: np.random.Generator) -> Any:
    if a.kind == "choice":
        return a.domain[int(rng.integers(len(a.domain)))]
    low, high = (float(v) for v in a.domain)
    if a.kind == "uniform":
        return float(rng.uniform(low, high))
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def expand(s: ml_collections.ConfigDict) -> list[Trial]:
    """All trials of sweep ``s`` (validated: errors name the bad axis, key or value)."""
    if s.mode not in MODES:
        raise ConfigError(f"unknown sweep mode {s.mode!r}; valid choices: {', '.join(MODES)}")
    if not isinstance(s.workers, int) or s.workers < 1:
        raise ConfigError(f"sweep workers must be a positive integer, got {s.workers!r}")
    if not s.seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in s.seeds):
        raise ConfigError(f"sweep seeds must be a positive count or a non-empty tuple of integers, got {s.seeds!r}")
    if len(set(s.seeds)) != len(s.seeds):
        raise ConfigError(f"sweep seeds repeat: {s.seeds!r}")
    data_parallel = data_parallel_of(s)
    if s.mode == "vmap":
        import jax

        check_data_parallel(data_parallel, len(jax.devices()))
    elif data_parallel != 1:
        raise ConfigError(f"sweep data_parallel={data_parallel!r} applies to mode='vmap' only; a process-mode "
                          f"trial is an ordinary run: use fixed={{'parallel': 'shard_map'}} to split its batch "
                          f"over all devices")
    base = load_base(s)
    flat_keys = set(config_lib.flatten(base.to_dict()))
    for i, a in enumerate(s.axes):
        _validate_axis(a, i, flat_keys)
        if "seed" in a.targets:
            raise ConfigError(f"sweep axis {i}: 'seed' is set by the sweep's seeds, not by an axis")
    random_axes = [a for a in s.axes if a.kind != "grid"]
    if random_axes and s.num_random < 1:
        raise ConfigError(f"the sweep has random axes ({', '.join(k for a in random_axes for k in a.targets)}) "
                          f"but num_random={s.num_random}; set num_random >= 1")
    if not random_axes and s.num_random:
        raise ConfigError(f"num_random={s.num_random} but the sweep has no random axes (uniform, log_uniform, "
                          f"choice)")
    points: list[dict[str, Any]] = [{}]
    for a in s.axes:
        if a.kind != "grid":
            continue
        points = [q for p in points
                  for q in ([{**p, **dict.fromkeys(a.targets, v)} for v in a.domain] if _applies(a, p, base)
                            else [p])]
    if random_axes:
        rng = np.random.default_rng(s.sweep_seed)
        drawn = []
        for p in points:
            for _ in range(s.num_random):
                q = dict(p)
                for a in random_axes:
                    if _applies(a, q, base):
                        q.update(dict.fromkeys(a.targets, _draw(a, rng)))
                drawn.append(q)
        points = drawn
    params = [{**p, "seed": seed} for p in points for seed in s.seeds]
    trials = [Trial(f"t{i:04d}-{_digest(p)}", p) for i, p in enumerate(params)]
    for t in trials:  # every trial must make a valid training config
        c = apply_params(base, t.params)
        try:
            config_lib.validate(c)
            if s.mode == "vmap":
                check_vmap_layout(c, data_parallel)
        except ConfigError as e:
            raise ConfigError(f"sweep trial {t.id} ({_describe(t.params)}): {e}") from None
    return trials


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """``{key(item): [items]}`` in order of first appearance."""
    out: dict[K, list[T]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def groups(trials: Iterable[Trial]) -> dict[str, list[Trial]]:
    """Trials by :attr:`Trial.group`, in first-appearance order."""
    return group_by(trials, lambda t: t.group)


def trial_config(s: ml_collections.ConfigDict, trial: Trial) -> ml_collections.ConfigDict:
    """The full training config of ``trial``."""
    return trial_configs(s, [trial])[0]


def trial_configs(s: ml_collections.ConfigDict, trials: Iterable[Trial]) -> list[ml_collections.ConfigDict]:
    """The full training configs of ``trials`` (the base config file is loaded once)."""
    base = load_base(s)
    return [apply_params(base, t.params) for t in trials]


def resolve_base(base: str, sweep_file: str) -> str:
    """``base`` with its path made to work from any working directory.

    A relative ``base`` path is looked up relative to the working directory
    (the old behaviour: kept unchanged when it exists there), then relative to
    the sweep file's folder and each folder above it — so
    ``base="configs/ring_2d.py"`` in ``configs/sweeps/x.py`` finds the
    repository's ``configs/ring_2d.py`` from anywhere. A found path becomes
    absolute; one found nowhere is returned unchanged (loading it names it).
    """
    path, arg = split_base(base)
    if not path or os.path.isabs(path) or os.path.exists(path) or not path.endswith(".py"):
        return base  # absolute, found from the working directory, or a bare name in ganjax's configs/
    folder = os.path.dirname(os.path.abspath(sweep_file))
    while True:
        candidate = os.path.join(folder, path)
        if os.path.exists(candidate):
            return candidate + (f":{arg}" if arg else "")
        parent = os.path.dirname(folder)
        if parent == folder:
            return base
        folder = parent


def with_resolved_base(s: ml_collections.ConfigDict, sweep_file: str) -> ml_collections.ConfigDict:
    """``s`` with ``base`` resolved by :func:`resolve_base` against ``sweep_file`` (in place; returns ``s``)."""
    if s.get("base"):
        s.base = resolve_base(s.base, sweep_file)
    return s


def load_sweep_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """Loads a sweep config file (``configs/sweeps/NAME.py[:arg]``), its ``base`` resolved by :func:`resolve_base`."""
    return with_resolved_base(config_lib.load_config_file(path, arg), path)


__all__ = ["axis", "sweep_config", "Trial", "expand", "groups", "trial_config", "apply_params", "VMAP_KEYS",
           "load_sweep_file", "format_value", "split_base", "check_data_parallel", "check_vmap_layout",
           "data_parallel_of", "resolve_base", "with_resolved_base"]
