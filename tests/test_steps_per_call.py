"""``steps_per_call``: K train steps per compiled call give the numbers of K = 1 (bitwise for the toy MLP on
one device, to float32 rounding otherwise; issue 16, item 1); calls end on every logging/checkpoint/sample step;
the automatic K follows the rule table."""

import jax
import numpy as np
import pytest

from ganjax import calls
from ganjax import config as config_lib
from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.trainer import train_and_evaluate
from ganjax.writers import read_jsonl
from tests.conftest import load_config

# 7 steps, logs at 3 and 6 (and 7), checkpoint at 5: with K = 4 the calls are 3, 2, 1, 1 steps long.
SCHEDULE = {"num_steps": 7, "log_every": 3, "checkpoint_every": 5, "sample_every": 7, "eval_every": 0}


def _image_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset("cifar10", (32, 32, 3), images=rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8))


def _config(kind: str, parallel: str, k: int):
    c = load_config("ring_2d", "quick") if kind == "toy" else load_config("dcgan_cifar10", "quick")
    for key, value in SCHEDULE.items():
        c[key] = value
    c.batch_size, c.parallel, c.steps_per_call = 16, parallel, k
    return c


def _train(tmp_path, kind, parallel, k):
    workdir = tmp_path / f"{kind}_{parallel}_{k}"
    dataset = None if kind == "toy" else _image_dataset()
    state = train_and_evaluate(_config(kind, parallel, k), str(workdir), dataset)
    rows = [r for r in read_jsonl(str(workdir / "metrics.jsonl")) if "d_loss" in r]
    return jax.device_get(state), rows, workdir


# XLA:CPU compiles the body of the K-step loop on its own terms (fusion, conv and dot emitters), so the
# loop equals the plain step bitwise for the toy MLP on one device, and to float32 rounding for conv nets
# and under shard_map/pmap. (The automatic K on a CPU is 1 for conv nets: ganjax.calls.)
# The conv-net cases compile two DCGAN programs each (minutes on the 2-core CI machine): -m slow.
@pytest.mark.parametrize("kind,parallel,bitwise", [
    ("toy", "none", True), ("toy", "shard_map", False),
    pytest.param("image", "none", False, marks=pytest.mark.slow),
    pytest.param("image", "pmap", False, marks=pytest.mark.slow)])
def test_k_steps_per_call_equal_one_step_per_call(tmp_path, kind, parallel, bitwise):
    one, rows_one, _ = _train(tmp_path, kind, parallel, 1)
    four, rows_four, workdir = _train(tmp_path, kind, parallel, 4)
    assert int(four.step) == SCHEDULE["num_steps"]
    rtol, atol = (0, 0) if bitwise else (1e-4, 1e-6)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_four] == [3, 6, 7]
    for r1, r4 in zip(rows_one, rows_four):
        for name in r1.keys() - {"steps_per_sec", "step", "time"}:
            assert r4[name] == pytest.approx(r1[name], rel=rtol, abs=atol), name
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [5, 7]


def test_calls_end_on_every_boundary_and_the_last_step():
    lengths, step = [], 0
    while step < 23:
        k = calls.call_length(step, 10, 23, (5, 20))
        lengths.append(k)
        step += k
    assert lengths == [5, 5, 5, 5, 3]
    assert calls.call_length(0, 4, 7, (3, 5, 7)) == 3 and calls.call_length(3, 4, 7, (3, 5, 7)) == 2


def test_automatic_steps_per_call_follows_the_table():
    ring, conv = load_config("ring_2d", "quick"), load_config("dcgan_cifar10", "quick")
    _, ring_gan = config_lib.build(ring)
    _, conv_gan = config_lib.build(conv, _image_dataset())
    assert not calls.has_convolutions(ring_gan) and calls.has_convolutions(conv_gan)
    for platform in ("cpu", "gpu", "tpu"):
        assert calls.resolve(ring, ring_gan, platform) == calls.AUTO_STEPS_PER_CALL[(platform, False)]
        assert calls.resolve(conv, conv_gan, platform) == calls.AUTO_STEPS_PER_CALL[(platform, True)]
    assert calls.AUTO_STEPS_PER_CALL[("cpu", True)] == 1  # XLA:CPU runs conv nets slower inside a loop
    ring.steps_per_call = 7
    assert calls.resolve(ring, ring_gan, "cpu") == 7


def test_bad_steps_per_call_is_refused_naming_the_value():
    c = load_config("ring_2d", "quick")
    c.steps_per_call = -1
    with pytest.raises(ConfigError, match=r"steps_per_call must be an integer >= 0 .*got -1"):
        config_lib.validate(c)
    for bad in (2.5, "4", True):  # what a JSON config or a caller outside ConfigDict's type check could hold
        with pytest.raises(ConfigError, match=f"got {bad!r}"):
            calls.check_steps_per_call(bad)
