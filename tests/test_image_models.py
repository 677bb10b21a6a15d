"""Image architectures (dcgan, dcgan_upsample, infogan, sngan_cnn, sngan_resnet): shapes at every
resolution, the reference nets' parameter counts, spectral normalisation, train steps, the configs,
and a short real Fashion-MNIST run that must move G's samples towards the data."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.checkpoint import Checkpointer
from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.models import GENERATORS, build_discriminator, build_generator
from ganjax.models.layers import RESOLUTIONS
from ganjax.train import generate, init_state, train_step
from tests.conftest import assert_trees_close, load_config, override, trees_equal

IMAGE_ARCHS = ("dcgan", "dcgan_upsample", "infogan", "sngan_cnn", "sngan_resnet")
TINY = {"dcgan": {"width": 4}, "dcgan_upsample": {"widths": (4, 8)}, "infogan": {"width": 4, "fc_width": 8},
        "sngan_cnn": {"width": 4}, "sngan_resnet": {"width": 4}}


def count(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def abstract_variables(module, example):
    """Shapes of ``module.init`` (no compilation)."""
    return jax.eval_shape(lambda: module.init({"params": jax.random.key(0)}, example, train=False))


def output_shape(module, example, batch: int = 3):
    """Shape of a train-mode call on ``batch`` examples (init and apply traced together, not compiled)."""
    def run():
        variables = module.init({"params": jax.random.key(0)}, example, train=False)
        x = jnp.zeros((batch,) + example.shape[1:], example.dtype)
        return module.apply(variables, x, train=True, mutable=[k for k in variables if k != "params"])[0]
    return jax.eval_shape(run)


def supported(arch: str) -> tuple[int, ...]:
    return GENERATORS[arch].resolutions


@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_every_resolution_and_channel_count_has_the_right_shapes(arch):
    for i, size in enumerate(RESOLUTIONS):
        channels = (1, 3)[i % 2]  # 1 and 3 channels alternate over the resolutions ...
        for c in ((1, 3) if size == 28 else (channels,)):  # ... and both at 28
            if size not in supported(arch):
                with pytest.raises(ConfigError, match=rf"generator '{arch}' cannot produce examples of shape "
                                                      rf"\({size}, {size}, {c}\).*H in 32, 64, 128, 256"):
                    build_generator(arch, (size, size, c), {"width": 4})
                continue
            g = build_generator(arch, (size, size, c), {"width": 4})
            out = output_shape(g, jnp.zeros((2, 16)))
            assert out.shape == (3, size, size, c) and out.dtype == jnp.float32, (arch, size, c)
            d = build_discriminator(arch, TINY[arch])
            logits = output_shape(d, jnp.zeros((2, size, size, c)))
            assert logits.shape == (3,) and logits.dtype == jnp.float32, (arch, size, c)


@pytest.mark.parametrize("shape", [(48, 48, 3), (64, 32, 3), (100, 100, 1), (28, 28)])
def test_a_resolution_the_generator_cannot_make_is_refused_at_build_time(shape):
    with pytest.raises(ConfigError, match=rf"generator 'dcgan' cannot produce examples of shape "
                                          rf"\({', '.join(map(str, shape))},?\): it makes square \[H, H, C\] "
                                          rf"images with H in 28, 32, 64, 128, 256"):
        build_generator("dcgan", shape)


def test_a_conv_generator_on_vectors_is_refused_by_build():
    c = load_config("dcgan_cifar10", "quick")
    c.model.discriminator, c.model.d = "mlp", type(c.model.d)()
    with pytest.raises(ConfigError, match=r"generator 'dcgan' cannot produce examples of shape \(100,\)"):
        config_lib.build(c, Dataset("vectors", (100,), images=np.zeros((64, 100), np.uint8)))


def test_dcgan64_matches_the_pytorch_tutorial_parameter_counts():
    """The PyTorch DCGAN tutorial (pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html), nz=100,
    ngf=ndf=64, nc=3, bias-free convs; BatchNorm's weight/bias are parameters in both frameworks
    (running statistics are `batch_stats` here, buffers there).

    G: ConvT(100→512, 4) 819,200 + BN 1,024 + ConvT(512→256) 2,097,152 + BN 512 + ConvT(256→128) 524,288
       + BN 256 + ConvT(128→64) 131,072 + BN 128 + ConvT(64→3) 3,072 = 3,576,704 (the projection is a
       bias-free Dense 100→4·4·512, the same 819,200 weights).
    D: Conv(3→64, 4) 3,072 + Conv(64→128) 131,072 + BN 256 + Conv(128→256) 524,288 + BN 512
       + Conv(256→512) 2,097,152 + BN 1,024 + Conv(512→1, 4) 8,192 = 2,765,568.
    """
    c = load_config("dcgan_celeba64")
    g = build_generator(c.model.generator, (64, 64, 3), c.model.g.to_dict())
    d = build_discriminator(c.model.discriminator, c.model.d.to_dict())
    assert count(abstract_variables(g, jnp.zeros((2, c.model.z_dim)))["params"]) == 3_576_704
    d_vars = abstract_variables(d, jnp.zeros((2, 64, 64, 3)))
    assert count(d_vars["params"]) == 2_765_568
    assert count(d_vars["batch_stats"]) == 2 * (128 + 256 + 512)


def _conv(k, cin, cout):  # kernel + bias
    return k * k * cin * cout + cout


def test_sngan_cifar_parameter_counts_follow_the_paper_tables():
    """Miyato et al. 2018, appendix B, Tables 3 (standard CNN) and 4 (ResNet), CIFAR-10, z ∈ R^128,
    with biases everywhere (the authors' Chainer links have them), BatchNorm γ/β counted as parameters.

    Deliberate choice: the CNN G normalises the dense layer's 4·4·512 units with BatchNorm + ReLU before the
    first deconv, as the authors' code does (Table 3 lists no BN there): 2·8192 = 16,384 parameters.
    """
    cnn_g = ((128 * 8192 + 8192) + 2 * 8192                 # dense → 4×4×512, BN over its 8192 units
             + _conv(4, 512, 256) + 2 * 256 + _conv(4, 256, 128) + 2 * 128 + _conv(4, 128, 64) + 2 * 64
             + _conv(3, 64, 3))
    cnn_d = (_conv(3, 3, 64) + _conv(4, 64, 64) + _conv(3, 64, 128) + _conv(4, 128, 128) + _conv(3, 128, 256)
             + _conv(4, 256, 256) + _conv(3, 256, 512) + (4 * 4 * 512 + 1))
    g_block = 2 * _conv(3, 256, 256) + _conv(1, 256, 256) + 2 * (2 * 256)  # two convs, 1×1 shortcut, two BN
    res_g = (128 * 4096 + 4096) + 3 * g_block + 2 * 256 + _conv(3, 256, 3)
    res_d = ((_conv(3, 3, 128) + _conv(3, 128, 128) + _conv(1, 3, 128))         # optimised block (down)
             + (2 * _conv(3, 128, 128) + _conv(1, 128, 128))                    # block down
             + 2 * (2 * _conv(3, 128, 128))                                     # two blocks, identity shortcut
             + (128 + 1))                                                       # dense
    assert (cnn_g, cnn_d, res_g, res_d) == (3_828_739, 2_935_873, 4_276_739, 1_053_825)
    for variant, (n_g, n_d) in (("", (res_g, res_d)), ("cnn", (cnn_g, cnn_d))):
        c = load_config("sngan_cifar10", variant)
        g = build_generator(c.model.generator, (32, 32, 3), c.model.g.to_dict())
        d = build_discriminator(c.model.discriminator, c.model.d.to_dict())
        assert count(abstract_variables(g, jnp.zeros((2, c.model.z_dim)))["params"]) == n_g
        d_vars = abstract_variables(d, jnp.zeros((2, 32, 32, 3)))
        assert count(d_vars["params"]) == n_d
        # one u per spectrally normalised kernel: 7 convs + dense (CNN); 10 convs + dense (ResNet)
        assert set(d_vars) == {"params", "spectral"}
        assert len(jax.tree.leaves(d_vars["spectral"])) == (8 if variant else 11)


@pytest.mark.parametrize("kernel_size", [3, 4])
@pytest.mark.parametrize("shape,features,use_bias", [((3, 7, 7, 5), 4, True), ((2, 4, 4, 3), 8, False),
                                                     ((2, 5, 6, 16), 2, True), ((2, 3, 5, 6), 7, False)])
def test_fast_transposed_conv_equals_flax_conv_transpose(kernel_size, shape, features, use_bias):
    """layers.ConvTranspose is nn.ConvTranspose(k, strides 2, 'SAME'): same parameters, outputs and
    gradients w.r.t. the input and the parameters (odd, even and non-square inputs)."""
    from flax import linen as nn

    from ganjax.models.layers import ConvTranspose

    kx, kp, kb, kg = jax.random.split(jax.random.key(0), 4)
    x = jax.random.normal(kx, shape)
    reference = nn.ConvTranspose(features, (kernel_size, kernel_size), strides=(2, 2), padding="SAME",
                                 use_bias=use_bias)
    fast = ConvTranspose(features, kernel_size, use_bias=use_bias)
    params = reference.init(kp, x)
    assert jax.tree.map(jnp.shape, fast.init(kp, x)) == jax.tree.map(jnp.shape, params)
    params = jax.tree.map(lambda a: a + jax.random.normal(kb, a.shape), params)  # non-zero bias
    cotangent = jax.random.normal(kg, (shape[0], 2 * shape[1], 2 * shape[2], features))

    def outputs_and_grads(module):
        loss = lambda p, x: jnp.sum(module.apply(p, x) * cotangent)
        return module.apply(params, x), jax.grad(loss, argnums=(0, 1))(params, x)

    want = jax.jit(outputs_and_grads, static_argnums=0)(reference)
    got = jax.jit(outputs_and_grads, static_argnums=0)(fast)
    assert got[0].shape == want[0].shape == cotangent.shape
    jax.tree.map(lambda g, w: np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-4),
                 got, want)


def test_fast_transposed_conv_refuses_other_kernel_sizes():
    from ganjax.models.layers import ConvTranspose

    with pytest.raises(ConfigError, match=r"kernel_size 5 is not supported; valid choices: 3, 4"):
        ConvTranspose(4, 5).init(jax.random.key(0), jnp.zeros((1, 4, 4, 2)))


def test_generators_keep_flax_conv_transpose_parameter_paths():
    """Checkpoints written when the generators used nn.ConvTranspose still fit their parameter trees."""
    g = build_generator("dcgan", (64, 64, 3), TINY["dcgan"])
    params = abstract_variables(g, jnp.zeros((2, 100)))["params"]
    assert {k: v["kernel"].shape for k, v in params.items() if k.startswith("ConvTranspose")} == {
        "ConvTranspose_0": (4, 4, 32, 16), "ConvTranspose_1": (4, 4, 16, 8), "ConvTranspose_2": (4, 4, 8, 4),
        "ConvTranspose_3": (4, 4, 4, 3)}


@pytest.mark.parametrize("arch,valid", [("sngan_cnn", "none, batch, layer, spectral")])
def test_bad_norm_is_a_config_error_listing_the_choices(arch, valid):
    with pytest.raises(ConfigError, match=rf"model.d.norm = 'group' is invalid; it must be one of {valid}"):
        build_discriminator(arch, {"norm": "group"})
    c = load_config("dcgan_cifar10", "quick")
    c.model.d.norm = "spectrl"
    with pytest.raises(ConfigError, match=r"model.d.norm = 'spectrl' is invalid"):
        config_lib.build(c, Dataset("cifar10", (32, 32, 3), images=np.zeros((64, 32, 32, 3), np.uint8)))


def fake_dataset(name, shape, n=64):
    return Dataset(name, shape, images=np.zeros((n,) + shape, np.uint8))


def jitted_step(gan, batch_size):
    return jax.jit(functools.partial(train_step, gan, batch_size=batch_size))


def random_batches(gan, n_disc, batch_size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n_disc, batch_size) + gan.example_shape, dtype=np.uint8)


# (config, variant, example shape, overrides): every new G/D pair, every D norm.
STEP_CASES = {
    "dcgan": ("dcgan_cifar10", "quick", (32, 32, 3), {"model.d.norm": "layer"}),
    "dcgan_upsample": ("cats_vs_dogs_256", "quick", (32, 32, 3), {}),
    "infogan": ("infogan_fashion_mnist", "quick", (28, 28, 1), {"model.d.norm": "none", "model.g.fc_width": 16}),
    "sngan_resnet": ("sngan_cifar10", "quick", (32, 32, 3), {"n_disc": 1}),
    "sngan_cnn": ("sngan_cifar10", "cnn,quick", (32, 32, 1), {"n_disc": 1, "model.g.width": 4, "model.d.width": 4}),
}


def step_case(pair, tiny: bool = False):
    """``(config, gan)`` of ``STEP_CASES[pair]`` at batch 4; ``tiny``: with ``TINY_STEP[pair]`` applied too."""
    name, variant, shape, overrides = STEP_CASES[pair]
    if tiny:
        shape, extra = TINY_STEP[pair]
        overrides = {**overrides, **extra}
    c = override(load_config(name, variant), overrides)
    c.batch_size = 4
    _, gan = config_lib.build(c, fake_dataset(c.dataset, shape))
    return c, gan


# Pairs whose compiled step the default suite would not run otherwise, at a size that compiles in seconds:
# (example shape, overrides on top of STEP_CASES).
TINY_STEP = {
    "dcgan_upsample": ((32, 32, 1), {"model.g.width": 4, "model.d.widths": (4, 8)}),
    "sngan_resnet": ((32, 32, 1), {"model.g.width": 4, "model.d.width": 4}),
}


@pytest.mark.parametrize("pair", list(STEP_CASES))
def test_train_step_traces_for_every_pair(pair):
    """The whole step (n_disc D updates on separate real/fake calls of a stateful D, then the G update
    through D in train mode) traces for every pair and keeps the state's structure (no compilation)."""
    c, gan = step_case(pair)
    state = jax.eval_shape(lambda: init_state(gan, 0))
    new, metrics = jax.eval_shape(lambda s, b: train_step(gan, s, b, 4), state, random_batches(gan, c.n_disc, 4))
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert all(a.shape == b.shape for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)))
    assert all(m.shape == () for m in metrics.values())
    assert set(state.d_state) == {"batch": {"batch_stats"}, "layer": set(), "none": set(),
                                  "spectral": {"spectral"}}[c.model.d.get("norm", "batch")]


def run_one_step(pair, tiny: bool = False):
    """One jitted train step of ``pair`` from ``init_state(gan, 0)`` → ``(gan, state, new state, metrics)``."""
    c, gan = step_case(pair, tiny)
    state = init_state(gan, 0)
    new, metrics = jitted_step(gan, 4)(state, random_batches(gan, c.n_disc, 4))
    return gan, state, new, metrics


@pytest.fixture(scope="module")
def sngan_cnn_step():
    return run_one_step("sngan_cnn")


def check_one_step(state, new, metrics):
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert float(metrics["nonfinite"]) == 0.0 and int(new.step) == 1
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(new))
    assert not trees_equal(state.g_params, new.g_params)
    assert not trees_equal(state.d_params, new.d_params)
    if state.d_state:  # BatchNorm statistics / power-iteration vectors were updated
        assert not trees_equal(state.d_state, new.d_state)


def test_one_train_step_with_a_spectral_norm_discriminator_is_finite(sngan_cnn_step):
    """A D update (real and fake through a D whose u vectors change), then G through that D."""
    _, state, new, metrics = sngan_cnn_step
    check_one_step(state, new, metrics)


@pytest.mark.slow
@pytest.mark.parametrize("pair", ["dcgan", "dcgan_upsample", "sngan_resnet"])
def test_one_train_step_of_each_other_pair_is_finite(pair):
    """Compiled and run (infogan runs on real data below; the fast sibling traces every pair)."""
    _, state, new, metrics = run_one_step(pair)
    check_one_step(state, new, metrics)


@pytest.mark.parametrize("pair", sorted(TINY_STEP))
def test_one_compiled_train_step_of_a_tiny_pair_is_finite_and_learns(pair):
    """dcgan_upsample and sngan_resnet compiled and run at widths 4-8 on 32×32×1 (the full-width step is -m slow)."""
    _, state, new, metrics = run_one_step(pair, tiny=True)
    check_one_step(state, new, metrics)


@pytest.mark.parametrize("name,variant,shape", [
    ("dcgan_celeba64", "", (64, 64, 3)), ("dcgan_celeba64", "quick", (64, 64, 3)),
    ("cats_vs_dogs_256", "", (256, 256, 3)), ("dcgan_cifar10", "", (32, 32, 3)),
    ("infogan_fashion_mnist", "", (28, 28, 1)), ("sngan_cifar10", "", (32, 32, 3)),
    ("dcgan_fashion_mnist", "", (28, 28, 1)),
])
def test_configs_build_their_nets_for_their_datasets(name, variant, shape):
    c = load_config(name, variant)
    _, gan = config_lib.build(c, fake_dataset(c.dataset, shape, n=c.batch_size * c.n_disc))
    assert gan.example_shape == shape
    g_out = output_shape(gan.generator, jnp.zeros((2, c.model.z_dim)))
    assert g_out.shape == (3,) + shape
    assert output_shape(gan.discriminator, jnp.zeros((2,) + shape)).shape == (3,)
    if c.dataset in ("celeb_a", "cats_vs_dogs"):  # the data options the image loader applies
        assert (c.data.crop, c.data.image_size) == ("center", shape[0])


# ---- spectral normalisation ----

@pytest.fixture(scope="module")
def sn_discriminator():
    """A small SN-GAN CNN D, its initial variables and the variables after 60 train-mode calls."""
    d = build_discriminator("sngan_cnn", {"width": 4})
    x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
    # An RBG key: its random draws compile in a fraction of threefry's time (the values do not matter).
    variables = jax.jit(functools.partial(d.init, train=False))({"params": jax.random.key(0, impl="rbg")}, x)

    @jax.jit
    def power_iterate(variables):
        def body(_, spectral):
            _, new = d.apply({**variables, "spectral": spectral}, x, train=True, mutable=["spectral"])
            return new["spectral"]
        return {**variables, "spectral": jax.lax.fori_loop(0, 60, body, variables["spectral"])}

    return d, x, variables, power_iterate(variables)


def normalized_kernels(d, variables, x):
    _, inter = d.apply(variables, x, train=False, mutable=["intermediates"])
    return jax.tree.leaves(inter["intermediates"])


def test_spectral_norm_makes_every_kernels_largest_singular_value_one(sn_discriminator):
    d, x, initial, iterated = sn_discriminator
    kernels = normalized_kernels(d, iterated, x)
    assert len(kernels) == 8  # 7 convs + the dense layer
    sigmas = [np.linalg.svd(np.asarray(k).reshape(-1, k.shape[-1]), compute_uv=False)[0] for k in kernels]
    np.testing.assert_allclose(sigmas, 1.0, atol=0.05)
    # From the random initial u the estimate is too small (σ(W/σ̂) > 1) for the large kernels.
    first = [np.linalg.svd(np.asarray(k).reshape(-1, k.shape[-1]), compute_uv=False)[0]
             for k in normalized_kernels(d, initial, x)]
    assert max(first) > 1.05
    # From the random initial u, train mode (collection mutable) takes a power-iteration step and writes
    # every u; eval mode reads u and writes none, even when the collection is mutable.
    _, trained = d.apply(initial, x, train=True, mutable=["spectral"])
    _, evaluated = d.apply(initial, x, train=False, mutable=["spectral"])
    assert_trees_close(evaluated["spectral"], initial["spectral"])
    assert jax.tree.structure(trained["spectral"]) == jax.tree.structure(initial["spectral"])
    for (path, u0), u1 in zip(jax.tree_util.tree_leaves_with_path(initial["spectral"]),
                              jax.tree.leaves(trained["spectral"])):
        if u0.size > 1:
            assert not np.array_equal(u0, u1), jax.tree_util.keystr(path)
        else:  # the dense layer's 1-d u (one output unit) is a unit vector: ±1 before and after
            np.testing.assert_array_equal(np.abs(u1), 1.0, err_msg=jax.tree_util.keystr(path))


def test_spectral_state_is_checkpointed_with_d_state(sngan_cnn_step, tmp_path):
    """The u vectors are in GANState.d_state: saved and restored exactly by the Checkpointer."""
    gan, initial, state, _ = sngan_cnn_step
    ckpt = Checkpointer(str(tmp_path), keep=1)
    ckpt.save(1, state, {"data_position": 0})
    ckpt.wait()
    restored, _, step = ckpt.restore(jax.eval_shape(lambda: initial), lambda: "")
    ckpt.close()
    assert step == 1 and set(restored.d_state) == {"spectral"}
    assert_trees_close(restored.d_state, state.d_state)
    assert not trees_equal(state.d_state, initial.d_state)


# ---- a real Fashion-MNIST run ----

def pixel_statistics_gap(images: np.ndarray, real: np.ndarray) -> float:
    """RMS over pixels of the difference of the per-pixel mean images plus that of the per-pixel std images."""
    rms = lambda a: float(np.sqrt(np.mean(np.square(a))))
    return rms(images.mean(0) - real.mean(0)) + rms(images.std(0) - real.std(0))


@pytest.mark.slow  # CI time; tests/test_fashion_smoke.py trains a quick image config on the real data by default
def test_infogan_quick_run_on_fashion_mnist_moves_samples_towards_the_data(fashion_data_dir, tmp_path):
    """configs/infogan_fashion_mnist.py:quick on the real data must bring G's samples clearly closer
    to the data's pixel statistics.

    Criterion: the gap between the per-pixel mean and std images of 512 generated and 512 real images
    (RMS over pixels, in [-1, 1] units; see pixel_statistics_gap) must shrink at least 3× from step 0.
    Why it is meaningful: an untrained G outputs near-constant grey (tanh of small activations), so its
    mean image misses the garment silhouettes and its std image is ~0; matching the per-pixel mean and
    spread of the data (where garments are, how much they vary) is the first thing a working GAN
    learns, while a broken update (wrong sign, no G step, frozen BatchNorm) keeps or grows the gap.
    The whole run takes ~20 s.
    """
    from ganjax.trainer import train_and_evaluate

    c = load_config("infogan_fashion_mnist", "quick")
    c.data_dir = fashion_data_dir
    c.checkpoint_every = 0
    dataset, gan = config_lib.build(c)
    real = dataset.images[np.random.default_rng(0).choice(len(dataset.images), 512, replace=False)]
    real = real.astype(np.float32) / 127.5 - 1.0
    z = gan.sample_noise(jax.random.key(99), 512)
    sample = jax.jit(lambda s: generate(gan, s, z))
    before = pixel_statistics_gap(np.asarray(sample(init_state(gan, c.seed))), real)
    state = train_and_evaluate(c, str(tmp_path / "infogan"), dataset)
    after = pixel_statistics_gap(np.asarray(sample(state)), real)
    assert int(state.step) == c.num_steps
    assert after < before / 3, (before, after)
