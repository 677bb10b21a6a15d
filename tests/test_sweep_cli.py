"""``python -m ganjax.sweep`` end to end (vmap mode): results, summary, rerun, --summarize."""

import json
import os
import subprocess
import sys

from ganjax.sweep.results import read_results
from tests.conftest import ROOT

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}


def sweep(*args):
    return subprocess.run([sys.executable, "-m", "ganjax.sweep", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=600)


def test_ring_losses_quick_sweep_writes_results_and_summary_and_reruns_nothing(tmp_path):
    workdir = str(tmp_path / "rl")
    run = sweep("--config=configs/sweeps/ring_losses.py:quick", f"--workdir={workdir}")
    assert run.returncode == 0, run.stderr
    assert "20 trials: 20 ok, 0 diverged, 0 failed" in run.stdout
    results = read_results(workdir)
    assert len(results) == 20 and all(r["mode"] == "vmap" and r["steps"] == 20 for r in results.values())
    assert {r["params"]["loss"] for r in results.values()} == {"minimax", "non_saturating", "least_squares",
                                                               "wasserstein", "hinge"}
    assert all(0 <= r["best"]["modes"] <= 8 and "d_loss" in r["final"] for r in results.values())
    with open(os.path.join(workdir, "sweep.json")) as f:
        manifest = json.load(f)
    assert len(manifest["trials"]) == 20
    loss_axis = [a for a in manifest["sweep"]["axes"] if a["targets"] == ["loss"]]  # the axes' values are kept
    assert len(loss_axis) == 1 and loss_axis[0]["kind"] == "grid"
    assert set(loss_axis[0]["domain"]) == {"minimax", "non_saturating", "least_squares", "wasserstein", "hinge"}
    summary = open(os.path.join(workdir, "summary.md")).read()
    for loss in ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge"):
        assert loss in summary
    for png in ("metric_vs_lr.png", "best_of_k.png"):
        with open(os.path.join(workdir, png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    lines = open(os.path.join(workdir, "results.jsonl")).read().splitlines()

    again = sweep("--config=configs/sweeps/ring_losses.py:quick", f"--workdir={workdir}")
    assert again.returncode == 0, again.stderr
    assert "20 already finished, 0 to run" in again.stderr
    assert open(os.path.join(workdir, "results.jsonl")).read().splitlines() == lines

    os.remove(os.path.join(workdir, "summary.md"))
    summarized = sweep("--summarize", workdir, "--metric=high_quality")
    assert summarized.returncode == 0, summarized.stderr
    assert "high_quality" in open(os.path.join(workdir, "summary.md")).read()
    bad = sweep("--summarize", workdir, "--metric=fidd")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("ganjax: error: unknown metric 'fidd'")
    assert "Traceback" not in bad.stderr
