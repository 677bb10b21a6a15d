"""End to end on real Fashion-MNIST prepared by TFDS: every file of DESIGN.md is written."""

import glob
import json
import os

import numpy as np

from ganjax.trainer import train_and_evaluate
from tests.conftest import load_config


def test_quick_run_writes_every_design_file(fashion_data_dir, tmp_path):
    c = load_config("fashion_mnist_mlp", "quick")
    c.data_dir = fashion_data_dir
    c.loss = "hinge"
    workdir = str(tmp_path / "fm")
    state = train_and_evaluate(c, workdir)
    assert int(state.step) == c.num_steps
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert config["loss"] == "hinge" and config["dataset"] == "fashion_mnist"
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train_rows = [r for r in rows if "d_loss" in r]
    assert train_rows and all({"step", "d_loss", "g_loss", "steps_per_sec"} <= set(r) for r in train_rows)
    assert all(np.isfinite(r["d_loss"]) for r in train_rows)
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
    assert steps[-1] == c.num_steps
    from PIL import Image

    from ganjax import plots

    picture = Image.open(os.path.join(workdir, "samples", f"step_{c.num_steps}.png"))
    assert picture.size[0] >= 600  # a titled figure a person can read
    # Its content: an 8×8 grid of the 64 fixed-noise 28×28 samples with 2-pixel gaps.
    assert plots.image_grid(np.zeros((64, 28, 28, 1), np.uint8), nrow=8).shape[:2] == (8 * 30 + 2, 8 * 30 + 2)
    assert glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
    assert os.path.exists(os.path.join(workdir, "loss_curve.png"))


def test_keras_seed_000_quick_run(fashion_data_dir, tmp_path):
    c = load_config("mnist_keras", "fashion,quick")
    c.data_dir = fashion_data_dir
    state = train_and_evaluate(c, str(tmp_path / "keras"))
    assert "batch_stats" in state.g_state and int(state.step) == c.num_steps
