"""The class-conditional configs end to end: ``sngan_projection_cifar10:quick`` and ``biggan_cifar10:quick``
with toy-sized nets and labels. Default suite: their whole conditional train step traces (labels into G's
cBNs and D's projection, no compilation) with the conditioning parameters in the state. ``-m slow``: each
trains 2 steps through the trainer on a labelled ``folder:`` dataset (10 class subfolders of 32×32 RGB
PNGs made in tmp_path: no CIFAR-10 offline); compiling a BigGAN step takes minutes on a shared CPU."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from ganjax import config as config_lib
from ganjax.data import Dataset
from ganjax.train import init_state, train_step
from ganjax.trainer import train_and_evaluate
from tests.conftest import load_config, override

CLASSES = 10


def labelled_folder(root, per_class: int = 2) -> str:
    """``folder:ROOT`` with one subfolder per class, each image a flat colour that encodes its class."""
    rng = np.random.default_rng(0)
    for k in range(CLASSES):
        os.makedirs(os.path.join(root, f"class_{k}"))
        for i in range(per_class):
            pixels = (20 * k + rng.integers(0, 20, (32, 32, 3))).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, f"class_{k}", f"{i}.png"))
    return f"folder:{root}"


# (config, toy-sized nets, the conditioning parameters that must be in the state: path → shape)
CASES = {
    "sngan_projection_cifar10": ({"model.g.width": 4, "model.d.width": 4},
                                 {("g", "ConditionalBatchNorm_0", "gamma"): (CLASSES, 4),
                                  ("d", "ClassProjection_0", "embedding"): (CLASSES, 4)}),
    "biggan_cifar10": ({"model.g.width": 2, "model.d.width": 4},
                       {("g", "shared", "embedding"): (CLASSES, 4),
                        ("d", "ClassProjection_0", "embedding"): (CLASSES, 8)}),
}


def toy_config(name: str):
    """``name:quick`` with toy-sized nets, batch 4 and one D update per step (a small compiled step)."""
    nets, _ = CASES[name]
    c = override(load_config(name, "quick"), nets)
    assert c.model.num_classes == CLASSES
    c.update(batch_size=4, n_disc=1)
    return c


def check_conditioning_params(name: str, state) -> None:
    for (net, module, param), shape in CASES[name][1].items():
        assert getattr(state, f"{net}_params")[module][param].shape == shape


@pytest.mark.parametrize("name", sorted(CASES))
def test_conditional_quick_config_step_traces_with_labels(name):
    rng = np.random.default_rng(0)
    labels = np.arange(8, dtype=np.int32) % CLASSES
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    _, gan = config_lib.build(toy_config(name), Dataset("fake", (32, 32, 3), images=images, labels=labels,
                                                        num_classes=CLASSES))
    assert gan.num_classes == CLASSES and gan.d_conditional
    state = jax.eval_shape(lambda: init_state(gan, 0))
    check_conditioning_params(name, state)
    new, metrics = jax.eval_shape(lambda s, b: train_step(gan, s, b, 4), state, (images[None, :4], labels[None, :4]))
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert all(a.shape == b.shape for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)))
    assert {"d_loss", "g_loss"} <= set(metrics) and all(m.shape == () for m in metrics.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_conditional_quick_config_trains_two_steps_on_a_labelled_folder(name, tmp_path):
    c = toy_config(name)
    c.dataset = labelled_folder(tmp_path / "data")
    c.update(num_steps=2, log_every=1, checkpoint_every=2, sample_every=0, eval_every=0)
    state = train_and_evaluate(c, str(tmp_path / "run"))
    assert int(state.step) == 2
    assert all(bool(np.all(np.isfinite(x))) for x in jax.tree.leaves(state))
    check_conditioning_params(name, state)
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f if '"d_loss"' in line]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
