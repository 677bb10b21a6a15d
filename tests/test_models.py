"""Architectures: the seeds' nets have the seeds' shapes and parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from ganjax.errors import ConfigError
from ganjax.models import build_discriminator, build_generator
from tests.conftest import load_config


def count(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def init(module, x):
    return module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=False)


def test_seed_002_parameter_counts_match_torchsummary():
    # torchsummary in seed 002: D 1,460,225 and G 1,486,352 parameters.
    c = load_config("fashion_mnist_mlp")
    g = build_generator(c.model.generator, (28, 28, 1), c.model.g.to_dict())
    d = build_discriminator(c.model.discriminator, c.model.d.to_dict())
    g_vars = init(g, jnp.zeros((2, 100)))
    d_vars = init(d, jnp.zeros((2, 28, 28, 1)))
    assert count(g_vars["params"]) == 1_486_352
    assert count(d_vars["params"]) == 1_460_225
    assert g.apply(g_vars, jnp.zeros((5, 100)), train=False).shape == (5, 28, 28, 1)
    assert d.apply(d_vars, jnp.zeros((5, 28, 28, 1)), train=False).shape == (5,)


def test_torch_init_is_uniform_within_inverse_sqrt_fan_in():
    g = build_generator("mlp", (784,), {"hidden": (256,)})
    params = init(g, jnp.zeros((1, 100)))["params"]
    for layer, fan_in in (("Dense_0", 100), ("Dense_1", 256)):
        for leaf in jax.tree.leaves(params[layer]):
            assert float(jnp.max(jnp.abs(leaf))) <= 1 / np.sqrt(fan_in) + 1e-7
            assert float(jnp.max(jnp.abs(leaf))) > 0.8 / np.sqrt(fan_in)


def test_seed_000_keras_nets():
    c = load_config("mnist_keras")
    g = build_generator(c.model.generator, (28, 28, 1), c.model.g.to_dict())
    d = build_discriminator(c.model.discriminator, c.model.d.to_dict())
    g_vars = init(g, jnp.zeros((2, 100)))
    d_vars = init(d, jnp.zeros((2, 28, 28, 1)))
    # Keras: Dense(100→256)+BN(256)... params: 25,856+131,584+525,312+803,600 dense, BN 2·(256+512+1024) trainable.
    assert count(g_vars["params"]) == 25_856 + 131_584 + 525_312 + 803_600 + 2 * (256 + 512 + 1024)
    assert set(g_vars) == {"params", "batch_stats"}
    # D: conv 3·3·1·64+64, conv 3·3·64·128+128, dense 7·7·128+1.
    assert count(d_vars["params"]) == (9 * 64 + 64) + (9 * 64 * 128 + 128) + (7 * 7 * 128 + 1)
    # Keras momentum 0.8: each running statistic moves 20% of the way to the batch's, from a non-zero start.
    old = jax.tree.map(lambda s: s + jax.random.uniform(jax.random.key(5), s.shape), g_vars["batch_stats"])
    bn_inputs = {}  # BatchNorm module name → the activations it normalised

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
            bn_inputs[context.module.name] = np.asarray(args[0], np.float64)
        return next_fun(*args, **kwargs)

    z = jax.random.normal(jax.random.key(6), (4, 100))
    with nn.intercept_methods(record):
        out, updates = g.apply({**g_vars, "batch_stats": old}, z, train=True, mutable=["batch_stats"])
    assert out.shape == (4, 28, 28, 1)
    assert sorted(bn_inputs) == sorted(old) == ["BatchNorm_0", "BatchNorm_1", "BatchNorm_2"]
    for name, x in bn_inputs.items():
        new = updates["batch_stats"][name]
        np.testing.assert_allclose(new["mean"], 0.8 * np.asarray(old[name]["mean"]) + 0.2 * x.mean(axis=0),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(new["var"], 0.8 * np.asarray(old[name]["var"]) + 0.2 * x.var(axis=0),
                                   rtol=1e-4, atol=1e-5, err_msg=name)


def test_seed_003_moments_discriminator_sees_only_mean_and_std():
    c = load_config("gaussian_1d")
    d = build_discriminator(c.model.discriminator, c.model.d.to_dict())
    x = jax.random.normal(jax.random.key(0), (3, 100))
    variables = init(d, x)
    # Any permutation within a vector keeps mean and std, hence D's output.
    perm = x[:, ::-1]
    np.testing.assert_allclose(d.apply(variables, x, train=False), d.apply(variables, perm, train=False), rtol=1e-6)
    assert variables["params"]["Dense_0"]["kernel"].shape == (2, 32)


def test_generator_output_range_is_tanh():
    g = build_generator("mlp", (28, 28, 1))
    out = g.apply(init(g, jnp.zeros((1, 100))), 10 * jnp.ones((3, 100)), train=False)
    assert float(jnp.max(jnp.abs(out))) <= 1.0


@pytest.mark.parametrize("builder,args,match", [
    (build_generator, ("resnet9000", (2,)), r"unknown generator 'resnet9000'; valid choices: ae_decoder, biggan, dcgan, dcgan_upsample, infogan, mlp, "
                                                        r"sngan_cnn, sngan_resnet$"),
    (build_discriminator, ("nope",), r"unknown discriminator 'nope'; valid choices: biggan, dcgan, dcgan_upsample, infogan, "
                                               r"keras_conv, mlp, sngan_cnn, sngan_resnet$"),
    (build_discriminator, ("mlp", {"widths": 3}), r"unknown option\(s\) \['widths'\] for discriminator 'mlp'"),
])
def test_bad_model_names_and_options(builder, args, match):
    with pytest.raises(ConfigError, match=match):
        builder(*args)


def test_bad_activation_name_is_caught_when_the_model_is_built():
    with pytest.raises(ConfigError, match=r"model.g.activation = 'swishy' is invalid; it must be one of leaky_relu, "):
        build_generator("mlp", (2,), {"activation": "swishy"})
