"""The figure scripts (experiments/gaussian_1d.py, goodfellow_fig1.py, mnist_mlp.py) in ``--quick`` mode.

Each runs in-process through its ``main(argv)`` and must write valid PNGs and
a markdown report with the run record and the expected table rows and
columns. The budgets are tiny: these check the pipeline, not the science.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pytest

from tests.conftest import assert_refused_before_writing

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: str) -> None:
    from PIL import Image

    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, path
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] >= 100 and img.size[1] >= 100, (path, img.size)


def tables(report: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """``{section heading: (columns, rows)}`` for the first table under each ``## `` heading."""
    out, heading, lines = {}, None, open(report).read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("| ") and heading not in out and heading is not None:
            block = [lines[i]]
            for nxt in lines[i + 2:]:
                if not nxt.startswith("| "):
                    break
                block.append(nxt)
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            out[heading] = (cells[0], cells[1:])
    return out


def assert_record(report: str, name: str, out: str) -> None:
    text = open(report).read()
    assert f"* command: `python -m experiments.{name} --out={out} --quick" in text
    for key in ("* date: ", "* machine: ", "CPU cores", "jax ", "* load average (1/5/15 min): ", " at the start, ",
                "* wall time: "):
        assert key in text, key


def test_gaussian_1d_quick_writes_histograms_curves_and_table(tmp_path):
    from experiments import gaussian_1d

    out = str(tmp_path / "g1d")
    result = gaussian_1d.main([f"--out={out}", "--quick"])
    assert sorted(os.listdir(out)) == ["gaussian_1d.md", "gaussian_1d_curves.png", "gaussian_1d_hist.png", "runs"]
    for name in ("gaussian_1d_hist.png", "gaussian_1d_curves.png"):
        assert_png(os.path.join(out, name))
    report = os.path.join(out, "gaussian_1d.md")
    assert result["report"] == report
    assert_record(report, "gaussian_1d", out)
    t = tables(report)
    columns, rows = t["Generated distribution vs N(4, 1.5)"]
    assert columns == ["snapshot", "step", "generator", "mean (target 4)", "std (target 1.5)", "KS to N(4, 1.5)"]
    rounds, steps = gaussian_1d.QUICK["rounds"], gaussian_1d.QUICK["steps"]
    assert [(r[1], r[2]) for r in rows] == [(str(rounds), "raw"), (str(rounds), "ema"),
                                            (str(steps), "raw"), (str(steps), "ema")]
    assert all(0.0 <= float(r[5]) <= 1.0 for r in rows)  # one seed: plain numbers, KS in [0, 1]
    columns, rows = t["Per seed (raw generator)"]
    assert columns[0] == "seed" and [r[0] for r in rows] == [str(s) for s in range(gaussian_1d.QUICK["seeds"])]
    columns, rows = t["End of training: D output and losses"]
    assert [r[0] for r in rows][:2] == ["D(real)", "D(G(z))"] and all(0 < float(r[1]) < 1 for r in rows[:2])
    # A quick report says what a pipeline check shows, none of the full run's readings.
    text = open(report).read()
    for claim in ("converged", "averages the drift out", "settle", "equilibrium values", "is weak evidence"):
        assert claim not in text, claim
    assert "This is a `--quick` run: a pipeline check" in text
    # The snapshot at --rounds is the checkpoint of that step, not the end of training.
    snaps = result["results"][0]["snapshots"]
    assert not np.array_equal(snaps["rounds"]["generated"], snaps["converged"]["generated"])
    assert np.array_equal(snaps["rounds"]["real"], snaps["converged"]["real"])


def test_goodfellow_fig1_quick_writes_four_panels_and_table(tmp_path):
    from experiments import goodfellow_fig1 as fig1

    out = str(tmp_path / "fig1")
    result = fig1.main([f"--out={out}", "--quick"])
    assert_png(os.path.join(out, "goodfellow_fig1.png"))
    report = os.path.join(out, "goodfellow_fig1.md")
    assert_record(report, "goodfellow_fig1", out)
    columns, rows = tables(report)["Per panel"]
    assert columns[:5] == ["panel", "steps", "D-only steps", "mean abs(D − 1/2)", "mean abs(D − D*)"]
    q = fig1.QUICK
    assert [r[0][:3] for r in rows] == ["(a)", "(b)", "(c)", "(d)"]
    assert [(int(r[1]), int(r[2])) for r in rows] == [(0, 0), (0, q["d_steps"]), (q["during"], q["d_steps"]),
                                                      (q["steps"], q["d_steps"])]
    a, b = result["scores"][0][:2]
    # (b) trains only D: G's samples are those of (a); D moved towards D*.
    assert (a["gen_mean"], a["gen_std"], a["ks"], a["jsd"]) == (b["gen_mean"], b["gen_std"], b["ks"], b["jsd"])
    assert b["d_star"] < a["d_star"]


def test_goodfellow_fig1_density_helpers():
    from experiments import goodfellow_fig1 as fig1
    from ganjax.plots import normal_pdf

    rng = np.random.default_rng(0)
    dens = fig1.smoothed_density(rng.normal(fig1.MEAN, fig1.STD, 200_000))
    dx = fig1.GRID[1] - fig1.GRID[0]
    assert dens.sum() * dx == pytest.approx(1.0)
    p = normal_pdf(fig1.GRID, fig1.MEAN, fig1.STD)
    assert np.max(np.abs(dens - p)) < 0.01
    assert fig1.jensen_shannon(dens, p) < 1e-3
    far = normal_pdf(fig1.GRID, fig1.MEAN - 7, 0.1)
    assert fig1.jensen_shannon(far, p) == pytest.approx(np.log(2), abs=1e-3)  # disjoint supports


def test_mnist_mlp_quick_writes_losses_grids_and_fid_table(tmp_path, fashion_data_dir, quick_classifier,
                                                         classifier_cache):
    from experiments import mnist_mlp

    _, _, _, info = quick_classifier
    cache = classifier_cache
    out = str(tmp_path / "mm")
    mnist_mlp.main([f"--out={out}", "--quick", f"--data_dir={fashion_data_dir}", f"--cache_dir={cache}"])
    for name in ("mnist_mlp_losses.png", "mnist_mlp_samples.png", "mnist_mlp_samples_ema.png"):
        assert_png(os.path.join(out, name))
    report = os.path.join(out, "mnist_mlp.md")
    assert_record(report, "mnist_mlp", out)
    assert info["name"] in open(report).read()
    columns, rows = tables(report)["Per epoch"]
    assert columns == ["epoch", "step", "D loss", "G loss", "D(real)", "D(fake)", "FID raw", "FID EMA"]
    per = mnist_mlp.QUICK["steps_per_epoch"]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(e, e * per) for e in range(1, mnist_mlp.QUICK["epochs"] + 1)]
    assert all(np.isfinite(float(x)) and float(x) > 0 for r in rows for x in r[6:])


@pytest.mark.parametrize("module, argv, message", [
    ("mnist_mlp", ["--dataset=cifar10"], "unknown --dataset 'cifar10'; valid choices: fashion_mnist, mnist"),
    ("goodfellow_fig1", ["--steps=10", "--during=20"], "--steps=10 must be larger than --during=20"),
    ("gaussian_1d", ["--rounds=200", "--steps=300"], "--steps=300 must be a multiple of --rounds=200"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, module, argv, message):
    assert_refused_before_writing(module, tmp_path, argv, message.replace("(", r"\("))


def test_markdown_table_and_mean_std():
    from experiments import common

    assert common.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
    with pytest.raises(ValueError, match="2 columns"):
        common.markdown_table(["a", "b"], [[1]])
    # The sample std over the seeds (ddof=1, as the sweep summary), computed here by the standard library.
    assert common.mean_std([1.0, 3.0], 2) == f"2.00 ± {statistics.stdev([1.0, 3.0]):.2f} (n=2)" == "2.00 ± 1.41 (n=2)"
    assert common.mean_std([30.0, 31.0, 40.0], 1) == f"33.7 ± {statistics.stdev([30.0, 31.0, 40.0]):.1f} (n=3)"
    assert common.mean_std([4.0]) == "4.000"


def test_record_names_the_cpu_model_and_the_load_averages():
    from experiments import common

    cpuinfo = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)   Processor\n\n"
               "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n")
    assert common.cpu_model(cpuinfo) == "Intel(R) Xeon(R) Processor"
    assert common.cpu_model("processor\t: 0\nmodel name\t:\n") is None  # aarch64 kernels may leave it empty
    assert common.load_text((2.104, 1.75, 0.9)) == "2.10/1.75/0.90"
    assert common.load_text(None) == "unavailable"
    run = common.Run("gaussian_1d", argparse.Namespace(out="/tmp/x", quick=False), ["--out=/tmp/x"], time.time(),
                     (3.5, 2.0, 1.0))
    lines = common.record_lines(run, machine_text="2 CPU cores")
    load = [line for line in lines if line.startswith("* load average")]
    assert len(load) == 1 and load[0].startswith("* load average (1/5/15 min): 3.50/2.00/1.00 at the start, ")
