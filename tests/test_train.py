"""The train step and loop: learning, determinism, resume, parallel wrappers."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.errors import CheckpointError, ConfigError
from ganjax.train import generate, init_state
from ganjax.trainer import load_for_inference, train_and_evaluate
from tests.conftest import assert_trees_close, load_config, override, trees_equal


def small_gaussian(num_steps=30, **overrides):
    c = load_config("gaussian_1d")
    c.num_steps = num_steps
    c.log_every = 10
    c.checkpoint_every = 10
    c.sample_every = 0
    return override(c, overrides)


def test_gaussian_1d_learns_from_shipped_config(tmp_path):
    """Seed 003: generated mean 4 ± 0.2 and std 1.5 ± 0.25 on 10,000+ values, in well under a minute."""
    c = load_config("gaussian_1d")
    state = train_and_evaluate(c, str(tmp_path / "g1d"))
    _, gan = config_lib.build(c)
    samples = np.asarray(generate(gan, state, gan.sample_noise(jax.random.key(123), 200), ema=True))
    assert samples.size >= 10_000
    assert abs(samples.mean() - 4.0) < 0.2, samples.mean()
    assert abs(samples.std() - 1.5) < 0.25, samples.std()


def test_same_seed_gives_bitwise_equal_params(tmp_path):
    a = train_and_evaluate(small_gaussian(), str(tmp_path / "a"))
    b = train_and_evaluate(small_gaussian(), str(tmp_path / "b"))
    assert_trees_close(a, b)
    c = train_and_evaluate(small_gaussian(seed=1), str(tmp_path / "c"))
    assert not trees_equal(a.g_params, c.g_params)


def test_resume_equals_uninterrupted_run(tmp_path):
    full = train_and_evaluate(small_gaussian(30), str(tmp_path / "full"))
    workdir = str(tmp_path / "resumed")
    train_and_evaluate(small_gaussian(20), workdir)          # "interrupted" at step 20
    resumed = train_and_evaluate(small_gaussian(30), workdir)  # same command, longer budget
    assert int(resumed.step) == 30
    assert_trees_close(full, resumed)
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    for kind in ("train", "eval"):
        keys = [(r["step"], r.get("generator")) for r in rows if r.get("kind", "train") == kind]
        assert len(keys) == len(set(keys)), f"resumed metrics.jsonl must not repeat {kind} rows: {keys}"
        assert [k[0] for k in keys] == sorted(k[0] for k in keys), keys


def test_resume_with_shape_changing_config_names_the_keys(tmp_path):
    workdir = str(tmp_path / "w")
    train_and_evaluate(small_gaussian(10), workdir)
    before = {f: open(os.path.join(workdir, f)).read() for f in ("config.json", "metrics.jsonl")}
    bad = small_gaussian(20)
    bad.model.g.hidden = (16, 16)
    with pytest.raises(CheckpointError, match=r"model\.g\.hidden"):
        train_and_evaluate(bad, workdir)
    after = {f: open(os.path.join(workdir, f)).read() for f in ("config.json", "metrics.jsonl")}
    assert before == after


def _files(workdir):
    return {f: open(os.path.join(workdir, f), "rb").read() for f in sorted(os.listdir(workdir))
            if os.path.isfile(os.path.join(workdir, f))}


def test_resume_with_a_changed_loss_or_learning_rate_is_refused_and_touches_nothing(tmp_path):
    workdir = str(tmp_path / "w")
    train_and_evaluate(small_gaussian(10), workdir)
    before = _files(workdir)
    for key, value, shown in (("loss", "hinge", r"loss 'non_saturating' -> 'hinge'"),
                              ("optimizer_d.learning_rate", 3e-4, r"optimizer_d.learning_rate 0.001 -> 0.0003")):
        changed = override(small_gaussian(20), {key: value})
        with pytest.raises(ConfigError, match=rf"at step 10 would change experiment-defining config keys: {shown}; "
                                              r".*--allow_config_change"):
            train_and_evaluate(changed, workdir)
        assert _files(workdir) == before  # no config.json rewrite, no config_history.jsonl


def test_a_model_option_added_later_reads_as_the_modules_default_on_resume():
    """A config saved before model.g.bn_groups existed resumes under today's :pacgan config (which sets
    it to the MLP generator's default, 1) without a change; another value is an experiment change."""
    import copy

    from ganjax import resume as resume_lib

    new = load_config("ring_2d", "pacgan").to_dict()
    assert new["model"]["g"]["bn_groups"] == 1
    old = copy.deepcopy(new)
    del old["model"]["g"]["bn_groups"]
    assert resume_lib.changed_values(old, new) == {}
    new["model"]["g"]["bn_groups"] = 4
    changes = resume_lib.changed_values(old, new)
    assert changes == {"model.g.bn_groups": {"old": 1, "new": 4}}
    assert resume_lib.experiment_keys(changes) == ["model.g.bn_groups"]


def test_every_resume_is_recorded_in_config_history(tmp_path):
    """Bookkeeping changes need no flag; an allowed experiment change is recorded with old and new values."""
    workdir = str(tmp_path / "w")
    history = os.path.join(workdir, "config_history.jsonl")
    train_and_evaluate(small_gaussian(10), workdir)
    assert not os.path.exists(history)  # a fresh start is no resume
    train_and_evaluate(small_gaussian(20, log_every=5), workdir)  # bookkeeping only
    state = train_and_evaluate(small_gaussian(30, loss="hinge"), workdir, allow_config_change=True)
    assert int(state.step) == 30
    rows = [json.loads(line) for line in open(history)]
    assert [r["step"] for r in rows] == [10, 20]
    assert rows[0]["changes"] == {"log_every": {"old": 10, "new": 5}, "num_steps": {"old": 10, "new": 20}}
    assert rows[0]["experiment_keys"] == [] and rows[0]["allowed"] is False
    assert rows[1]["changes"]["loss"] == {"old": "non_saturating", "new": "hinge"}
    assert rows[1]["experiment_keys"] == ["loss"] and rows[1]["allowed"] is True
    assert json.load(open(os.path.join(workdir, "config.json")))["loss"] == "hinge"


def test_bookkeeping_keys_are_exactly_the_schedule_storage_and_device_keys():
    from ganjax.resume import experiment_keys, is_bookkeeping

    for key in ("num_steps", "log_every", "checkpoint_every", "sample_every", "eval_every", "keep_checkpoints",
                "data_dir", "parallel", "distributed", "eval.num_samples", "eval.metrics"):
        assert is_bookkeeping(key), key
    for key in ("loss", "penalty", "penalty_weight", "seed", "batch_size", "optimizer_g.learning_rate",
                "optimizer_d.b1", "model.g.hidden", "data.length", "dataset", "ema_decay", "n_disc", "evaluation"):
        assert not is_bookkeeping(key), key
    assert experiment_keys({"num_steps": {}, "loss": {}, "eval.split": {}}) == ["loss"]


def test_hyperparameters_are_arrays_in_the_state():
    c = small_gaussian()
    _, gan = config_lib.build(c)
    state = init_state(gan, 0, penalty_weight=2.5)
    hp = state.d_opt.hyperparams
    assert set(hp) >= {"learning_rate", "b1", "b2", "clip_value"}
    assert all(isinstance(v, jax.Array) for v in hp.values())
    assert float(hp["learning_rate"]) == pytest.approx(1e-3)
    assert float(state.penalty_weight) == 2.5


def test_weight_clipping_keeps_d_params_in_range(tmp_path):
    c = small_gaussian(5, loss="wasserstein")
    c.optimizer_d.clip_value = 0.01
    state = train_and_evaluate(c, str(tmp_path / "w"))
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(state.d_params)) <= 0.01 + 1e-7
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(state.g_params)) > 0.01


@pytest.mark.parametrize("loss,penalty", [("minimax", "wgan_gp"), ("least_squares", "dragan"),
                                          ("wasserstein", "r1"), ("hinge", "r2")])
def test_every_loss_and_penalty_trains_finitely(tmp_path, loss, penalty):
    c = small_gaussian(3, loss=loss, penalty=penalty, penalty_weight=1.0)
    state = train_and_evaluate(c, str(tmp_path / "w"))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.d_params))


@pytest.mark.parametrize("mode", ["pmap", "shard_map"])
def test_parallel_modes_run_on_8_devices(tmp_path, mode):
    assert jax.device_count() == 8
    c = small_gaussian(4, parallel=mode)
    state = train_and_evaluate(c, str(tmp_path / mode))
    assert int(state.step) == 4
    _, _, restored, step = load_for_inference(str(tmp_path / mode))
    assert step == 4
    assert_trees_close(restored, state)


def test_parallel_batch_must_divide_devices(tmp_path):
    c = small_gaussian(2, parallel="pmap", batch_size=12)
    with pytest.raises(ConfigError, match="batch_size=12 is not divisible by the 8 devices"):
        train_and_evaluate(c, str(tmp_path / "w"))


def test_n_disc_takes_that_many_d_steps_per_g_step(tmp_path):
    b = train_and_evaluate(small_gaussian(3, n_disc=3), str(tmp_path / "b"))
    assert int(b.d_opt.count) == 9 and int(b.g_opt.count) == 3


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_simultaneous_update_equals_a_hand_written_one(dropout):
    """update_rule='simultaneous' is seed 000's Keras train_step (and PacGAN's compute_losses): ONE forward
    pass G(z) → D([real; fake]) whose logits give both losses; D's gradient pulls D's loss back to D's
    parameters, G's gradient pulls G's loss back to G's, both at the old (G, D), each applied with its
    optax optimizer. Written out here with jax.vjp for the tiny image GAN (no BatchNorm, no penalty);
    with D dropout the one pass has one mask, so G's loss sees exactly the logits D's loss saw. Keys
    follow the documented scheme fold_in(fold_in(key, step), purpose·1000)."""
    import optax

    from ganjax import train as train_lib
    from tests.test_train_options import IMAGE_DATA, host_batch, tiny_images

    def config(rule):
        c = tiny_images(update_rule=rule)
        c.model.d.dropout = dropout
        for o in (c.optimizer_g, c.optimizer_d):
            o.name, o.b1 = "adam", 0.5
        return c

    c = config("simultaneous")
    _, gan = config_lib.build(c, IMAGE_DATA)
    assert gan.update == "simultaneous" and c.penalty == "none"
    state = init_state(gan, c.seed)
    batch = host_batch(c)
    new, metrics = jax.jit(lambda s, b: train_lib.train_step(gan, s, b, c.batch_size))(state, batch)

    k = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    z = gan.sample_noise(jax.random.fold_in(k, train_lib._NOISE * 1000), c.batch_size)
    d_dropout = jax.random.fold_in(k, train_lib._DROPOUT_REAL * 1000)
    g_dropout = jax.random.fold_in(k, train_lib._G_DROPOUT * 1000)
    real = jnp.asarray(batch[0], jnp.float32) / 127.5 - 1.0
    b = c.batch_size

    def one_pass(g_params, d_params):
        fake = gan.generator.apply({"params": g_params}, z, train=True, rngs={"dropout": g_dropout})
        logits = gan.discriminator.apply({"params": d_params}, jnp.concatenate([real, fake]), train=True,
                                         rngs={"dropout": d_dropout})
        return logits[:b], logits[b:]

    @jax.jit  # one compiled program, not op-by-op dispatch of the conv nets' gradients
    def hand_written(state):
        (real_logits, fake_logits), pull_back = jax.vjp(one_pass, state.g_params, state.d_params)
        _, d_grads = pull_back(jax.grad(gan.loss.d_loss, argnums=(0, 1))(real_logits, fake_logits))
        g_grads, _ = pull_back((jnp.zeros_like(real_logits), jax.grad(gan.loss.g_loss)(fake_logits)))
        d_updates, d_opt = gan.d_tx.update(d_grads, state.d_opt, state.d_params)
        g_updates, g_opt = gan.g_tx.update(g_grads, state.g_opt, state.g_params)
        new = state.replace(step=state.step + 1, d_params=optax.apply_updates(state.d_params, d_updates),
                            g_params=optax.apply_updates(state.g_params, g_updates), d_opt=d_opt, g_opt=g_opt)
        return new, gan.loss.g_loss(fake_logits)

    expected, g_loss = hand_written(state)
    assert_trees_close(new.replace(ema_params=None), expected.replace(ema_params=None), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-6)

    # The alternating rule (G's gradient at the updated D, on a batch of its own) is a different function:
    # the test can tell them apart.
    alt = config_lib.build(config("alternating"), IMAGE_DATA)[1]
    alternating, _ = jax.jit(lambda s, b: train_lib.train_step(alt, s, b, c.batch_size))(init_state(alt, c.seed), batch)
    assert not trees_equal(alternating.g_params, new.g_params)


def test_simultaneous_g_loss_judges_the_d_updates_batch():
    """In the simultaneous rule G's loss comes from D's own forward pass, also with augmentation, packing
    and D dropout: the G loss equals the NS loss of the very fake logits D's update judged (the same
    noise, view draws and dropout mask); the alternating rule's G loss, on a batch of its own, does not."""
    from ganjax import train as train_lib

    def build(rule):
        c = config_lib.load_config_file("ring_2d", "quick")
        c.update_rule, c.pack, c.augment, c.model.d.dropout = rule, 2, "noise", 0.3
        return config_lib.build(c)[1], c

    gan, c = build("simultaneous")
    state = init_state(gan, c.seed)
    shard = train_lib.Shard(c.batch_size, 1, None)
    key = train_lib.step_key(state)
    reals = train_lib.real_batches(gan, None, key, shard)
    fake, _ = train_lib._d_fake(gan, state, key, 0, shard)
    view_real, view_fake = train_lib._views(gan, key, 0, shard, state.regs)
    _, fake_logits, *_ = train_lib.judge_pair(gan, state.d_params, state.d_state, (view_real(reals[0][0]), None),
                                              (view_fake(fake), None), key, 0, shard)
    expected = float(gan.loss.g_loss(fake_logits))
    g_loss = float(jax.jit(lambda s: train_lib._g_grads(gan, s, reals, key, shard)[1])(state))
    np.testing.assert_allclose(g_loss, expected, rtol=1e-6)
    alt, _ = build("alternating")
    alt_loss = float(jax.jit(lambda s: train_lib._g_grads(alt, s, reals, key, shard)[1])(state))
    assert not np.isclose(alt_loss, expected, rtol=1e-3)


def _damage(step_dir):
    for dirpath, _, files in os.walk(os.path.join(step_dir, "state")):
        for f in files:
            if "ocdbt" in dirpath or dirpath.endswith("/d"):
                path = os.path.join(dirpath, f)
                data = open(path, "rb").read()
                open(path, "wb").write(data[:len(data) // 3])


def test_damaged_latest_checkpoint_falls_back_and_is_set_aside(tmp_path):
    workdir = str(tmp_path / "w")
    full = train_and_evaluate(small_gaussian(30), str(tmp_path / "full"))
    train_and_evaluate(small_gaussian(30), workdir)
    _damage(os.path.join(workdir, "checkpoints", "30"))
    resumed = train_and_evaluate(small_gaussian(30), workdir)  # restores 20, retrains 21..30
    assert_trees_close(full, resumed)
    assert os.listdir(os.path.join(workdir, "damaged_checkpoints"))[0].startswith("30-")
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "30"))


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    workdir = str(tmp_path / "w")
    c = small_gaussian(10)
    c.keep_checkpoints = 1
    train_and_evaluate(c, workdir)
    _damage(os.path.join(workdir, "checkpoints", "10"))
    with pytest.raises(CheckpointError, match="could be read"):
        train_and_evaluate(small_gaussian(20), workdir)


def test_states_from_one_gan_share_no_buffers():
    """A donated state must not delete another state's arrays (sweeps reuse one GAN)."""
    _, gan = config_lib.build(small_gaussian())
    a, b = init_state(gan, 0), init_state(gan, 0)
    ids = lambda s: {id(x) for x in jax.tree.leaves(s)}
    assert not ids(a) & ids(b)
    assert len(ids(a)) == len(jax.tree.leaves(a))


def test_bfloat16_compute_trains_the_1d_gaussian_like_float32(tmp_path):
    c = load_config("gaussian_1d")
    c.compute_dtype = "bfloat16"
    state = train_and_evaluate(c, str(tmp_path / "bf16"))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.g_params))
    _, gan = config_lib.build(c)
    samples = np.asarray(generate(gan, state, gan.sample_noise(jax.random.key(123), 200), ema=True))
    assert samples.dtype == np.float32
    assert abs(samples.mean() - 4.0) < 0.2, samples.mean()
    assert abs(samples.std() - 1.5) < 0.25, samples.std()


def test_divergence_stops_with_the_step_and_never_checkpoints_nonfinite_state(tmp_path):
    from ganjax.checkpoint import Checkpointer
    from ganjax.trainer import TrainingDiverged

    workdir = str(tmp_path / "w")
    c = small_gaussian(5, checkpoint_every=1)
    train_and_evaluate(c, workdir)  # five good steps, all checkpointed
    c = small_gaussian(40, checkpoint_every=1)
    c.optimizer_g.learning_rate = 1e30  # blows up at the first step after the resume
    c.optimizer_d.learning_rate = 1e30
    with pytest.raises(TrainingDiverged, match=r"non-finite .*(loss|norm).* at step 6\b"):
        train_and_evaluate(c, workdir, allow_config_change=True)
    ckpt = Checkpointer(workdir)
    try:
        assert ckpt.latest_step() == 5, ckpt.steps()
        _, gan = config_lib.build(c)
        state, _, _ = ckpt.restore(jax.eval_shape(lambda: init_state(gan, 0)), lambda: "")
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
    finally:
        ckpt.close()


def test_skip_step_drops_nonfinite_updates_and_keeps_training(tmp_path):
    """on_nonfinite='skip_step': a non-finite update leaves params untouched; the run goes on."""
    c = small_gaussian(20, on_nonfinite="skip_step", checkpoint_every=0)
    c.optimizer_g.learning_rate = 1e30
    c.optimizer_d.learning_rate = 1e30
    _, gan = config_lib.build(c)
    start = init_state(gan, c.seed)
    final = train_and_evaluate(c, str(tmp_path / "w"))
    assert int(final.step) == 20
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(final))
    from ganjax.writers import read_jsonl

    logged = [r for r in read_jsonl(str(tmp_path / "w" / "metrics.jsonl")) if "skipped_steps" in r]
    # At lr 1e30 every update overflows, so all 20 are skipped and the parameters never move.
    assert sum(r["skipped_steps"] for r in logged) == 20
    assert_trees_close(final.g_params, start.g_params)
    assert_trees_close(final.d_params, start.d_params)


def test_unknown_on_nonfinite_policy_is_refused():
    with pytest.raises(ConfigError, match=r"unknown on_nonfinite 'ignore'; valid choices: skip_step, stop"):
        config_lib.validate(small_gaussian(on_nonfinite="ignore"))


def test_skip_step_changes_nothing_while_training_is_finite(tmp_path):
    a = train_and_evaluate(small_gaussian(20), str(tmp_path / "a"))
    b = train_and_evaluate(small_gaussian(20, on_nonfinite="skip_step"), str(tmp_path / "b"))
    assert_trees_close(a.replace(ema_params=None), b.replace(ema_params=None))
    # The select changes XLA's fusion of the EMA update: the same values up to float32 rounding.
    assert_trees_close(a.ema_params, b.ema_params, rtol=1e-6, atol=1e-6)
