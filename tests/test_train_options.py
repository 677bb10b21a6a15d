"""Training options of the step: DiffAugment, K discriminators, unrolled D, PacGAN packing."""

import dataclasses
import functools
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import augment as augment_lib
from ganjax import config as config_lib
from ganjax import pack as pack_lib
from ganjax import train as train_lib
from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.parallel import make_runner
from ganjax.train import init_state, train_step
from ganjax.trainer import train_and_evaluate
from tests.conftest import ROOT, assert_trees_close, load_config
from tests.test_parallel import assert_close

# The last commit before the training options existed: its train step is the
# reference that the options' "off" settings must reproduce bitwise.
BASE_COMMIT = "0e11f7e"
POLICIES = sorted(augment_lib.AUGMENTATIONS)


def ring(**overrides):
    """The :quick 2-D ring GAN (MLP 2×32, batch 64), plain SGD (exact references, as tests/test_parallel.py)."""
    c = load_config("ring_2d", "quick")
    for o in (c.optimizer_g, c.optimizer_d):
        o.name, o.learning_rate, o.b1 = "sgd", 0.05, 0.0
    c.update(overrides)
    return c


IMAGES = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
IMAGE_DATA = Dataset("fake8", (8, 8, 1), images=IMAGES)


def tiny_images(**overrides):
    """A tiny conv D (Conv4/Conv4, no dropout) and MLP G on 8×8×1 images, batch 16, SGD."""
    c = load_config("mnist_keras", "quick")
    c.update_rule, c.batch_size = "alternating", 16
    c.model.g.hidden, c.model.g.batch_norm = (16,), False
    c.model.d.widths, c.model.d.dropout = (4, 4), 0.0
    for o in (c.optimizer_g, c.optimizer_d):
        o.name, o.learning_rate, o.b1 = "sgd", 0.05, 0.0
    c.update(overrides)
    return c


def host_batch(c):
    return IMAGES[:c.n_disc * c.batch_size].reshape(c.n_disc, c.batch_size, 8, 8, 1)


def run_steps(c, steps=2, dataset=None, batch=None):
    _, gan = config_lib.build(c, dataset)
    step = jax.jit(functools.partial(train_step, gan, batch_size=c.batch_size))
    state = init_state(gan, c.seed, c.penalty_weight)
    for _ in range(steps):
        state, metrics = step(state, batch)
    return gan, state, metrics


def finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


# --- every option off: the plain step, bitwise ------------------------------------------------------------

def base_train_module(commit: str = BASE_COMMIT):
    """ganjax/train.py as of ``commit``, imported under another name (skip if git history is absent)."""
    try:
        src = subprocess.run(["git", "-C", ROOT, "show", f"{commit}:ganjax/train.py"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"the earlier train step ({commit}:ganjax/train.py) is not in this checkout: {e}")
    module = types.ModuleType(f"ganjax_train_{commit}")
    sys.modules[module.__name__] = module
    exec(compile(src, "train_before_options.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("case", ["ring_wgan_gp_n_disc2", "images_r1"])
def test_options_off_equal_the_step_before_options_bitwise(case):
    """augment='', num_discriminators=1, unroll_steps=0, pack=1 (the defaults) give the old step's numbers."""
    old = base_train_module()
    if case == "ring_wgan_gp_n_disc2":
        c, dataset, batch = ring(penalty="wgan_gp", penalty_weight=1.0, n_disc=2), None, None
        c.optimizer_d.name = "adam"
    else:
        c = tiny_images(penalty="r1", penalty_weight=1.0)
        dataset, batch = IMAGE_DATA, host_batch(tiny_images())
    c.update(augment="", num_discriminators=1, unroll_steps=0, pack=1)
    gan, new_state, new_metrics = run_steps(c, 2, dataset, batch)
    old_gan = old.GAN(**{f.name: getattr(gan, f.name) for f in dataclasses.fields(old.GAN)})
    state = old.init_state(old_gan, c.seed, c.penalty_weight)
    step = jax.jit(functools.partial(old.train_step, old_gan, batch_size=c.batch_size))
    for _ in range(2):
        state, metrics = step(state, batch)
    # The old module's GANState is another class: rebuild its fields as today's (a missing or extra field fails).
    assert_trees_close(new_state, train_lib.GANState(**{f.name: getattr(state, f.name)
                                                        for f in dataclasses.fields(state)}))
    assert all(np.array_equal(new_metrics[k], metrics[k]) for k in metrics)


# --- DiffAugment ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", POLICIES)
def test_each_augmentation_is_differentiable_and_keeps_shape_and_dtype(policy):
    x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 3), jnp.float32, -1, 1)
    y = augment_lib.augment((policy,), jax.random.key(1), x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.allclose(y, x)  # it did something
    weights = jax.random.normal(jax.random.key(2), x.shape)
    grad = jax.grad(lambda v: jnp.sum(augment_lib.augment((policy,), jax.random.key(1), v) * weights))(x)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_same_policy_and_key_give_the_same_transform_and_other_keys_other_draws():
    policy = augment_lib.parse_policy("translation,cutout,color")
    x = jax.random.uniform(jax.random.key(0), (6, 8, 8, 1), jnp.float32, -1, 1)
    a = augment_lib.augment(policy, jax.random.key(3), x)
    b = augment_lib.augment(policy, jax.random.key(3), jnp.array(x))  # identical input, e.g. real vs fake
    assert np.array_equal(a, b)
    c = augment_lib.augment(policy, jax.random.key(4), x)
    assert not np.allclose(a, c)
    # Per-example draws: the same image in every row gets different transforms.
    same = jnp.broadcast_to(x[:1], x.shape)
    out = augment_lib.augment(policy, jax.random.key(3), same)
    assert len({np.asarray(o).tobytes() for o in out}) > 1


def test_translation_moves_content_and_fills_zeros():
    img = jnp.zeros((1, 8, 8, 1)).at[0, 3, 4, 0].set(1.0) + 0.0
    img = img.at[0, :, 0, 0].set(0.5)  # a left column, to see the zero fill
    out = augment_lib.translate(img, jnp.array([[1, -2]]))  # out[i, j] = x[i + 1, j - 2]
    assert float(out[0, 2, 6, 0]) == 1.0
    assert np.all(np.asarray(out[0, :, :2, 0]) == 0)  # columns shifted in from outside are zero
    assert np.all(np.asarray(out[0, :7, 2, 0]) == 0.5) and float(out[0, 7, 2, 0]) == 0.0  # bottom row filled
    # Random translation of an 8×8 image: some shift in [-1, 1]² (DiffAugment's 1/8 ratio).
    x = jax.random.uniform(jax.random.key(0), (16, 8, 8, 1))
    y = augment_lib.translation(jax.random.key(5), x, augment_lib.single(16))
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for n in range(16):
        assert any(np.array_equal(y[n], augment_lib.translate(x[n:n + 1], jnp.array([s]))[0]) for s in shifts)


def test_cutout_zeroes_a_half_size_square_clipped_at_the_border():
    mask = np.asarray(augment_lib.cutout_mask((2, 8, 8, 1), jnp.array([[4, 4], [0, 7]])))[..., 0]
    assert mask[0].sum() == 64 - 16 and np.all(mask[0, 2:6, 2:6] == 0)  # rows/cols [c - 2, c + 2)
    assert np.all(mask[1, 0:2, 5:8] == 0) and mask[1].sum() == 64 - 2 * 3  # clipped: rows [0, 2), cols [5, 8)
    x = jnp.ones((32, 8, 8, 1))
    y = np.asarray(augment_lib.cutout(jax.random.key(0), x, augment_lib.single(32)))
    zeros = (y == 0).sum(axis=(1, 2, 3))
    assert np.all(zeros >= 4) and np.all(zeros <= 16) and np.all((y == 0) | (y == 1))


def test_augmentation_changes_what_d_sees_and_trains_finitely():
    c = tiny_images(augment="translation,cutout,color")
    _, plain, _ = run_steps(tiny_images(), 1, IMAGE_DATA, host_batch(c))
    _, state, metrics = run_steps(c, 1, IMAGE_DATA, host_batch(c))
    assert finite(state) and metrics["nonfinite"] == 0
    assert not np.allclose(jax.tree.leaves(state.d_params)[0], jax.tree.leaves(plain.d_params)[0])


def test_noise_adds_gaussian_of_the_set_std_to_any_shape_and_shards_like_the_global_batch():
    x = jnp.zeros((4096, 2))  # toy points, not images
    y = np.asarray(augment_lib.noise(jax.random.key(0), x, augment_lib.single(4096)))
    assert y.shape == x.shape
    assert abs(y.mean()) < 0.01 and abs(y.std() - augment_lib.NOISE_STD) < 0.005
    # Split over 4 shards of a named axis, each shard draws exactly its rows of the global draw.
    shard = augment_lib.Shard(1024, 4, "data")
    parts = jax.vmap(lambda xs: augment_lib.noise(jax.random.key(0), xs, shard), axis_name="data")(
        x.reshape(4, 1024, 2))
    np.testing.assert_array_equal(np.asarray(parts).reshape(4096, 2), y)


def test_noise_takes_its_std_as_a_policy_value_and_bad_values_are_refused():
    x = jnp.zeros((4096, 2))
    policy = augment_lib.parse_policy("noise:0.01")
    assert policy == ("noise:0.01",) and augment_lib.image_only(policy) == []
    y = np.asarray(augment_lib.augment(policy, jax.random.key(0), x))
    assert abs(y.std() - 0.01) < 0.0005
    # The same draw as the default σ, scaled: the value changes only σ.
    default = np.asarray(augment_lib.augment(("noise",), jax.random.key(0), x))
    np.testing.assert_allclose(y, default * (0.01 / augment_lib.NOISE_STD), rtol=1e-5, atol=1e-7)
    assert augment_lib.image_only(augment_lib.parse_policy("translation,noise:0.2")) == ["translation"]
    for bad, match in (("noise:0", r"noise's std must be a positive, finite number, got '0'"),
                       ("noise:-1", r"got '-1'"), ("noise:nan", r"got 'nan'"), ("noise:abc", r"got 'abc'"),
                       ("cutout:0.3", r"cutout takes no value; the policies that take one: noise:<std>"),
                       ("noise:0.1,noise", r"lists noise more than once"),
                       ("blur:2", r"unknown augment policy 'blur'")):
        with pytest.raises(ConfigError, match=match):
            augment_lib.parse_policy(bad)


def test_noise_augmentation_trains_a_toy_gan_and_changes_d():
    _, plain, _ = run_steps(ring(), 2)
    _, state, metrics = run_steps(ring(augment="noise"), 2)
    assert finite(state) and metrics["nonfinite"] == 0
    assert not np.allclose(jax.tree.leaves(state.d_params)[0], jax.tree.leaves(plain.d_params)[0])


# --- K discriminators -------------------------------------------------------------------------------------

def test_k_discriminators_are_stacked_distinct_and_train():
    gan, state, metrics = run_steps(ring(num_discriminators=3), 3)
    first = jax.tree.leaves(state.d_params)[0]
    assert all(x.shape[0] == 3 for x in jax.tree.leaves((state.d_params, state.d_opt)))
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[1], first[2])
    assert finite(state) and metrics["nonfinite"] == 0


def test_generator_loss_is_the_mean_over_the_k_discriminators():
    """Simultaneous update: the logged g_loss is G's loss against the initial Ds, computed here by hand on
    the D update's own generated batch (noise purpose _NOISE)."""
    c = ring(num_discriminators=3, update_rule="simultaneous")
    _, gan = config_lib.build(c)
    state = init_state(gan, 0)
    _, metrics = jax.jit(functools.partial(train_step, gan, batch_size=c.batch_size))(state, None)
    z = gan.sample_noise(jax.random.fold_in(train_lib.step_key(state), train_lib._NOISE * 1000), c.batch_size)
    fake = gan.generator.apply({"params": state.g_params}, z, train=True)
    per_d = [float(gan.loss.g_loss(gan.discriminator.apply({"params": jax.tree.map(lambda x: x[k], state.d_params)},
                                                           fake, train=True))) for k in range(3)]
    assert float(metrics["g_loss"]) == pytest.approx(np.mean(per_d), rel=1e-6)
    assert min(abs(float(metrics["g_loss"]) - p) for p in per_d) > 1e-5  # not just one of them


def test_k_discriminators_checkpoint_and_resume_bitwise(tmp_path):
    def cfg(steps):
        return ring(num_discriminators=2, num_steps=steps, checkpoint_every=2, sample_every=0, eval_every=0)

    full = train_and_evaluate(cfg(4), str(tmp_path / "full"))
    train_and_evaluate(cfg(2), str(tmp_path / "resumed"))
    resumed = train_and_evaluate(cfg(4), str(tmp_path / "resumed"))
    assert int(resumed.step) == 4 and jax.tree.leaves(resumed.d_params)[0].shape[0] == 2
    assert_trees_close(full, resumed)


# --- unrolled D -------------------------------------------------------------------------------------------

def test_unrolled_generator_gradient_equals_a_hand_written_unroll():
    """k = 1: G's gradient through one SGD step of D on fresh data, written out here with plain jax.grad
    (simultaneous rule: G's batch is the D update's, noise purpose _NOISE)."""
    lr_d = 0.5
    grads = {}
    for k in (0, 1):
        c = ring(unroll_steps=k, update_rule="simultaneous")
        c.optimizer_d.learning_rate = lr_d
        c.optimizer_g.learning_rate = 1.0  # SGD, lr 1: the G update is minus its gradient
        _, gan = config_lib.build(c)
        state = init_state(gan, 0)
        new, _ = jax.jit(functools.partial(train_step, gan, batch_size=c.batch_size))(state, None)
        grads[k] = jax.tree.map(lambda a, b: a - b, state.g_params, new.g_params)

    key = train_lib.step_key(state)
    purpose = lambda k, p: jax.random.fold_in(k, p * 1000)  # noqa: E731
    k_unroll = purpose(key, train_lib._UNROLL)
    real = gan.toy.sample(purpose(k_unroll, train_lib._DATA), c.batch_size)
    z_unroll = gan.sample_noise(purpose(k_unroll, train_lib._NOISE), c.batch_size)
    z_g = gan.sample_noise(purpose(key, train_lib._NOISE), c.batch_size)
    G = lambda p, z: gan.generator.apply({"params": p}, z, train=True)  # noqa: E731
    D = lambda p, x: gan.discriminator.apply({"params": p}, x, train=True)  # noqa: E731

    def g_loss(g_params):
        fake = G(g_params, z_unroll)
        d_grad = jax.grad(lambda p: gan.loss.d_loss(D(p, real), D(p, fake)))(state.d_params)
        unrolled = jax.tree.map(lambda p, g: p - lr_d * g, state.d_params, d_grad)
        return gan.loss.g_loss(D(unrolled, G(g_params, z_g)))

    reference = jax.jit(jax.grad(g_loss))(state.g_params)  # one compiled program, not op-by-op dispatch
    assert_trees_close(grads[1], reference, rtol=1e-4, atol=1e-6)
    differences = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(grads[1]), jax.tree.leaves(grads[0]))]
    assert max(differences) > 1e-4, differences


def test_unrolling_through_adam_stays_finite():
    """Adam's sqrt(v) at v = 0 (dead ReLUs) would make the unrolled gradient NaN without the differentiable twin."""
    c = load_config("ring_2d", "quick")
    c.unroll_steps = 2
    _, state, metrics = run_steps(c, 3)
    assert finite(state) and metrics["nonfinite"] == 0


# --- PacGAN -----------------------------------------------------------------------------------------------

def test_pack_concatenates_consecutive_examples_on_the_last_axis():
    v = jnp.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(pack_lib.pack(v, 2), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    imgs = jnp.arange(4.0)[:, None, None, None] * jnp.ones((4, 8, 8, 1))
    packed = pack_lib.pack(imgs, 2)
    assert packed.shape == (2, 8, 8, 2)
    np.testing.assert_array_equal(packed[1, 5, 5], [2.0, 3.0])
    assert pack_lib.pack(v, 1) is v


def test_pack_doubles_d_input_and_trains():
    plain = init_state(config_lib.build(ring())[1], 0)
    gan, state, metrics = run_steps(ring(pack=2), 2)
    assert gan.d_input_shape == (4,)
    assert plain.d_params["Dense_0"]["kernel"].shape == (2, 32)
    assert state.d_params["Dense_0"]["kernel"].shape == (4, 32)
    assert finite(state) and metrics["nonfinite"] == 0
    _, conv = config_lib.build(tiny_images(pack=4), IMAGE_DATA)
    assert conv.d_input_shape == (8, 8, 4)
    assert init_state(conv, 0).d_params["Conv_0"]["kernel"].shape == (3, 3, 4, 4)


def test_batch_not_divisible_by_pack_is_refused_before_compiling():
    with pytest.raises(ConfigError, match=r"pack=3 needs a batch_size divisible by 3, got batch_size=64"):
        config_lib.validate(ring(pack=3))
    c = ring(pack=4, batch_size=8)
    _, gan = config_lib.build(c)
    with pytest.raises(ConfigError, match=r"pack=4 needs a batch divisible by 4, but the batch per device is 2"):
        make_runner(gan, "pmap", 8, jax.devices()[:4])


@pytest.mark.parametrize("key,value,message", [
    ("augment", "translation,flip", r"unknown augment policy 'flip'; valid choices: color, cutout, noise, translation"),
    ("augment", "color,color", r"augment = 'color,color' lists color more than once"),
    ("augment", "noise,translation", r"augment policies translation need image data \(\[H, W, C\] examples\), "
                                     r"but dataset 'ring_2d' is a toy distribution of vectors; for it use "
                                     r"augment='' or noise"),
    ("num_discriminators", 0, r"num_discriminators must be an integer >= 1, got 0"),
    ("unroll_steps", -1, r"unroll_steps must be an integer >= 0, got -1"),
    ("pack", 0, r"pack must be an integer >= 1, got 0"),
])
def test_bad_option_values_are_refused_with_the_value_and_valid_range(key, value, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.validate(ring(**{key: value}))


def test_augment_of_non_image_data_is_refused_at_build():
    c = tiny_images(augment="cutout")
    c.model.discriminator, c.model.d = "mlp", type(c.model.d)({"hidden": (8,), "dropout": 0.0})
    with pytest.raises(ConfigError, match=r"augment policies cutout need image data \(\[H, W, C\] examples\), "
                                          r"but dataset 'mnist' gives shape \(64,\); for it use augment='' or noise"):
        config_lib.build(c, Dataset("idx:vectors", (64,), images=np.zeros((16, 64), np.uint8)))


# --- data parallelism and vmapped sweeps --------------------------------------------------------------------

def check_devices_equal_one_device(c, steps):
    batch = host_batch(c)
    _, gan = config_lib.build(c, IMAGE_DATA)
    results = {}
    for mode, n in (("none", 1), ("pmap", 4), ("shard_map", 4)):
        runner = make_runner(gan, mode, c.batch_size, jax.devices()[:n])
        state = runner.put(init_state(gan, 0))
        for _ in range(steps):
            state, metrics = runner.step(state, batch)
        results[mode] = (runner.get(state), metrics)
    ref, ref_metrics = results["none"]
    for mode in ("pmap", "shard_map"):
        state, metrics = results[mode]
        assert_close(state, ref)
        for name in ("d_loss", "g_loss", "d_real"):
            np.testing.assert_allclose(metrics[name], ref_metrics[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # CI time; test_parallel.py and test_regularizers.py check shard_map = one device by default
def test_options_on_4_devices_equal_one_device():
    """augment + pack + K=2 on 8×8 images: pmap and shard_map on 4 devices equal parallel='none'."""
    check_devices_equal_one_device(tiny_images(augment="translation,cutout,color", pack=2, num_discriminators=2), 1)


@pytest.mark.slow
def test_all_options_with_unroll_on_4_devices_equal_one_device():
    """The same with unroll_steps=1 (differentiating through the device-averaged D update) and n_disc=2, 2 steps."""
    check_devices_equal_one_device(tiny_images(augment="translation,cutout,color", pack=2, num_discriminators=2,
                                               unroll_steps=1, n_disc=2), 2)


def test_vmapped_group_with_k_discriminators_and_unroll(tmp_path):
    from ganjax.sweep import spec
    from ganjax.sweep.vmapped import GroupRun, unstack

    lrs = ("optimizer_g.learning_rate", "optimizer_d.learning_rate")
    sweep = spec.sweep_config(base="configs/ring_2d.py:quick", axes=[spec.axis(lrs, grid=(1e-4, 1e-3))],
                              fixed={"num_discriminators": 2, "unroll_steps": 1, "num_steps": 4, "log_every": 2,
                                     "checkpoint_every": 2, "eval_every": 0})
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    group = GroupRun(trials, configs, str(tmp_path / "group"))
    rows = group.run()
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(r["steps"] == 4 for r in rows)
    assert jax.tree.leaves(group.states.d_params)[0].shape[:2] == (2, 2)  # [trials, K, ...]
    lr = unstack(group.states, 1).d_opt.hyperparams["learning_rate"]
    np.testing.assert_allclose(lr, [1e-3, 1e-3])  # per-D copies of the trial's learning rate
