"""Class labels end to end: data, config checks, the conditional step, parallel layouts, resume."""

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.data import Dataset, make_dataset
from ganjax.data.batches import BatchStream, batch_indices
from ganjax.data.toy import mixture, ring_modes
from ganjax.errors import ConfigError
from ganjax.parallel import make_runner
from ganjax.train import _G_LABELS, _LABELS, _purpose, init_state, step_key, train_step
from ganjax.trainer import train_and_evaluate
from tests.conftest import assert_trees_close, load_config, trees_equal

NUM_CLASSES = 4


def labelled_images(n: int = 64, size: int = 4, classes: int = NUM_CLASSES, seed: int = 0) -> Dataset:
    """A fake image dataset whose every pixel encodes its label (value 40 · label + noise < 40)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.int32)
    images = (40 * labels[:, None, None, None] + rng.integers(0, 40, (n, size, size, 1))).astype(np.uint8)
    return Dataset("fake", (size, size, 1), images=images, labels=labels, num_classes=classes)


def image_config(num_steps: int = 4, **overrides):
    """A tiny conditional MLP GAN (concat) on :func:`labelled_images`, without dropout, plain SGD."""
    c = load_config("fashion_mnist_mlp", "quick")
    c.model.num_classes = NUM_CLASSES
    c.batch_size, c.num_steps = 8, num_steps
    c.model.g.hidden, c.model.d.hidden, c.model.d.dropout = (16,), (16,), 0.0
    c.model.z_dim = 8
    c.log_every, c.checkpoint_every, c.sample_every, c.eval_every = 2, 2, 0, 0
    for o in (c.optimizer_g, c.optimizer_d):
        o.name, o.learning_rate, o.b1 = "sgd", 0.05, 0.0
    for key, value in overrides.items():
        c[key] = value
    return c


def ring_config(**model):
    c = load_config("ring_2d", "quick")
    c.model.num_classes = 8
    for o in (c.optimizer_g, c.optimizer_d):
        o.name, o.learning_rate, o.b1 = "sgd", 0.05, 0.0
    for key, value in model.items():
        c.model[key] = value
    return c


# --- data -------------------------------------------------------------------------------------------------

def test_batch_stream_serves_the_labels_of_its_images():
    ds = labelled_images()
    stream = BatchStream(ds.images, seed=3, batch_size=8, position=9, labels=ds.labels)
    for position in range(9, 20):  # crosses epoch boundaries (8 batches per epoch)
        images, labels = stream.next()
        idx = batch_indices(3, position, 8, 64)
        np.testing.assert_array_equal(labels, ds.labels[idx])
        np.testing.assert_array_equal(images[:, 0, 0, 0] // 40, labels)  # each image's own label
    plain = BatchStream(ds.images, seed=3, batch_size=8, position=9).next()
    np.testing.assert_array_equal(plain, BatchStream(ds.images, 3, 8, 9, labels=ds.labels).next()[0])


def test_mixture_labels_are_the_mode_of_each_point():
    modes = ring_modes(8)
    toy = mixture("ring_2d", modes, 0.02)
    x, labels = toy.sample_labelled(jax.random.key(0), 512)
    nearest = np.argmin(((np.asarray(x)[:, None] - modes[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(np.asarray(labels), nearest)
    assert set(np.asarray(labels).tolist()) == set(range(8))
    np.testing.assert_array_equal(toy.sample(jax.random.key(0), 512), x)  # unconditional draw: the same points
    finite = make_dataset("ring_2d", {"num_examples": 100, "sample_seed": 1})
    x, labels = finite.toy.sample_labelled(jax.random.key(2), 300)
    nearest = np.argmin(((np.asarray(x)[:, None] - finite.toy.modes[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(np.asarray(labels), nearest)
    assert finite.num_classes == 8 and make_dataset("gaussian_1d").num_classes == 0


def test_folder_class_subfolders_are_the_classes_in_sorted_order(tmp_path):
    from PIL import Image

    from ganjax.data.images import label_classes, load_images

    for cls, value in (("zebra", 200), ("ant", 10), ("cat", 100)):
        os.makedirs(tmp_path / "f" / cls)
        for i in range(2):
            Image.fromarray(np.full((4, 4), value + i, np.uint8)).save(tmp_path / "f" / cls / f"{i}.png")
    name = f"folder:{tmp_path / 'f'}"
    images, labels = load_images(name, data_dir=str(tmp_path))
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])  # ant, cat, zebra
    np.testing.assert_array_equal(images[:, 0, 0, 0], [10, 11, 100, 101, 200, 201])
    assert label_classes(name, labels) == 3
    flat = tmp_path / "flat"
    os.makedirs(flat)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(flat / "a.png")
    assert label_classes(f"folder:{flat}", np.zeros(1, np.int64)) == 0


def test_fashion_mnist_carries_its_ten_classes(fashion_data_dir):
    ds = make_dataset("fashion_mnist", data_dir=fashion_data_dir)
    assert ds.num_classes == 10 and ds.labels.dtype == np.int32 and ds.labels.shape == (60_000,)
    assert set(np.unique(ds.labels)) == set(range(10))


# --- config checks ----------------------------------------------------------------------------------------

def test_num_classes_with_an_unconditional_generator_is_refused_naming_the_conditional_ones():
    c = load_config("dcgan_fashion_mnist", "quick")
    c.model.num_classes = 10
    with pytest.raises(ConfigError, match=r"generator 'dcgan' is unconditional.*conditional generators: .*mlp"):
        config_lib.build(c, labelled_images(size=28, classes=10))


def test_acgan_needs_a_discriminator_with_a_class_head():
    c = load_config("dcgan_fashion_mnist", "quick")
    c.model.generator, c.model.g = "mlp", c.model.g.__class__()
    c.model.num_classes, c.acgan_weight = 10, 1.0
    with pytest.raises(ConfigError, match=r"discriminator 'dcgan' has no ACGAN class head.*with one: .*mlp"):
        config_lib.build(c, labelled_images(size=28, classes=10))


@pytest.mark.parametrize("dataset,message", [
    (Dataset("plain", (4, 4, 1), images=np.zeros((64, 4, 4, 1), np.uint8), num_classes=0),
     r"dataset 'fashion_mnist' has no class labels"),
    (labelled_images(classes=3), r"model.num_classes = 4, but dataset 'fashion_mnist' has 3 classes"),
])
def test_a_dataset_without_labels_or_with_other_classes_is_refused(dataset, message):
    c = image_config()
    with pytest.raises(ConfigError, match=message):
        config_lib.build(c, dataset)


def test_a_toy_without_labels_is_refused():
    c = load_config("gaussian_1d", "quick")
    c.model.num_classes = 2
    with pytest.raises(ConfigError, match=r"dataset 'gaussian_1d' has no class labels"):
        config_lib.build(c)


@pytest.mark.parametrize("key,value,message", [
    ("model.num_classes", -1, r"model.num_classes must be an integer >= 0"),
    ("model.class_distribution", (1.0, 2.0), r"model.class_distribution must be 8 non-negative weights"),
    ("model.class_distribution", (1.0,) * 7 + (-1.0,), r"must be 8 non-negative weights"),
    ("model.class_distribution", (0.0,) * 8, r"with a positive sum"),
    ("acgan_weight", -0.5, r"acgan_weight must be a number >= 0"),
    ("pack", 2, r"pack = 2 with model.num_classes = 8.*use pack=1"),
])
def test_bad_conditioning_keys_are_refused(key, value, message):
    c = ring_config()
    section, _, name = key.rpartition(".")
    (c[section] if section else c)[name] = value
    with pytest.raises(ConfigError, match=message):
        config_lib.validate(c)


def test_class_distribution_or_acgan_without_classes_is_refused():
    c = load_config("ring_2d", "quick")
    c.model.class_distribution = (1.0,) * 8
    with pytest.raises(ConfigError, match=r"needs model.num_classes > 0"):
        config_lib.validate(c)
    c = load_config("ring_2d", "quick")
    c.acgan_weight = 1.0
    with pytest.raises(ConfigError, match=r"acgan_weight = 1.0 needs model.num_classes > 0"):
        config_lib.validate(c)


# --- the step ---------------------------------------------------------------------------------------------

def test_generated_labels_come_from_the_step_key_uniform_or_weighted():
    _, gan = config_lib.build(ring_config())
    key = jax.random.key(5)
    np.testing.assert_array_equal(gan.sample_labels(key, 64), jax.random.randint(key, (64,), 0, 8, jnp.int32))
    weights = (0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    _, weighted = config_lib.build(ring_config(class_distribution=weights))
    labels = np.asarray(weighted.sample_labels(key, 20_000))
    counts = np.bincount(labels, minlength=8) / labels.size
    np.testing.assert_allclose(counts, np.array(weights) / 4.0, atol=0.015)
    # The label purposes come after every earlier one, so unconditional keys are unchanged.
    assert (_LABELS, _G_LABELS) == (14, 15)


def test_labels_reach_g_and_d_and_change_the_step():
    """The real labels enter D's update (changing them changes the result); fixed labels are deterministic."""
    ds = labelled_images()
    c = image_config()
    _, gan = config_lib.build(c, ds)
    assert gan.num_classes == NUM_CLASSES and gan.d_conditional
    step = jax.jit(functools.partial(train_step, gan, batch_size=8))
    images, labels = ds.images[None, :8], ds.labels[None, :8]
    s0 = init_state(gan, 0)
    a, _ = step(s0, (images, labels))
    b, _ = step(init_state(gan, 0), (images, labels))
    other, _ = step(init_state(gan, 0), (images, (labels + 1) % NUM_CLASSES))
    assert_trees_close(a, b)
    assert not trees_equal(a.d_params, other.d_params)
    # D's first kernel has rows for the flattened image and the one-hot label; G's for z and the label.
    assert s0.d_params["Dense_0"]["kernel"].shape[0] == 16 + NUM_CLASSES
    assert s0.g_params["Dense_0"]["kernel"].shape[0] == 8 + NUM_CLASSES


def test_unconditional_gan_is_unchanged_by_the_new_keys():
    """num_classes = 0 builds the same GAN and state as a config saved before the conditional keys existed."""
    ds = labelled_images()
    old = image_config()
    del old.model["num_classes"], old.model["class_distribution"], old["acgan_weight"]
    new = image_config()
    new.model.num_classes = 0
    _, old_gan = config_lib.build(old, ds)
    _, new_gan = config_lib.build(new, ds)
    same_tx = dict(g_tx=new_gan.g_tx, d_tx=new_gan.d_tx, d_tx_unrolled=new_gan.d_tx_unrolled)
    assert dataclasses.replace(old_gan, **same_tx) == new_gan
    assert new_gan.num_classes == 0 and not new_gan.d_conditional
    step = lambda gan: jax.jit(lambda s, b: train_step(gan, s, b, 8))(init_state(gan, 0), ds.images[None, :8])  # noqa: E731
    assert_trees_close(step(old_gan), step(new_gan))


# --- layouts, resume ----------------------------------------------------------------------------------------

def test_conditional_pmap_and_shard_map_equal_single_device_on_toy_and_image_data():
    """Labels are drawn for the global batch and sliced, and host labels are split like the images."""
    c = ring_config()
    _, gan = config_lib.build(c)
    ds = labelled_images()
    ci = image_config()
    _, igan = config_lib.build(ci, ds)
    batch = (ds.images[None, :8], ds.labels[None, :8])
    for g, b, size in ((gan, None, c.batch_size), (igan, batch, 8)):
        results = []
        for mode, n in (("none", 1), ("pmap", 4), ("shard_map", 8)):
            runner = make_runner(g, mode, size, jax.devices()[:n])
            state = runner.put(init_state(g, 0))
            for _ in range(2):
                state, _ = runner.step(state, b)
            results.append(runner.get(state))
        assert_trees_close(results[1], results[0], rtol=2e-5, atol=2e-6)
        assert_trees_close(results[2], results[0], rtol=2e-5, atol=2e-6)


def test_conditional_resume_and_steps_per_call_equal_the_plain_run(tmp_path):
    """Image data with labels, n_disc = 2: a resumed run and a run of 2 steps per call equal the plain one."""
    ds = labelled_images()
    full = train_and_evaluate(image_config(6, n_disc=2, steps_per_call=1), str(tmp_path / "full"), dataset=ds)
    work = str(tmp_path / "resumed")
    train_and_evaluate(image_config(4, n_disc=2, steps_per_call=1), work, dataset=ds)
    resumed = train_and_evaluate(image_config(6, n_disc=2, steps_per_call=1), work, dataset=ds)
    assert_trees_close(full, resumed)
    scanned = train_and_evaluate(image_config(6, n_disc=2, steps_per_call=2), str(tmp_path / "k2"), dataset=ds)
    assert_trees_close(full, scanned, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_vmapped_sweep_of_a_conditional_config_equals_its_trials_alone(tmp_path):
    from ganjax.sweep import spec
    from ganjax.sweep.vmapped import GroupRun, unstack

    c = image_config(4, steps_per_call=0)
    ds = labelled_images()
    keys = ("model.num_classes", "batch_size", "num_steps", "model.g.hidden", "model.d.hidden", "model.d.dropout",
            "model.z_dim", "log_every", "checkpoint_every", "sample_every", "eval_every", "optimizer_g.name",
            "optimizer_d.name", "optimizer_d.learning_rate", "optimizer_g.b1", "optimizer_d.b1")
    flat = config_lib.flatten(c.to_dict())
    sweep = spec.sweep_config(base="configs/fashion_mnist_mlp.py:quick", seeds=2,
                              axes=[spec.axis(("optimizer_g.learning_rate",), grid=(0.05,))],
                              fixed={k: flat[k] for k in keys})
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    group = GroupRun(trials, configs, str(tmp_path / "group"), ds)
    group.run()
    for i, (trial, tc) in enumerate(zip(trials, configs)):
        alone = train_and_evaluate(tc, str(tmp_path / trial.id), dataset=ds)
        assert_trees_close(unstack(group.states, i).g_params, alone.g_params, rtol=1e-4, atol=1e-6)
        assert_trees_close(unstack(group.states, i).d_params, alone.d_params, rtol=1e-4, atol=1e-6)



def test_a_config_saved_before_the_conditional_keys_reads_them_as_off():
    """Resuming a workdir whose config.json predates model.num_classes, model.class_distribution and
    acgan_weight: they count as their "off" values, not as changes."""
    from ganjax.resume import changed_values

    unconditional = image_config()
    unconditional.model.num_classes = 0
    saved = config_lib.to_plain(unconditional)
    del saved["model"]["num_classes"], saved["model"]["class_distribution"], saved["acgan_weight"]
    assert changed_values(saved, config_lib.to_plain(unconditional)) == {}
    assert changed_values(saved, config_lib.to_plain(image_config())) == {"model.num_classes": {"old": 0, "new": 4}}
