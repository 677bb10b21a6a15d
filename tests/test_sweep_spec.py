"""Sweep configs → trials: grids, conditional and random axes, seeds, groups, and bad configs."""

import os
import subprocess
import sys

import pytest

from ganjax.errors import ConfigError
from ganjax.sweep import spec
from tests.conftest import ROOT

LR = ("optimizer_g.learning_rate", "optimizer_d.learning_rate")
BASE = "configs/ring_2d.py:quick"


def test_ring_losses_quick_expands_to_losses_x_lrs_x_seeds_with_clipping_only_for_wasserstein():
    s = spec.load_sweep_file(os.path.join(ROOT, "configs/sweeps/ring_losses.py"), "quick")
    trials = spec.expand(s)
    assert len(trials) == 5 * 2 * 2
    for t in trials:
        assert t.params["optimizer_g.learning_rate"] == t.params["optimizer_d.learning_rate"]
        assert ("optimizer_d.clip_value" in t.params) == (t.params["loss"] == "wasserstein")
    groups = spec.groups(trials)
    assert len(groups) == 5 and all(len(g) == 4 for g in groups.values())  # one compiled program per loss
    assert len({t.id for t in trials}) == len(trials)
    assert spec.trial_config(s, trials[-1]).optimizer_d.clip_value in (0.0, 0.01)


def test_trial_ids_are_stable_and_overrides_round_trip():
    s = spec.sweep_config(BASE, [spec.axis(LR, grid=(1e-4, 3e-4))], seeds=(3, 7))
    a, b = spec.expand(s), spec.expand(s)
    assert [t.id for t in a] == [t.id for t in b]
    assert [t.params["seed"] for t in a] == [3, 7, 3, 7]
    assert a[1].overrides() == ["--config.optimizer_g.learning_rate=0.0001",
                                "--config.optimizer_d.learning_rate=0.0001", "--config.seed=7"]


def test_to_plain_keeps_every_axis_through_json():
    import json

    from ganjax.config import to_plain

    s = spec.load_sweep_file(os.path.join(ROOT, "configs/sweeps/ring_losses.py"), "quick")
    back = json.loads(json.dumps(to_plain(s)))
    assert [a["targets"] for a in back["axes"]] == [["loss"], list(LR), ["optimizer_d.clip_value"]]
    assert back["axes"][1] == {"kind": "grid", "targets": list(LR), "domain": [1e-4, 1e-3], "when": []}
    assert back["axes"][2]["when"] == [["loss", ["wasserstein"]]]
    assert back["base"] == BASE and back["seeds"] == [0, 1] and back["metric"] == "modes"


def test_random_axes_are_seeded_and_within_bounds():
    axes = [spec.axis("loss", grid=("hinge", "least_squares")),
            spec.axis(LR, log_uniform=(1e-5, 1e-2)),
            spec.axis("optimizer_d.b1", uniform=(0.0, 0.9)),
            spec.axis("n_disc", choice=(1, 2, 5))]
    s = spec.sweep_config(BASE, axes, num_random=6, seeds=1, sweep_seed=4)
    trials = spec.expand(s)
    assert len(trials) == 2 * 6
    assert [t.params for t in trials] == [t.params for t in spec.expand(s)]
    lrs = [t.params["optimizer_d.learning_rate"] for t in trials]
    assert all(1e-5 <= x <= 1e-2 for x in lrs) and len(set(lrs)) == len(lrs)
    assert max(lrs) / min(lrs) > 10  # log-uniform spreads over decades
    assert all(0.0 <= t.params["optimizer_d.b1"] <= 0.9 and t.params["n_disc"] in (1, 2, 5) for t in trials)
    other = spec.expand(spec.sweep_config(BASE, axes, num_random=6, seeds=1, sweep_seed=5))
    assert [t.params for t in other] != [t.params for t in trials]


def test_penalty_weight_axis_applies_only_with_its_penalty():
    axes = [spec.axis("penalty", grid=("none", "wgan_gp")),
            spec.axis("penalty_weight", grid=(1.0, 10.0), when={"penalty": "wgan_gp"})]
    trials = spec.expand(spec.sweep_config(BASE, axes, seeds=1))
    assert [dict(t.params) for t in trials] == [
        {"penalty": "none", "seed": 0},
        {"penalty": "wgan_gp", "penalty_weight": 1.0, "seed": 0},
        {"penalty": "wgan_gp", "penalty_weight": 10.0, "seed": 0}]
    # The penalty is static (its own program); its weight is an array in the state (vmapped).
    assert trials[1].group == trials[2].group != trials[0].group


@pytest.mark.parametrize("make, match", [
    (lambda: spec.sweep_config(BASE, [spec.axis("optimizer_d.learning_rat", grid=(1e-4,))]),
     r"unknown config key 'optimizer_d.learning_rat'"),
    (lambda: spec.sweep_config(BASE, [spec.axis("loss", grid=())]), r"the axis is empty"),
    (lambda: spec.sweep_config(BASE, [spec.axis(LR, log_uniform=(0.0, 1e-3))], num_random=2),
     r"log_uniform needs positive bounds, got \(0.0, 0.001\)"),
    (lambda: spec.sweep_config(BASE, [spec.axis(LR, uniform=(1e-3, 1e-4))], num_random=2), r"low < high"),
    (lambda: spec.sweep_config(BASE, [spec.axis(LR, log_uniform=(1e-5, 1e-3))]), r"num_random=0"),
    (lambda: spec.sweep_config(BASE, [spec.axis("loss", grid=("hinge", "hing"))]), r"unknown loss 'hing'"),
    (lambda: spec.sweep_config(BASE, [spec.axis("seed", grid=(1, 2))]), r"'seed' is set by the sweep's seeds"),
    (lambda: spec.sweep_config(BASE, [], seeds=0), r"seeds must be a positive count"),
    (lambda: spec.sweep_config(BASE, [], mode="threads"), r"unknown sweep mode 'threads'; valid choices: vmap"),
    (lambda: spec.sweep_config("", []), r"no 'base' training config"),
    (lambda: spec.sweep_config("configs/nope.py", []), r"does not exist"),
    (lambda: spec.sweep_config(BASE, [spec.axis("loss", grid=("hinge",), when={"los": "hinge"})]),
     r"unknown config key 'los'"),
])
def test_bad_sweep_configs_are_clear_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        spec.expand(make())


def test_axis_needs_exactly_one_kind():
    with pytest.raises(ConfigError, match="give exactly one of grid, uniform, log_uniform, choice, got grid, choice"):
        spec.axis("loss", grid=("hinge",), choice=("hinge",))


def test_bad_sweep_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    cfg = tmp_path / "bad_sweep.py"
    cfg.write_text("from ganjax.sweep.spec import axis, sweep_config\n"
                   "def get_config(arg=None):\n"
                   "    return sweep_config('configs/ring_2d.py:quick', [axis('optimizer_d.learning_rate', "
                   "log_uniform=(-1.0, 1e-3))], num_random=2)\n")
    workdir = tmp_path / "sweep"
    run = subprocess.run([sys.executable, "-m", "ganjax.sweep", f"--config={cfg}", f"--workdir={workdir}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines == ["ganjax: error: sweep axis 0 (optimizer_d.learning_rate): log_uniform needs positive "
                     "bounds, got (-1.0, 0.001)"], lines
    assert not workdir.exists()


@pytest.mark.parametrize("variant, per_method", [("quick", 2), ("narrow", 8), ("wide", 8)])
def test_lucic_sweep_has_the_six_methods_with_their_conditional_hyperparameters(variant, per_method):
    s = spec.load_sweep_file(os.path.join(ROOT, "configs/sweeps/lucic_fashion.py"), variant)
    trials = spec.expand(s)
    methods = {}
    for t in trials:
        p = t.params
        method = (p["loss"], p.get("penalty", "none"))
        methods[method] = methods.get(method, 0) + 1
        assert ("optimizer_d.clip_value" in p) == (method == ("wasserstein", "none"))
        assert ("penalty_weight" in p) == (method[1] in ("wgan_gp", "dragan"))
        low, high = (1e-5, 1e-2) if variant == "wide" else (1e-4, 1e-3)
        assert low <= p["optimizer_d.learning_rate"] <= high
        assert ("n_disc" in p) == (variant == "wide")
    assert methods == {m: per_method for m in [("minimax", "none"), ("non_saturating", "none"),
                                               ("non_saturating", "dragan"), ("least_squares", "none"),
                                               ("wasserstein", "none"), ("wasserstein", "wgan_gp")]}
