"""PacGAN'18's 2-D protocol: maxout D, bias-free BN generator, N(0, std²) init, a finite
training sample, and the ``:pacgan`` config variant (see ``ganjax.config.pacgan_protocol``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.config import build, load_config_file, validate
from ganjax.data.toy import finite_sample, make_toy
from ganjax.errors import ConfigError
from ganjax.models import build_discriminator, build_generator
from ganjax.models.layers import kernel_init
from ganjax.models import mlp as maxout_lib
from ganjax.models.mlp import maxout


def test_maxout_takes_the_max_over_each_units_consecutive_pieces():
    h = jnp.array([[1.0, 5.0, 2.0, -1.0, -3.0, -2.0]])  # 2 units × 3 pieces
    np.testing.assert_array_equal(maxout(h, 3), [[5.0, -1.0]])
    np.testing.assert_array_equal(maxout(h, 2), [[5.0, 2.0, -2.0]])
    assert maxout(h, 1) is h


def test_maxout_gradient_is_jax_max_gradient_to_second_order():
    """max_last's hand-written backward (faster on XLA:CPU) is jnp.max's derivative: the cotangent goes to
    each unit's argmax, split evenly between tied pieces; a gradient of a gradient (as in a gradient
    penalty) agrees with jnp.max's too."""
    h = jnp.array([[1.0, 5.0, 2.0, -1.0, -1.0, -2.0]])  # unit 2 has a tie between its pieces 0 and 1
    g = jax.grad(lambda h: jnp.sum(jnp.array([2.0, 3.0]) * maxout(h, 3)))(h)
    np.testing.assert_array_equal(g, [[0.0, 2.0, 0.0, 1.5, 1.5, 0.0]])
    x = jax.random.normal(jax.random.key(0), (6, 3))
    w = jax.random.normal(jax.random.key(1), (3, 20))

    def penalty(w, max_fn):
        d = lambda x: jnp.sum(jnp.tanh(max_fn((x @ w).reshape(x.shape[0], 4, 5))))  # noqa: E731
        return jnp.sum(jax.grad(d)(x) ** 2)

    ours = jax.grad(penalty)(w, maxout_lib.max_last)
    theirs = jax.grad(penalty)(w, lambda h: jnp.max(h, axis=-1))
    assert float(jnp.max(jnp.abs(theirs))) > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_maxout_discriminator_equals_a_hand_written_forward_pass():
    d = build_discriminator("mlp", {"hidden": (4, 3), "activation": "linear", "maxout_pieces": 5,
                                    "dropout": 0.0, "weight_init": "normal_0.02"})
    x = jax.random.normal(jax.random.key(1), (7, 6))
    params = d.init(jax.random.key(0), x)["params"]
    shapes = jax.tree.map(jnp.shape, params)
    assert shapes == {"Dense_0": {"kernel": (6, 20), "bias": (20,)}, "Dense_1": {"kernel": (4, 15), "bias": (15,)},
                      "Dense_2": {"kernel": (3, 1), "bias": (1,)}}
    h = np.asarray(x, np.float64)
    for name, width in (("Dense_0", 4), ("Dense_1", 3)):
        z = h @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])
        h = z.reshape(7, width, 5).max(axis=-1)
    want = (h @ np.asarray(params["Dense_2"]["kernel"]) + np.asarray(params["Dense_2"]["bias"]))[:, 0]
    np.testing.assert_allclose(d.apply({"params": params}, x), want, rtol=1e-5, atol=1e-6)


def test_bias_free_generator_with_batch_norm_before_relu():
    g = build_generator("mlp", (2,), {"hidden": (5, 5), "activation": "relu", "output": "linear",
                                      "batch_norm": True, "norm_position": "before_activation",
                                      "bn_momentum": 0.95, "bn_epsilon": 1e-4, "use_bias": False,
                                      "weight_init": "normal_0.02"})
    z = jax.random.normal(jax.random.key(2), (16, 3))
    variables = g.init(jax.random.key(0), z, train=False)
    p = variables["params"]
    assert "bias" not in p["Dense_0"] and "bias" not in p["Dense_1"] and "bias" in p["Dense_2"]
    out, new = g.apply(variables, z, train=True, mutable=["batch_stats"])
    h = np.asarray(z, np.float64)
    for i in range(2):
        a = h @ np.asarray(p[f"Dense_{i}"]["kernel"])
        bn = p[f"BatchNorm_{i}"]
        mean, var = a.mean(0), a.var(0)
        a = (a - mean) / np.sqrt(var + 1e-4) * np.asarray(bn["scale"]) + np.asarray(bn["bias"])
        h = np.maximum(a, 0.0)
        old = variables["batch_stats"][f"BatchNorm_{i}"]["mean"]
        # Running mean: 0.95 of the old average + 0.05 of the batch's (PacGAN's Blocks update).
        np.testing.assert_allclose(new["batch_stats"][f"BatchNorm_{i}"]["mean"],
                                   0.95 * np.asarray(old) + 0.05 * mean,
                                   rtol=1e-4, atol=1e-6)
    want = h @ np.asarray(p["Dense_2"]["kernel"]) + np.asarray(p["Dense_2"]["bias"])
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def _group_bn(groups, axis_name=None):
    from ganjax.models.layers import GroupBatchNorm

    return GroupBatchNorm(groups, momentum=0.95, epsilon=1e-4, axis_name=axis_name)


def test_group_batch_norm_normalises_each_pack_slot_with_its_own_statistics():
    """Rows n with the same n mod m are one slot (PacGAN's separate G call per slot): each is normalised
    with its own batch mean and variance; the shared running averages move towards the slots' mean."""
    x = jax.random.normal(jax.random.key(0), (12, 3)) * jnp.array([1.0, 2.0, 3.0]) + jnp.arange(12.0)[:, None] % 3
    bn = _group_bn(3)
    variables = bn.init(jax.random.key(1), x)
    variables = {"params": {"scale": jnp.array([1.0, 2.0, 0.5]), "bias": jnp.array([0.0, 1.0, -1.0])},
                 "batch_stats": variables["batch_stats"]}
    y, new = bn.apply(variables, x, mutable=["batch_stats"])
    xs = np.asarray(x, np.float64)
    want, means, variances = np.empty_like(xs), [], []
    for slot in range(3):
        rows = xs[slot::3]
        means.append(rows.mean(0))
        variances.append(rows.var(0))
        want[slot::3] = (rows - means[-1]) / np.sqrt(variances[-1] + 1e-4) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new["batch_stats"]["mean"], 0.05 * np.mean(means, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["batch_stats"]["var"], 0.95 + 0.05 * np.mean(variances, 0), rtol=1e-5)
    # Whole-batch statistics would give another output: the groups matter.
    assert not np.allclose(y, _group_bn(1).apply(variables, x, mutable=["batch_stats"])[0], atol=1e-3)
    # Eval mode normalises with the running averages, whatever the batch.
    evaluated = _group_bn(3).clone(use_running_average=True).apply({**variables, **new}, x[:5])
    rs = new["batch_stats"]
    np.testing.assert_allclose(evaluated, (xs[:5] - np.asarray(rs["mean"])) / np.sqrt(np.asarray(rs["var"]) + 1e-4)
                               * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0], rtol=1e-4, atol=1e-5)


def test_group_batch_norm_of_one_group_is_flax_batch_norm_and_syncs_over_devices():
    from flax import linen as nn

    x = jax.random.normal(jax.random.key(3), (8, 4)) + 2.0
    ours = _group_bn(1)
    variables = ours.init(jax.random.key(0), x)
    y, new = ours.apply(variables, x, mutable=["batch_stats"])
    flax_y, flax_new = nn.BatchNorm(use_running_average=False, momentum=0.95, epsilon=1e-4).apply(
        variables, x, mutable=["batch_stats"])
    np.testing.assert_allclose(y, flax_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["batch_stats"]["var"], flax_new["batch_stats"]["var"], rtol=1e-6)
    # Two devices of 4 rows each (a per-device batch that is a multiple of the groups) with synchronised
    # statistics give the one-device result: slot n mod 2 is the same row set on both.
    synced = _group_bn(2, axis_name="devices")
    whole, whole_new = _group_bn(2).apply(variables, x, mutable=["batch_stats"])
    halves, halves_new = jax.vmap(lambda part: synced.apply(variables, part, mutable=["batch_stats"]),
                                  axis_name="devices")(x.reshape(2, 4, 4))
    np.testing.assert_allclose(halves.reshape(8, 4), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(halves_new["batch_stats"]["mean"][0], whole_new["batch_stats"]["mean"], rtol=1e-5)


def test_bn_groups_errors_name_the_value_and_the_fix():
    for over, match in ((dict(bn_groups=3), r"bn_groups=3 needs a batch_size divisible by 3, got batch_size=400"),
                        (dict(bn_groups=0), r"model.g.bn_groups = 0 is invalid; it must be a positive integer"),
                        (dict(bn_groups=2, batch_norm=False), r"model.g.batch_norm is off")):
        c = load_config_file("configs/ring_2d.py", "pacgan,pack4")
        c.model.g.update(over)
        with pytest.raises(ConfigError, match=match):
            build(c)
    with pytest.raises(ConfigError, match=r"need a \[batch, features\] input whose batch is a multiple of 3"):
        _group_bn(3).init(jax.random.key(0), jnp.zeros((4, 2)))


def test_normal_std_init_has_that_std_and_bad_names_list_the_choices():
    w = kernel_init("normal_0.01")(jax.random.key(0), (400, 500))
    assert abs(float(jnp.std(w)) - 0.01) < 2e-4 and abs(float(jnp.mean(w))) < 2e-4
    for bad in ("normal_", "normal_-1", "normal_x", "gaussian"):
        with pytest.raises(ConfigError, match="normal_<std>"):
            kernel_init(bad)
    with pytest.raises(ConfigError, match=r"model.d.weight_init = 'normal_0' is invalid.*normal_<std>"):
        build_discriminator("mlp", {"weight_init": "normal_0"})


def test_finite_sample_draws_only_its_fixed_points():
    base = make_toy("grid_2d")
    fixed = finite_sample(base, 50, sample_seed=3)
    points = np.asarray(base.sample(jax.random.key(3), 50))
    batch = np.asarray(fixed.sample(jax.random.key(9), 400))
    member = (np.abs(batch[:, None, :] - points[None]).sum(-1) == 0).any(axis=1)
    assert member.all()
    assert len(np.unique(batch, axis=0)) > 40  # uniform over the 50 points: nearly all appear
    again = make_toy("grid_2d", num_examples=50, sample_seed=3)
    np.testing.assert_array_equal(again.sample(jax.random.key(9), 400), batch)
    assert finite_sample(base, 0) is base
    with pytest.raises(ConfigError, match="num_examples must be an integer >= 0"):
        make_toy("ring_2d", num_examples=-1)


@pytest.mark.parametrize("dataset,data", [("ring_2d", {"radius": 1.0, "std": 0.01}),
                                          ("grid_2d", {"spacing": 2.0, "std": 0.05})])
def test_pacgan_variant_is_the_published_protocol(dataset, data):
    c = load_config_file(f"configs/{dataset}.py", "pacgan,pack4")
    validate(c)
    assert c.data.to_dict() == {**data, "num_examples": 100_000, "sample_seed": 0}
    assert (c.pack, c.batch_size, c.num_steps) == (4, 400, 400_000)
    assert (c.update_rule, c.loss, c.model.z_dim, c.model.noise) == ("simultaneous", "non_saturating", 2, "normal")
    # The authors' Blocks Adam(beta1=0.8): Blocks' beta1 weighs the new gradient, i.e. Optax's b1 = 0.2.
    assert [(o.learning_rate, o.b1, o.b2, o.eps) for o in (c.optimizer_g, c.optimizer_d)] == [(1e-4, 0.2, 0.999, 1e-8)] * 2
    ds, gan = build(c)
    assert ds.toy.mode_std == data["std"]
    if dataset == "ring_2d":
        np.testing.assert_allclose(np.linalg.norm(ds.toy.modes, axis=1), 1.0, rtol=1e-6)
    x = jnp.zeros((3, 8))
    d_params = gan.discriminator.init(jax.random.key(0), x)["params"]
    # PacGAN's D for m = 4: 8 → 3 × (200 units × 5 pieces) → 1.
    assert [d_params[f"Dense_{i}"]["kernel"].shape for i in range(4)] == [(8, 1000), (200, 1000), (200, 1000), (200, 1)]
    assert load_config_file(f"configs/{dataset}.py", "pacgan").batch_size == 100
    # G's BatchNorm statistics per pack slot, as the authors' one G call per slot.
    assert c.model.g.bn_groups == 4 and load_config_file(f"configs/{dataset}.py", "pacgan").model.g.bn_groups == 1
    g_vars = gan.generator.init(jax.random.key(0), jnp.zeros((8, 2)), train=False)
    assert sorted(g_vars["batch_stats"]) == [f"GroupBatchNorm_{i}" for i in range(4)]


def test_pack_variants_need_the_pacgan_protocol_and_are_exclusive():
    with pytest.raises(ConfigError, match=r"':pacgan,pack2'"):
        load_config_file("configs/grid_2d.py", "pack2")
    with pytest.raises(ConfigError, match="at most one"):
        load_config_file("configs/grid_2d.py", "pacgan,pack2,pack4")
    with pytest.raises(ConfigError, match="unknown config variant"):
        load_config_file("configs/grid_2d.py", "pacgan,pack5")


def test_pacgan_quick_trains_and_its_generator_samples_use_running_averages():
    from ganjax import train

    c = load_config_file("configs/ring_2d.py", "pacgan,pack2,quick")
    _, gan = build(c)
    state = train.init_state(gan, 0)
    step = jax.jit(lambda s: train.train_step(gan, s, None, c.batch_size))
    for _ in range(3):
        state, metrics = step(state)
    assert float(metrics["nonfinite"]) == 0.0
    stats = state.g_state["batch_stats"]["GroupBatchNorm_0"]  # pack 2: statistics per pack slot
    assert float(jnp.abs(stats["mean"]).max()) > 0  # updated by the G forward passes
    z = jax.random.normal(jax.random.key(5), (4, 2))
    # Sampling is eval mode: a sample does not depend on the other rows of its batch.
    one = train.generate(gan, state, z[:1])
    np.testing.assert_allclose(train.generate(gan, state, z)[:1], one, rtol=1e-5, atol=1e-6)
