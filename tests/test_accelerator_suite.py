"""experiments/accelerator_suite.py in ``--quick`` mode on the 8 fake CPU devices of conftest.py.

One in-process run covers the devices record, the step table (the MLP in float32 and bfloat16, FLOPs
from XLA's cost analysis), ``parallel=none`` vs ``shard_map`` over the 8 devices on the ring's quick
nets, the report rewritten per row and the images/s chart. The queue's subprocess-with-timeout is
checked on its own with a real queued script stopped at a 5 s budget.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ganjax.errors import ConfigError
from tests.conftest import assert_refused_before_writing
from tests.test_experiments_figs import assert_png, assert_record, tables


def test_quick_writes_devices_steps_parallel_and_chart(tmp_path):
    from experiments import accelerator_suite as suite

    out = str(tmp_path / "suite")
    start = time.time()
    result = suite.main([f"--out={out}", "--quick", "--models=mlp", "--parallel_cases=ring"])
    wall = time.time() - start
    report = os.path.join(out, "accelerator_suite.md")
    assert result["report"] == report
    assert_record(report, "accelerator_suite", out)
    assert_png(os.path.join(out, suite.CHART))
    text = open(report).read()
    for heading in ("## Devices", "## Step throughput", "## Data parallelism", "## Queued figure runs"):
        assert heading in text, heading
    assert "* devices: 8 × cpu" in text and "* versions: jax " in text and "flax " in text
    t = tables(report)
    columns, rows = t["Step throughput"]
    assert columns == list(suite.STEP_COLUMNS)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("mlp", "ganjax", "float32", "8"),
                                                        ("mlp", "ganjax", "bfloat16", "8")]
    for r in rows:
        steps_per_s, images_per_s = float(r[4]), float(r[5])
        assert steps_per_s > 0 and images_per_s == pytest.approx(8 * steps_per_s, rel=0.01)
        assert float(r[6]) > 0 and r[7] == "xla" and float(r[8]) > 0 and r[9] == "unknown"  # CPU: no peak
    columns, rows = t["Data parallelism"]
    assert columns == list(suite.PARALLEL_COLUMNS)
    assert [(r[0], r[1], r[2]) for r in rows] == [("ring", "none", "1"), ("ring", "shard_map", "8")]
    assert rows[0][5] == "1.00x" and float(rows[1][5].rstrip("x")) > 0
    assert "skipped: every queued run: --queue=none (the default under --quick" in text
    record = json.load(open(os.path.join(out, "accelerator_suite.json")))
    assert record["devices"]["count"] == 8 and len(record["steps"]) == 2 and len(record["parallel"]) == 2
    print(f"accelerator_suite --quick: {wall:.1f} s")


def test_queue_stops_a_run_at_the_budget_and_says_so(tmp_path):
    from experiments import accelerator_suite as suite
    from experiments import common

    out = str(tmp_path / "suite")
    run = common.start_run(suite.NAME, suite.__doc__, [f"--out={out}", "--quick", "--queue=mixture_modes"],
                           suite.add_arguments, suite.check_arguments)
    report = suite.Report(run, devices=suite.describe_devices())
    # 1 s cannot hold the queued run (a fresh interpreter importing jax, then compiling): it is stopped. 5 s
    # could, on a fast CPU (a 2-core Intel Xeon finished it).
    suite.run_queue(report, suite.Budget(1 / 60), run.args.queue, quick=True, min_left=0.5)
    (row,) = report.queue
    assert row["status"].startswith("stopped at the budget (run the suite again")
    assert row["wall_s"] < 20
    assert "--quick" in row["command"] and "--resume" in row["command"]
    assert os.path.exists(os.path.join(out, "queue", "mixture_modes.log"))
    columns, rows = tables(os.path.join(out, "accelerator_suite.md"))["Queued figure runs"]
    assert columns == list(suite.QUEUE_COLUMNS) and rows[0][0] == "mixture_modes"
    # With too little time left a queued run does not start.
    suite.run_queue(report, suite.Budget(0.5 / 60), run.args.queue, quick=True)
    assert report.queue[-1]["status"].startswith("skipped: ")


@pytest.mark.slow
def test_a_queue_measures_in_a_subprocess_and_reads_its_record_back(tmp_path):
    """With a queue, sections 1-3 run in a child process; the parent reads its record back, never starts
    jax's backend itself, and runs the queue (here stopped or finished within a 100 s budget)."""
    from experiments import accelerator_suite as suite

    out = str(tmp_path / "suite")
    suite.main([f"--out={out}", "--quick", "--models=mlp", "--parallel_cases=ring", "--queue=mixture_modes",
                "--budget_minutes=1.7"])
    report = os.path.join(out, "accelerator_suite.md")
    text = open(report).read()
    assert "; measured in a subprocess" in text
    t = tables(report)
    assert [(r[0], r[2]) for r in t["Step throughput"][1]] == [("mlp", "float32"), ("mlp", "bfloat16")]
    assert [r[1] for r in t["Data parallelism"][1]] == ["none", "shard_map"]  # 8 devices: the env is inherited
    (row,) = t["Queued figure runs"][1]
    assert row[0] == "mixture_modes" and row[2] == "—"
    assert row[3] == "finished" or row[3].startswith(("stopped at the budget", "skipped: "))
    assert os.path.exists(os.path.join(out, "accelerator_suite_measure.log"))


def test_queue_order_and_biggan_entries():
    """BigGAN CIFAR-10 is queued last (a resumable ganjax.main run into its workdir, scored with Inception) and
    benchmarked by default."""
    import argparse
    import sys

    from experiments import accelerator_suite as suite

    assert [e.name for e in suite.QUEUE] == ["mixture_modes", "mixture_modes_unrolled", "lucic_losses",
                                             "biggan_cifar10"]
    biggan = suite.QUEUE[-1]
    out = os.path.join("OUT", "queue", "biggan_cifar10")
    assert suite.queued_command(biggan, "OUT", quick=False) == [
        sys.executable, "-m", "ganjax.main", f"--workdir={out}", "--config=configs/biggan_cifar10.py",
        "--config.eval_every=10000", "--config.eval.features=inception", "--config.eval.metrics=fid,is,intra_fid"]
    assert suite.queued_command(biggan, "OUT", quick=True) == [
        sys.executable, "-m", "ganjax.main", f"--workdir={out}", "--config=configs/biggan_cifar10.py:quick"]
    mixture = suite.queued_command(suite.QUEUE[0], "OUT", quick=True)
    assert mixture[2:4] == ["experiments.mixture_modes", f"--out={os.path.join('OUT', 'queue', 'mixture_modes')}"]
    unrolled = suite.queued_command(suite.QUEUE[1], "OUT", quick=False)
    assert unrolled[2:] == ["experiments.mixture_modes",
                            f"--out={os.path.join('OUT', 'queue', 'mixture_modes_unrolled')}", "--seeds=3",
                            "--methods=unrolled5", "--eval-every=5000", "--resume"]
    parser = argparse.ArgumentParser()
    suite.add_arguments(parser)
    assert parser.parse_args([]).models.split(",") == ["mlp", "infogan28", "dcgan64", "sngan32", "biggan32"]


@pytest.mark.slow
def test_the_queued_biggan_run_is_a_valid_config():
    """``ganjax.main`` accepts the queued BigGAN run's arguments (``--print_config``: validated, nothing
    written); a bad metric in the same place is refused."""
    import json
    import subprocess
    import sys

    from experiments import accelerator_suite as suite

    biggan = suite.QUEUE[-1]
    command = [sys.executable, "-m", biggan.module, *biggan.argv, "--print_config"]
    r = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert (c["eval_every"], c["eval"]["features"], c["eval"]["metrics"]) == (10000, "inception", "fid,is,intra_fid")
    assert c["model"]["num_classes"] == 10 and c["num_steps"] == 100_000
    bad = [a.replace("intra_fid", "intra") for a in command]
    r = subprocess.run(bad, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "intra" in r.stderr


@pytest.mark.slow
def test_quick_biggan32_rows_count_five_real_batches_per_step(tmp_path):
    """The class-conditional BigGAN step (labelled real batches) runs in the step section; a step consumes
    n_disc = 5 real batches."""
    from experiments import accelerator_suite as suite
    from experiments import common

    run = common.start_run(suite.NAME, suite.__doc__, [f"--out={tmp_path / 'suite'}", "--quick", "--models=biggan32"],
                           suite.add_arguments, suite.check_arguments)
    report = suite.Report(run, devices=suite.describe_devices())
    suite.run_steps(report, suite.Budget(10), run.args.models, quick=True)
    assert [(r["model"], r["framework"], r["dtype"]) for r in report.steps] == [
        ("biggan32", "ganjax", "float32"), ("biggan32", "ganjax", "bfloat16")]
    for r in report.steps:
        assert r["images_per_s"] == pytest.approx(8 * 5 * r["steps_per_s"])


def test_peak_table():
    from experiments.accelerator_suite import peak_tflops

    assert peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-40GB", "float32") == 19.5
    assert peak_tflops("TPU v5 lite", "bfloat16") == 197.0
    assert peak_tflops("TPU v4", "float32") is None
    assert peak_tflops("cpu", "float32") is None


@pytest.mark.parametrize("argv, message", [
    (["--budget_minutes=0"], "--budget_minutes must be a positive number of minutes, got 0"),
    (["--budget_minutes=nan"], "--budget_minutes must be a positive number of minutes, got nan"),
    (["--models=mlp,vgg"], "unknown model 'vgg'"),
    (["--queue=mixture"], "unknown queued run 'mixture'"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, argv, message):
    assert_refused_before_writing("accelerator_suite", tmp_path, ["--quick", *argv], message)


def test_a_gs_out_is_refused_with_the_advice():
    from experiments import accelerator_suite

    with pytest.raises(ConfigError, match=r"^--out=gs://b/suite: the accelerator suite writes to a local folder only; "
                                          r"give a local --out and copy it to the bucket afterwards$"):
        accelerator_suite.main(["--out=gs://b/suite", "--quick"])
