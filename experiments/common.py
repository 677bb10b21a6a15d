"""Shared plumbing of the figure scripts (``gaussian_1d``, ``goodfellow_fig1``, ``mnist_mlp``,
``mixture_modes``, ``mode_collapse_remedies``, ``ae_pretrain``, ``dcgan_interpolation``, ``lucic_losses``).

Every figure script is ``python -m experiments.NAME --out=DIR [--quick]`` and
writes PNG(s) plus a markdown report ``DIR/NAME.md`` whose header records the
command, the date, the machine (CPU cores and model, platform, jax version and
backend), the load averages at the start and the end, and the wall time. This
module holds what they share: argument parsing, that header, markdown tables,
``mean ± std`` cells, reading a workdir's ``metrics.jsonl`` and small
matplotlib helpers (on top of :mod:`ganjax.plots`). ``--out`` may be a
``gs://`` URL: every file goes through :mod:`ganjax.storage`, each written as
one whole object.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import platform
import shlex
import sys
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ganjax import storage
from ganjax.errors import ConfigError
from ganjax.stats import seed_std


@dataclasses.dataclass
class Run:
    """One invocation of a figure script.

    Attributes:
      name: the script's name (``experiments.<name>``; the report is ``<out>/<name>.md``).
      args: the parsed arguments (``args.out``, ``args.quick`` and the script's own).
      argv: the arguments as given (for the recorded command).
      start: ``time.time()`` at the start.
      load_start: the 1, 5 and 15-minute load averages at the start (``os.getloadavg()``; None where the
        platform has none).
    """

    name: str
    args: argparse.Namespace
    argv: list[str]
    start: float
    load_start: tuple[float, float, float] | None = None

    @property
    def out(self) -> str:
        return self.args.out

    def path(self, filename: str) -> str:
        """``<out>/<filename>`` (a URL stays a URL)."""
        return storage.join(self.args.out, filename)

    def wall(self) -> float:
        """Seconds since the start."""
        return time.time() - self.start

    def command(self) -> str:
        return " ".join(["python -m", f"experiments.{self.name}", *map(shlex.quote, self.argv)])


def start_run(name: str, doc: str, argv: Sequence[str] | None,
              add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
              check: Callable[[argparse.Namespace], None] | None = None) -> Run:
    """Parses ``--out`` (required), ``--quick`` and the script's own arguments; creates ``--out``.

    Args:
      name: the module name under ``experiments``.
      doc: the script's docstring (its first paragraph is the ``--help`` text).
      argv: arguments without the program name (``None``: ``sys.argv[1:]``).
      add_arguments: adds the script's own arguments to the parser.
      check: applies ``--quick`` and checks the arguments (raising ``ConfigError``) before
        anything is written.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True,
                        help="output folder (or gs:// URL) for the PNGs and the markdown table")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny budget (seconds) that checks the pipeline, not the science")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if check is not None:
        check(args)
    storage.check_reachable(args.out)
    storage.makedirs(args.out)
    return Run(name, args, argv, time.time(), load_average())


def positive(kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """An argparse ``type`` that accepts only values > 0 of ``kind``."""
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def parse_names(flag: str, text: str, choices: Mapping[str, Any], noun: str = "") -> list[str]:
    """``'gan,pack4'`` → ``['gan', 'pack4']`` (duplicates dropped); an unknown name raises ``ConfigError``
    (``unknown <noun> ...``; ``noun`` defaults to ``flag`` without its plural s)."""
    from ganjax.errors import unknown_name

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{flag} must name at least one of {', '.join(choices)}, got {text!r}")
    for n in names:
        if n not in choices:
            raise unknown_name(noun or flag.rstrip("s"), n, choices)
    return list(dict.fromkeys(names))


def add_fid_arguments(parser: argparse.ArgumentParser) -> None:
    """``--eval_samples``, ``--data_dir`` and ``--cache_dir`` of the scripts scored by domain-classifier FID."""
    parser.add_argument("--eval_samples", type=positive(), default=10_000,
                        help="generated (and real) images per FID")
    parser.add_argument("--data_dir", default="", help="TFDS data dir ('' = $TFDS_DATA_DIR or TFDS's default)")
    parser.add_argument("--cache_dir", default="",
                        help="domain classifier and real-feature cache ('' = $GANJAX_CACHE or ~/.cache/ganjax)")


def classifier_fid_keys(args: argparse.Namespace) -> dict[str, Any]:
    """``{dotted config key: value}`` pointing a config at ``args.data_dir`` and making its evaluations
    domain-classifier FID on ``args.eval_samples`` images (classifier and real features cached in
    ``args.cache_dir``); a sweep's ``fixed`` keys take them as they are."""
    return {"data_dir": args.data_dir, "eval.metrics": "fid", "eval.features": "classifier",
            "eval.num_samples": args.eval_samples, "eval.cache_dir": args.cache_dir}


def evaluate_once_at_end(c) -> None:
    """Makes config ``c`` evaluate only at its last step: no samples, no checkpoints, and a log line every
    ``gcd(num_steps, 100)`` steps (so the last step is logged) (in place)."""
    c.log_every = math.gcd(c.num_steps, 100)
    c.eval_every = c.num_steps
    c.sample_every = 0
    c.checkpoint_every = 0


def score_by_classifier_fid(c, args: argparse.Namespace) -> None:
    """Sets :func:`classifier_fid_keys` on config ``c`` (in place)."""
    c.update_from_flattened_dict(classifier_fid_keys(args))


def cpu_model(cpuinfo: str) -> str | None:
    """The first ``model name`` of a ``/proc/cpuinfo`` text (``'Intel(R) Xeon(R) Processor'``), None if it has none."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name" and value.strip():
            return " ".join(value.split())
    return None


def _this_cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = cpu_model(f.read())
    except OSError:
        model = None
    return model or platform.processor() or "unknown CPU"


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15-minute load averages, None where the platform has none."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def load_text(load: tuple[float, float, float] | None) -> str:
    """``'2.10/1.75/0.90'`` (1/5/15 min), or ``'unavailable'``."""
    return "unavailable" if load is None else "/".join(f"{x:.2f}" for x in load)


def machine() -> str:
    """``'2 CPU cores (Intel(R) Xeon(R) Processor; x86_64, Linux), jax 0.10.2 (cpu backend, 1 device)'``."""
    import jax

    devices = jax.local_devices()
    return (f"{os.cpu_count()} CPU cores ({_this_cpu_model()}; {platform.machine()}, {platform.system()}), "
            f"jax {jax.__version__} ({jax.default_backend()} backend, {len(devices)} "
            f"device{'s' * (len(devices) > 1)})")


def record_lines(run: Run, machine_text: str | None = None) -> list[str]:
    """The report header: command, date, machine, load averages and wall time, as markdown bullet lines.

    The load averages (1/5/15 min) are those at the run's start and now: other work on the machine slows a
    run and its timings, so a report says how busy the machine was.

    ``machine_text`` replaces :func:`machine` (which starts jax's backend) for a process that must leave the
    accelerator to its subprocesses."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"* command: `{run.command()}`",
            f"* date: {date}",
            f"* machine: {machine() if machine_text is None else machine_text}",
            f"* load average (1/5/15 min): {load_text(run.load_start)} at the start, {load_text(load_average())} "
            f"at the end",
            f"* wall time: {run.wall():.0f} s" + (" (`--quick`: a pipeline check, not a result)"
                                                  if run.args.quick else "")]


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; every cell is ``str()``-ed, the header row is ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != len(columns):
            raise ValueError(f"a table row has {len(cells)} cells for {len(columns)} columns: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``'4.012 ± 0.031 (n=3)'``: the mean and the sample std (``ddof=1``, :func:`ganjax.stats.seed_std`,
    as the sweep summary) over the ``n`` values; a single value has no ``±`` and no ``n``."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return "—"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {seed_std(v):.{digits}f} (n={v.size})"


def quick_notes(run: Run) -> str:
    """What a ``--quick`` report can say: that the pipeline ran, and nothing a full run's numbers would show."""
    return (f"* This is a `--quick` run: a pipeline check. It shows that every stage of the script — training, "
            f"checkpoints, evaluation, tables and figures — runs end to end. Its numbers come from far too few "
            f"steps and seeds for any method to work, so they say nothing about convergence, equilibrium, mode "
            f"coverage or which setting is better.\n"
            f"* For results run `python -m experiments.{run.name} --out=DIR` without `--quick`.")


def full_run_reading(run: Run, text: str) -> str:
    """``text``, a reading of the run's numbers ("converged", "the EMA averages the drift out"), for a full
    run; a ``--quick`` run's numbers support no reading, so its report says so instead."""
    if run.args.quick:
        return "* The reading of these numbers is written by full runs only (see *Quick run* above)."
    return text


def write_report(run: Run, title: str, sections: Sequence[tuple[str, str]], images: Sequence[str] = (),
                 machine_text: str | None = None) -> str:
    """Writes ``<out>/<name>.md``: title, the run record, the images and ``(heading, body)`` sections.

    A ``--quick`` report starts its sections with *Quick run* (:func:`quick_notes`); scripts pass their
    readings of the numbers through :func:`full_run_reading`. ``machine_text``: see :func:`record_lines`.
    Returns the report's path.
    """
    parts = [f"# {title}", "\n".join(record_lines(run, machine_text))]
    parts += [f"![{os.path.splitext(img)[0]}]({img})" for img in images]
    if run.args.quick:
        sections = [("Quick run", quick_notes(run)), *sections]
    for heading, body in sections:
        parts.append(f"## {heading}\n\n{body.strip()}" if heading else body.strip())
    path = run.path(f"{run.name}.md")
    storage.write_text_atomic(path, "\n\n".join(parts) + "\n")
    return path


def finish(run: Run, report: str, images: Sequence[str]) -> None:
    """Prints where the files are and the wall time."""
    print(f"experiments.{run.name}: wrote {report}")
    for img in images:
        print(f"  {run.path(img)}")
    print(f"  wall time {run.wall():.1f}s")


def run_main(main: Callable[[list[str]], Any]) -> None:
    """The ``__main__`` of a figure script: ganjax's console logging; a ``GanjaxError`` is one line, exit 2
    (128 + the signal number for a run stopped by SIGTERM/SIGINT after saving, as ``ganjax.main``)."""
    from ganjax.cli import setup_logging
    from ganjax.errors import GanjaxError

    setup_logging(False)
    try:
        main(sys.argv[1:])
    except GanjaxError as e:
        print(f"ganjax: error: {e}", file=sys.stderr)
        signum = getattr(e, "signum", None)
        sys.exit(128 + signum if signum else 2)


# ---------------------------------------------------------------------------
# Workdirs written by ganjax.trainer.train_and_evaluate.


def metric_rows(workdir: str) -> tuple[list[dict], list[dict]]:
    """``(training rows, evaluation rows)`` of ``<workdir>/metrics.jsonl`` (eval rows have ``"kind": "eval"``)."""
    from ganjax.writers import read_jsonl

    rows = read_jsonl(storage.join(workdir, "metrics.jsonl"))
    return [r for r in rows if r.get("kind") != "eval"], [r for r in rows if r.get("kind") == "eval"]


def eval_at(rows: Sequence[dict], step: int, generator: str) -> dict:
    """The evaluation row of ``generator`` (``raw``/``ema``) at ``step``."""
    for r in rows:
        if r["step"] == step and r["generator"] == generator:
            return r
    raise ConfigError(f"no {generator!r} evaluation at step {step}; steps evaluated: "
                      f"{sorted({r['step'] for r in rows})}")


@dataclasses.dataclass
class SeedGroup:
    """Seeds of one config trained as one vmapped program (:func:`train_seeds`).

    Attributes:
      group: the finished :class:`ganjax.sweep.vmapped.GroupRun` (``group.gan``, ``group.states [T, ...]``).
      status: per seed, ``'ok'`` or ``'diverged'``.
      scores: ``{'raw' | 'ema': [evaluation row at the last step, per seed that did not diverge]}``.
      wall: seconds, compilation included.
      curve: ``{'raw' | 'ema': {step: [evaluation row per seed that did not diverge]}}``, every
        evaluated step in order (one entry when the group evaluates only at the end).
    """

    group: Any
    status: list[str]
    scores: dict[str, list[dict]]
    wall: float
    curve: dict[str, dict[int, list[dict]]] = dataclasses.field(default_factory=dict)

    def samples(self, seed_index: int, key: Any, num: int) -> np.ndarray:
        """``num`` examples ``[num, *example_shape]`` of the raw generator of seed ``seed_index``."""
        from ganjax.sweep.vmapped import unstack
        from ganjax.train import generate

        z = self.group.gan.sample_noise(key, num)
        return np.asarray(generate(self.group.gan, unstack(self.group.states, seed_index), z))


# Keys a resumed seed group may change: the budget and the schedule. Training to more steps continues
# from the last checkpoint; any other change trains the group afresh.
EXTENDABLE_KEYS = ("num_steps", "log_every", "eval_every", "checkpoint_every", "checkpoint_every_secs", "sample_every")
GROUP_RECORD = "experiment_group.json"
GROUP_WALL = "group_wall_time.json"  # {"seconds": the group's wall time over all its sittings}


def add_group_wall(group_dir: str, seconds: float) -> float:
    """Adds one sitting's ``seconds`` to the group's recorded wall time and returns the total (a group
    trained before the record existed counts from its first sitting with it)."""
    import json

    from ganjax.writers import write_text_atomic

    path = storage.join(group_dir, GROUP_WALL)
    try:
        before = float(json.loads(storage.read_text(path))["seconds"]) if storage.exists(path) else 0.0
    except (ValueError, KeyError, TypeError):
        before = 0.0
    total = before + seconds
    write_text_atomic(path, json.dumps({"seconds": total}))
    return total


def group_record(configs: Sequence[Any]) -> str:
    """The JSON that identifies a seed group for ``--resume``: every trial's config without :data:`EXTENDABLE_KEYS`."""
    import json

    from ganjax.config import to_plain

    def fixed(c) -> dict:
        d = to_plain(c)
        for key in EXTENDABLE_KEYS:
            d.pop(key, None)
        return d

    return json.dumps([fixed(c) for c in configs], indent=1, sort_keys=True, default=list)


def reusable_group(group_dir: str, configs: Sequence[Any]) -> bool:
    """Whether ``group_dir`` holds a seed group of these configs (up to the budget and schedule).

    The configs are compared as a resumed run compares its saved config
    (:func:`ganjax.resume.changed_values`): a key the record lacks (saved before
    the key existed) that the new config sets to its default is no change.
    """
    import json

    from ganjax.resume import changed_values

    path = storage.join(group_dir, GROUP_RECORD)
    if not storage.exists(path):
        return False
    recorded, record = storage.read_text(path), group_record(configs)
    if recorded == record:
        return True
    try:
        old = json.loads(recorded)
    except ValueError:
        return False
    new = json.loads(record)
    return (isinstance(old, list) and len(old) == len(new)
            and all(isinstance(o, dict) and not changed_values(o, n) for o, n in zip(old, new)))


def train_seeds(group_dir: str, configs: Sequence[Any], name: str, resume: bool = False) -> SeedGroup:
    """Trains ``configs`` (one per seed, differing only in ``seed`` and vmappable hyperparameters) as one
    vmapped group in ``group_dir`` and reads each seed's evaluation rows at the last step. Trials are named
    ``<name>-seed<seed>``.

    Without ``resume`` the folder is deleted first (a figure script's scratch run is trained afresh). With
    ``resume``, a folder that holds the same group (:func:`reusable_group`: equal configs up to the number
    of steps and the schedule) continues from its last checkpoint, also to more steps than before; any
    other folder is replaced. The returned ``wall`` is the group's wall time over all its sittings
    (:func:`add_group_wall`), so a report written on resume shows the training's time."""
    from ganjax.sweep.spec import Trial
    from ganjax.sweep.vmapped import GroupRun
    from ganjax.writers import write_text_atomic

    trials = [Trial(f"{name}-seed{c.seed}", {"seed": c.seed}) for c in configs]
    if resume and reusable_group(group_dir, configs):
        print(f"experiments: {name}: resuming {group_dir}")
    else:
        if resume and storage.exists(group_dir):
            print(f"experiments: {name}: {group_dir} holds another experiment; training afresh")
        storage.rmtree(group_dir)
    storage.makedirs(group_dir)
    write_text_atomic(storage.join(group_dir, GROUP_RECORD), group_record(configs))
    start = time.time()
    group = GroupRun(trials, list(configs), group_dir)
    results = group.run()
    sitting = time.time() - start
    wall = add_group_wall(group_dir, sitting)
    print(f"experiments: {name}, {len(trials)} seeds: {sitting:.0f} s" + (f" ({wall:.0f} s over all sittings)"
                                                                           if wall > sitting + 0.5 else ""))
    _, rows = metric_rows(group_dir)
    step = configs[0].num_steps
    status = [r["status"] for r in results]
    ok = [t.id for t, st in zip(trials, status) if st == "ok"]
    steps = sorted({r["step"] for r in rows})
    curve = {gen: {s: [eval_at([r for r in rows if r.get("trial") == t], s, gen) for t in ok] for s in steps}
             for gen in ("raw", "ema")}
    scores = {gen: curve[gen].get(step, []) if ok else [] for gen in ("raw", "ema")}
    if ok and step not in steps:
        eval_at([], step, "raw")  # raises: the last step was not evaluated
    return SeedGroup(group, status, scores, wall, curve)


# ---------------------------------------------------------------------------
# Plots.


def subplots(nrows: int, ncols: int, size: tuple[float, float] = (4.0, 3.0), **kwargs):
    """``(fig, axes [nrows, ncols])`` with each panel ``size`` inches."""
    from ganjax.plots import pyplot

    fig, axes = pyplot().subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                                  **kwargs)
    return fig, axes


def save(fig, path: str, dpi: int = 90) -> str:
    """Saves ``fig`` (tight layout) as PNG and closes it; returns ``path``."""
    from ganjax.plots import save_figure

    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
    return path


def plot_series(ax, rows: Sequence[dict], keys: Sequence[str], x: str = "step",
                styles: Sequence[str] = ("b-", "r-", "g-", "k-"), labels: Sequence[str] | None = None) -> None:
    """Plots ``keys`` against ``x`` from metrics rows (rows without a key are skipped)."""
    for i, key in enumerate(keys):
        points = [(r[x], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, styles[i % len(styles)], markersize=3, label=labels[i] if labels else key)
    ax.set_xlabel(x)
    ax.legend(loc="best", fontsize=8)
