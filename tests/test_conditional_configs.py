"""The class-conditional configs: each ``:quick`` variant trains on real Fashion-MNIST with its labels."""

import json
import os

import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.trainer import train_and_evaluate
from tests.conftest import load_config

SEED_002_G = (256, 512, 1024)
SEED_002_D = (1024, 512, 256)


@pytest.mark.parametrize("name,d_inputs,d_outputs,acgan,dropout", [
    ("cgan_fashion_mnist_mlp", 784 + 10, 1, 0.0, 0.0),   # concat: D sees [x, one_hot(y)], one logit
    ("acgan_fashion_mnist", 784, 1 + 10, 1.0, 0.3),      # ACGAN: D sees x alone, logit + 10 class logits
])
def test_quick_conditional_config_trains_on_labelled_fashion_mnist(fashion_data_dir, tmp_path, name, d_inputs,
                                                                   d_outputs, acgan, dropout):
    c = load_config(name, "quick")
    assert (c.model.num_classes, c.acgan_weight) == (10, acgan)
    assert (tuple(c.model.g.hidden), tuple(c.model.d.hidden), c.model.d.dropout) == (SEED_002_G, SEED_002_D,
                                                                                      dropout)
    c.data_dir = fashion_data_dir
    c.num_steps = 6
    workdir = str(tmp_path / name)
    state = train_and_evaluate(c, workdir)
    assert int(state.step) == 6
    assert state.g_params["Dense_0"]["kernel"].shape[0] == 100 + 10  # G sees [z, one_hot(y)]
    assert ("batch_stats" in state.g_state) == (name == "cgan_fashion_mnist_mlp")  # the cGAN recipe's BN in G
    assert state.d_params["Dense_0"]["kernel"].shape[0] == d_inputs
    assert state.d_params["Dense_3"]["kernel"].shape[1] == d_outputs
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train = [r for r in rows if "d_loss" in r]
    assert train and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in train)
    assert all(("class_loss_d" in r) == bool(acgan) for r in train)
    assert os.path.exists(os.path.join(workdir, "samples", "step_6.png"))
    saved = config_lib.from_json(open(os.path.join(workdir, "config.json")).read())
    assert saved.model.num_classes == 10
