r"""One command for a few minutes on a GPU or TPU: devices, step throughput, data parallelism, queued figures.

    python -m experiments.accelerator_suite --out=DIR [--budget_minutes=8] [--quick]
        [--models=mlp,infogan28,dcgan64,sngan32,biggan32] [--parallel_cases=ring,dcgan32] [--queue=NAMES]

In priority order, each section first checking the time left of ``--budget_minutes``:

1. **Devices**: kind, count and memory (``device.memory_stats()`` where the backend reports it), the
   backend, and the jax, jaxlib, flax and torch versions.
2. **Step throughput**: the train steps of :mod:`experiments.bench_step` (``--models``: the seed-002 MLP,
   the Lucic'18 InfoGAN-style nets, the DCGAN-64 tutorial nets, the SN-GAN ResNet-32 CIFAR nets, ganjax
   only, and the class-conditional BigGAN-32 CIFAR nets) at batch 64 and 256, ``compute_dtype`` float32 and
   bfloat16; the PyTorch twin of each model where ``torch.cuda.is_available()`` (on CUDA, bfloat16 under
   ``torch.autocast``). Per row: steps/s, images/s (real images per step: batch × n_disc), FLOPs per step
   from XLA's cost analysis of the compiled step (else :mod:`experiments.bench_step`'s analytic count, else
   none), achieved TFLOP/s and its share of the device's dense peak (:data:`PEAK_TFLOPS`; "unknown" for
   other devices).
3. **Data parallelism**: ``parallel=none`` vs ``parallel=shard_map`` over all devices
   (``--parallel_cases``: the ring's full VEEGAN/PacGAN nets, toy data sampled in the step, and the
   DCGAN-32 nets); skipped, and said so, on one device.
4. **Queued figure runs** (:data:`QUEUE`, in order): each queued script (or training run) runs in a
   subprocess with a timeout of the time left (starting only with 60 s left, 10 s under ``--quick``).
   The queued runs resume (``--resume``, a sweep that finishes an interrupted run, or ``ganjax.main``
   continuing from its workdir's checkpoint), so a run stopped at
   the budget continues when the suite runs again with the same ``--out``; the report says which
   finished. Under ``--quick`` the queue runs the ``--quick``
   versions of the entries named by ``--queue`` only (none by default: each takes 20–60 s on a CPU).

``--quick`` checks the whole path on a CPU: the configs' ``quick`` nets, batch 8, 3 timed steps,
float32 and bfloat16 (most of its time is XLA compiling, ~15 s per row on 2 cores). The report
``DIR/accelerator_suite.md``, its record ``DIR/accelerator_suite.json`` and the bar chart
``DIR/accelerator_suite_images_per_s.png`` are rewritten after every row, so a run killed at the
budget still leaves what it measured. The budget is checked before each row and each queued run: a
row in progress finishes (its compile and timed steps take seconds), a queued run is stopped by its
timeout.

When the queue runs, sections 1–3 run in a subprocess of their own (with the time left as its budget
and timeout; its output in ``DIR/accelerator_suite_measure.log``) and this process never starts jax's
backend: a TPU admits one process at a time and jax holds most of a GPU's memory until its process
ends, so the queued runs find the accelerator free.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

from experiments import bench_step, common
from ganjax import storage
from ganjax.errors import ConfigError

NAME = "accelerator_suite"
CHART = f"{NAME}_images_per_s.png"

# Dense peak TFLOP/s per device kind (a substring of ``device.device_kind``) and compute dtype, from the
# vendors' data sheets (NVIDIA's "without sparsity" figures; fp32 = plain FP32, not TF32).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100": {"bfloat16": 989.0, "float32": 67.0},
    "H200": {"bfloat16": 989.0, "float32": 67.0},
    "A100": {"bfloat16": 312.0, "float32": 19.5},
    "TPU v4": {"bfloat16": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0},  # v5e's device_kind
    "TPU v5e": {"bfloat16": 197.0},
}

BATCHES = (64, 256)
DTYPES = ("float32", "bfloat16")
STEPS, WARMUP = 50, 5
QUICK = {"batches": (8,), "steps": 3, "warmup": 1, "variant": "quick"}

# Seconds a section needs at least to start one more row: a compile plus the timed steps.
ROW_RESERVE_S = {"full": 20.0, "quick": 0.0}


@dataclasses.dataclass(frozen=True)
class ParallelCase:
    """One ``parallel=none`` vs ``shard_map`` comparison: a config, its global batch and image shape."""

    title: str
    config: str
    batch: int
    shape: tuple[int, int, int] | None


PARALLEL_CASES = {
    "ring": ParallelCase("ring of 8 Gaussians, VEEGAN/PacGAN nets (G 4x400, D 4x200), toy data", "ring_2d", 512,
                         None),
    "dcgan32": ParallelCase("DCGAN-32 (configs/dcgan_cifar10.py), 32x32x3", "dcgan_cifar10", 256, (32, 32, 3)),
}


@dataclasses.dataclass(frozen=True)
class QueuedRun:
    """A run for the time left: ``python -m <module> <out_flag>=DIR/queue/<name> <argv>``.

    Attributes:
      name: the entry's name (``--queue``; its output folder).
      module: the module run with ``python -m`` (a script under ``experiments``, or ``ganjax.main``).
      argv: its arguments besides the output folder (a resumable invocation).
      h100_minutes: the estimated wall time of the whole run on one H100.
      quick_argv: the arguments of its ``--quick`` version.
      out_flag: the flag that takes the output folder (``--out``; ``--workdir`` for ``ganjax.main``).
    """

    name: str
    module: str
    argv: tuple[str, ...]
    h100_minutes: float
    quick_argv: tuple[str, ...]
    out_flag: str = "--out"


QUEUE: tuple[QueuedRun, ...] = (
    QueuedRun("mixture_modes", "experiments.mixture_modes",
              ("--seeds=3", "--methods=gan,pack2,pack4", "--eval-every=1000", "--resume"), 240.0,
              ("--quick", "--datasets=ring_2d", "--methods=gan", "--seeds=1", "--resume")),
    # The unrolled GAN (5 unrolling steps) under the same protocol: about 5x a plain step, so about 5x one of the
    # entry above's three methods; on the 2-core CPU that is ~43 CPU-hours for 3 seeds on both datasets
    # (5x the GAN groups of the 40k-step CPU table, scaled to 400k steps).
    QueuedRun("mixture_modes_unrolled", "experiments.mixture_modes",
              ("--seeds=3", "--methods=unrolled5", "--eval-every=5000", "--resume"), 400.0,
              ("--quick", "--datasets=ring_2d", "--methods=unrolled5", "--seeds=1", "--resume")),
    QueuedRun("lucic_losses", "experiments.lucic_losses", ("--full",), 180.0, ("--quick", "--methods=ns")),
    # 100k G steps of n_disc 5 at batch 64: ~6.5 TFLOP per step (G ~3.8, D ~0.6 GMAC per image forward, backward
    # twice that), ~7.3 h at an assumed 25 TFLOP/s, plus 10 evaluations: ~8 h.
    QueuedRun("biggan_cifar10", "ganjax.main",
              ("--config=configs/biggan_cifar10.py", "--config.eval_every=10000", "--config.eval.features=inception",
               "--config.eval.metrics=fid,is,intra_fid"), 480.0,
              ("--config=configs/biggan_cifar10.py:quick",), out_flag="--workdir"),
)
# A queued run starts only with at least this many seconds left (its imports and compiles alone take ~20 s;
# a --quick version's whole run 20-60 s on a CPU, so 10 s at least shows it starting and being stopped).
QUEUE_MIN_S = {"full": 60.0, "quick": 10.0}


class Budget:
    """The seconds left of ``--budget_minutes``, counted from the suite's start."""

    def __init__(self, minutes: float, start: float | None = None) -> None:
        self.deadline = (time.time() if start is None else start) + 60.0 * minutes

    def left(self) -> float:
        return max(0.0, self.deadline - time.time())


@dataclasses.dataclass
class Report:
    """What the suite has measured so far; :meth:`write` rewrites the report, the record and the chart."""

    run: common.Run
    devices: dict[str, Any] = dataclasses.field(default_factory=dict)
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    parallel: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    queue: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # The header's machine line where this process must not start jax's backend (see :func:`main`).
    machine_text: str | None = None

    def skip(self, section: str, what: str) -> None:
        print(f"{NAME}: {section}: skipped {what}")
        self.skipped.setdefault(section, []).append(what)

    def write(self) -> str:
        images = []
        if any(r.get("images_per_s") for r in self.steps):
            common.save(images_chart(self.steps), self.run.path(CHART))
            images.append(CHART)
        with open(self.run.path(f"{NAME}.json") + ".tmp", "w") as f:
            json.dump({"devices": self.devices, "steps": self.steps, "parallel": self.parallel,
                       "queue": self.queue, "skipped": self.skipped}, f, indent=1, default=str)
        os.replace(self.run.path(f"{NAME}.json") + ".tmp", self.run.path(f"{NAME}.json"))
        return common.write_report(self.run, "Accelerator suite", self.sections(), images, self.machine_text)

    def sections(self) -> list[tuple[str, str]]:
        def with_skipped(section: str, body: str) -> str:
            notes = "".join(f"\n* skipped: {s}" for s in self.skipped.get(section, []))
            return body + ("\n" + notes if notes else "")

        out = [("Devices", with_skipped("Devices", devices_text(self.devices) if self.devices else "(not yet)"))]
        steps = markdown_rows(STEP_COLUMNS, self.steps) if self.steps else "(no rows)"
        out.append(("Step throughput", with_skipped("Step throughput", steps + "\n\n" + STEP_NOTES)))
        par = markdown_rows(PARALLEL_COLUMNS, self.parallel) if self.parallel else "(no rows)"
        out.append(("Data parallelism", with_skipped("Data parallelism", par)))
        queue = markdown_rows(QUEUE_COLUMNS, self.queue) if self.queue else "(no runs)"
        out.append(("Queued figure runs", with_skipped("Queued figure runs", queue)))
        return out


STEP_COLUMNS = {"model": "model", "framework": "framework", "dtype": "dtype", "batch": "batch",
                "steps/s": "steps_per_s", "images/s": "images_per_s", "GFLOP/step": "gflop_per_step",
                "FLOPs from": "flops_from", "TFLOP/s": "tflops", "% of peak": "peak_percent"}
PARALLEL_COLUMNS = {"case": "case", "parallel": "parallel", "devices": "devices", "batch": "batch",
                    "steps/s": "steps_per_s", "speed-up": "speedup"}
QUEUE_COLUMNS = {"run": "name", "command": "command", "est. H100 min": "h100_minutes", "status": "status",
                 "wall s": "wall_s", "log": "log"}
STEP_NOTES = ("images/s counts the real images a step consumes (batch × n_disc; SN-GAN and BigGAN take 5 D "
              "updates per G update). FLOPs come from XLA's cost analysis of the compiled step (`xla`) or "
              "bench_step's analytic count (`analytic`); the PyTorch rows use the ganjax row's count for the "
              "same model, batch and dtype. % of peak is against the dense peak of the device kind and dtype "
              "(`PEAK_TFLOPS`), `unknown` for other devices. SN-GAN ResNet-32 has no PyTorch twin (ganjax "
              "rows only).")


def cell(value: Any) -> str:
    """A table cell: floats with 3 significant digits (more before the point), None as ``—``."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_rows(columns: dict[str, str], rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of ``rows`` (dicts) with ``{heading: key}`` columns."""
    return common.markdown_table(list(columns), [[cell(r.get(k)) for k in columns.values()] for r in rows])


# ---------------------------------------------------------------------------
# 1. Devices.


def describe_devices() -> dict[str, Any]:
    """Backend, versions and per-kind device counts and memory (bytes, where ``memory_stats()`` reports it)."""
    import jax
    import jaxlib

    versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    for name in ("flax", "torch"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    devices = jax.devices()
    memory = None
    try:
        stats = devices[0].memory_stats()
        memory = stats.get("bytes_limit") if stats else None
    except Exception:  # noqa: BLE001 - not every backend implements memory_stats
        memory = None
    torch_cuda = False
    if versions["torch"] != "not installed":
        import torch

        torch_cuda = bool(torch.cuda.is_available())
    return {"backend": jax.default_backend(), "kind": devices[0].device_kind, "platform": devices[0].platform,
            "count": len(devices), "local_count": jax.local_device_count(), "processes": jax.process_count(),
            "memory_bytes": memory, "versions": versions, "torch_cuda": torch_cuda}


def devices_text(d: dict[str, Any]) -> str:
    memory = f"{d['memory_bytes'] / 2**30:.1f} GiB each" if d["memory_bytes"] else \
        "not reported by `memory_stats()`"
    versions = ", ".join(f"{k} {v}" for k, v in d["versions"].items())
    return (f"* devices: {d['count']} × {d['kind']} ({d['platform']}; {d['processes']} process(es), "
            f"{d['local_count']} local)\n* memory: {memory}\n* backend: {d['backend']}\n* versions: {versions}\n"
            f"* PyTorch CUDA twin: {'yes' if d['torch_cuda'] else 'no (torch.cuda.is_available() is False)'}")


def peak_tflops(kind: str, dtype: str) -> float | None:
    """The dense peak TFLOP/s of device kind ``kind`` in ``dtype`` (:data:`PEAK_TFLOPS`), or None."""
    for key, peaks in PEAK_TFLOPS.items():
        if key.lower() in kind.lower():
            return peaks.get(dtype)
    return None


# ---------------------------------------------------------------------------
# 2. Step throughput.


def step_row(model_name: str, framework: str, dtype: str, batch: int, n_disc: int, sec: float,
             flops: float | None, flops_from: str | None, kind: str) -> dict[str, Any]:
    """One row of the step table (steps/s, images/s, TFLOP/s, % of the peak of ``kind``)."""
    tflops = flops / sec / 1e12 if flops else None
    peak = peak_tflops(kind, dtype)
    return {"model": model_name, "framework": framework, "dtype": dtype, "batch": batch,
            "sec_per_step": sec, "steps_per_s": 1.0 / sec, "images_per_s": batch * n_disc / sec,
            "gflop_per_step": flops / 1e9 if flops else None, "flops_from": flops_from, "tflops": tflops,
            "peak_percent": (f"{100 * tflops / peak:.1f}" if tflops and peak else "unknown")}


def run_steps(report: Report, budget: Budget, models: Sequence[str], quick: bool) -> None:
    """Section 2: every model × batch × dtype, ganjax then (on CUDA) the PyTorch twin; checks the budget
    before each row and rewrites the report after it."""
    batches = QUICK["batches"] if quick else BATCHES
    steps, warmup = (QUICK["steps"], QUICK["warmup"]) if quick else (STEPS, WARMUP)
    variant = QUICK["variant"] if quick else None
    reserve = ROW_RESERVE_S["quick" if quick else "full"]
    kind, torch_cuda = report.devices["kind"], report.devices["torch_cuda"]
    for name in models:
        model = bench_step.MODELS[name]
        for batch in batches:
            for dtype in DTYPES:
                label = f"{name} batch {batch} {dtype}"
                if budget.left() <= reserve:
                    report.skip("Step throughput", f"{label}: {budget.left():.0f} s left of the budget")
                    continue
                r = bench_step.bench_ganjax(model, batch, steps, warmup, variant, {"compute_dtype": dtype})
                flops, source = r["flops"], "xla"
                if flops is None and model.flops is not None:
                    flops, source = model.flops(batch), "analytic"
                report.steps.append(step_row(name, "ganjax", dtype, batch, r["n_disc"], r["sec_per_step"], flops,
                                             source if flops else None, kind))
                print(f"{NAME}: {label} ganjax {report.steps[-1]['images_per_s']:.0f} images/s")
                report.write()
                if not torch_cuda or model.torch_nets is None:
                    continue
                if budget.left() <= reserve:
                    report.skip("Step throughput", f"{label} PyTorch: {budget.left():.0f} s left of the budget")
                    continue
                t = bench_step.bench_torch(model, batch, steps, warmup, device="cuda", dtype=dtype)
                report.steps.append(step_row(name, "pytorch (cuda)", dtype, batch, t["n_disc"], t["sec_per_step"],
                                             flops, source if flops else None, kind))
                report.write()


def images_chart(rows: Sequence[dict[str, Any]]):
    """A horizontal bar chart of images/s per model, batch, dtype and framework (log scale)."""
    rows = [r for r in rows if r.get("images_per_s")]
    labels = [f"{r['model']} b{r['batch']} {r['dtype']} {r['framework']}" for r in rows]
    fig, axes = common.subplots(1, 1, size=(7.0, max(2.5, 0.3 * len(rows) + 1.0)))
    ax = axes[0, 0]
    colors = {"float32": "tab:blue", "bfloat16": "tab:orange"}
    ax.barh(range(len(rows)), [r["images_per_s"] for r in rows],
            color=[colors.get(r["dtype"], "gray") for r in rows],
            hatch=None, edgecolor=["black" if r["framework"] != "ganjax" else "none" for r in rows])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("images/s (log; blue float32, orange bfloat16, outlined: PyTorch)")
    return fig


# ---------------------------------------------------------------------------
# 3. Data parallelism.


def run_parallel(report: Report, budget: Budget, cases: Sequence[str], quick: bool) -> None:
    """Section 3: steps/s of ``parallel=none`` vs ``shard_map`` over all devices per case (one device: skipped)."""
    import jax

    n = jax.device_count()
    if n < 2:
        report.skip("Data parallelism", f"every case: one device ({report.devices['kind']}); shard_map needs 2+")
        return
    steps, warmup = (QUICK["steps"], QUICK["warmup"]) if quick else (STEPS, WARMUP)
    reserve = ROW_RESERVE_S["quick" if quick else "full"]
    for name in cases:
        case = PARALLEL_CASES[name]
        batch = n * QUICK["batches"][0] if quick else case.batch
        batch = -(-batch // n) * n  # a multiple of the device count
        base = None
        for mode in ("none", "shard_map"):
            if budget.left() <= reserve:
                report.skip("Data parallelism", f"{name} {mode}: {budget.left():.0f} s left of the budget")
                continue
            bench = bench_step.build_ganjax(case.config, batch, case.shape, QUICK["variant"] if quick else None,
                                            parallel=mode)
            rate = 1.0 / bench_step.time_loop(bench.step, steps, warmup)
            base = rate if mode == "none" else base
            report.parallel.append({"case": name, "parallel": mode, "devices": bench.runner.num_devices,
                                    "batch": batch, "steps_per_s": rate,
                                    "speedup": f"{rate / base:.2f}x" if base else "—"})
            report.write()


# ---------------------------------------------------------------------------
# 4. Queued figure runs.


def queued_command(entry: QueuedRun, out: str, quick: bool) -> list[str]:
    """The subprocess command line of ``entry`` writing to ``<out>/queue/<name>``."""
    argv = entry.quick_argv if quick else entry.argv
    return [sys.executable, "-m", entry.module, f"{entry.out_flag}={os.path.join(out, 'queue', entry.name)}", *argv]


def run_subprocess(command: list[str], log_path: str, timeout: float) -> tuple[str, float]:
    """Runs ``command`` (output to ``log_path``) in its own process group; stops the group at ``timeout``
    seconds. Returns ``(status, wall seconds)``: ``finished``, ``failed (exit N)`` or ``stopped at the budget``."""
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return "stopped at the budget", time.time() - start
    return ("finished" if rc == 0 else f"failed (exit {rc})"), time.time() - start


def run_queue(report: Report, budget: Budget, entries: Sequence[QueuedRun], quick: bool,
              min_left: float | None = None) -> None:
    """Section 4: each entry in order in a subprocess with a timeout of the time left (at least ``min_left``
    seconds, default :data:`QUEUE_MIN_S`, needed to start one). A run stopped at the budget continues the
    next time (it resumes)."""
    if min_left is None:
        min_left = QUEUE_MIN_S["quick" if quick else "full"]
    os.makedirs(report.run.path("queue"), exist_ok=True)
    for entry in entries:
        command = queued_command(entry, report.run.out, quick)
        shown = "python -m " + " ".join(command[2:])
        row = {"name": entry.name, "command": f"`{shown}`", "h100_minutes": None if quick else entry.h100_minutes,
               "log": f"queue/{entry.name}.log"}
        left = budget.left()
        if left < min_left:
            row.update(status=f"skipped: {left:.0f} s left (< {min_left:.0f} s)", wall_s=None, log=None)
        else:
            print(f"{NAME}: queue: {shown} (timeout {left:.0f} s)")
            status, wall = run_subprocess(command, report.run.path(row["log"]), left)
            if status == "stopped at the budget":
                status += " (run the suite again with the same --out to continue)"
            row.update(status=status, wall_s=wall)
        report.queue.append(row)
        report.write()


# ---------------------------------------------------------------------------


def parse_queue(text: str | None, quick: bool) -> list[QueuedRun]:
    """``--queue``: ``all``, ``none`` or a comma list of :data:`QUEUE` names (default: all; under ``--quick``
    none)."""
    if text is None:
        text = "none" if quick else "all"
    if text == "all":
        return list(QUEUE)
    if text == "none":
        return []
    by_name = {e.name: e for e in QUEUE}
    return [by_name[n] for n in common.parse_names("queue", text, by_name, noun="queued run")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget_minutes", type=float, default=8.0,
                        help="wall-time budget; every row and queued run checks the time left first")
    parser.add_argument("--models", default=",".join(bench_step.MODELS),
                        help=f"comma list of {', '.join(bench_step.MODELS)}")
    parser.add_argument("--parallel_cases", default=",".join(PARALLEL_CASES),
                        help=f"comma list of {', '.join(PARALLEL_CASES)}")
    parser.add_argument("--queue", default=None,
                        help=f"all, none or a comma list of {', '.join(e.name for e in QUEUE)} "
                             "(default: all; under --quick: none)")


def check_arguments(a: argparse.Namespace) -> None:
    """Validates the budget and the names (raising ``ConfigError``) before anything is written."""
    import math

    if not (math.isfinite(a.budget_minutes) and a.budget_minutes > 0):
        raise ConfigError(f"--budget_minutes must be a positive number of minutes, got {a.budget_minutes:g}")
    if storage.is_remote(a.out):  # its queued scripts log into files of --out as they run
        raise ConfigError(f"--out={a.out}: the accelerator suite writes to a local folder only; give a local "
                          f"--out and copy it to the bucket afterwards")
    a.models = common.parse_names("models", a.models, bench_step.MODELS)
    a.parallel_cases = common.parse_names("parallel_cases", a.parallel_cases, PARALLEL_CASES, noun="parallel case")
    a.queue = parse_queue(a.queue, a.quick)


def measure(report: Report, budget: Budget) -> None:
    """Sections 1–3 in this process: devices, step throughput, data parallelism."""
    a = report.run.args
    report.devices = describe_devices()
    print(f"{NAME}:\n{devices_text(report.devices)}")
    report.write()
    for section, body in (("Step throughput", lambda: run_steps(report, budget, a.models, a.quick)),
                          ("Data parallelism", lambda: run_parallel(report, budget, a.parallel_cases, a.quick))):
        if budget.left() <= 0:
            report.skip(section, "the whole section: the budget is spent")
            continue
        body()
        report.write()


def measure_in_subprocess(report: Report, budget: Budget) -> None:
    """Sections 1–3 in a child process (``--queue=none``, the time left as its budget and timeout), then its
    record read back into ``report``. A TPU admits one process at a time, and a GPU's memory stays with
    the process that allocated it (jax preallocates most of it): the queued runs need the accelerator
    free, so this process never starts jax's backend."""
    run = report.run
    argv = [x for x in run.argv if not x.startswith(("--queue", "--budget_minutes"))]
    command = [sys.executable, "-m", f"experiments.{NAME}", *argv, "--queue=none",
               f"--budget_minutes={budget.left() / 60:.4f}"]
    status, _ = run_subprocess(command, run.path(f"{NAME}_measure.log"), budget.left() + 30)
    path = run.path(f"{NAME}.json")
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        report.devices, report.steps, report.parallel = record["devices"], record["steps"], record["parallel"]
        report.skipped = {k: v for k, v in record["skipped"].items() if k != "Queued figure runs"}
    if status != "finished":
        report.skip("Devices", f"part of the measurements: their subprocess {status} "
                               f"(see {NAME}_measure.log)")
    d = report.devices
    report.machine_text = (f"{os.cpu_count()} CPU cores, jax {d['versions']['jax']} ({d['backend']} backend, "
                           f"{d['count']} × {d['kind']}); measured in a subprocess" if d else
                           f"{os.cpu_count()} CPU cores; the measuring subprocess wrote no record")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    run = common.start_run(NAME, __doc__, argv, add_arguments, check_arguments)
    a = run.args
    budget = Budget(a.budget_minutes, run.start)
    report = Report(run)
    if not a.queue:
        measure(report, budget)
        report.skip("Queued figure runs", "every queued run: --queue=none" + (
            " (the default under --quick: each queued script's own --quick takes 20-60 s on a CPU)"
            if a.quick else ""))
    else:
        measure_in_subprocess(report, budget)
        report.write()
        run_queue(report, budget, a.queue, a.quick)
    path = report.write()
    common.finish(run, path, [CHART] if os.path.exists(run.path(CHART)) else [])
    return {"report": path, "devices": report.devices, "steps": report.steps, "parallel": report.parallel,
            "queue": report.queue, "skipped": report.skipped}


if __name__ == "__main__":
    common.run_main(main)
