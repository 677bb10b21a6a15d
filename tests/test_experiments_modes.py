"""experiments/mixture_modes.py (2-D ring and grid, GAN / unrolled / PacGAN) in ``--quick`` mode.

The quick budget (20 steps, 2 seeds, 2 × 32-unit nets, batch 64) checks the
pipeline — vmapped groups, evaluation rows, the table against the published
values, the scatter PNG — not the science.
"""

from __future__ import annotations

import os
import statistics

import pytest

from tests.conftest import assert_refused_before_writing
from tests.test_experiments_figs import assert_png, assert_record, tables

TABLE = "Modes, high-quality samples and reverse KL"


def check_quick_run(out: str, methods: list[str]) -> dict:
    from experiments import mixture_modes as mm

    argv = [f"--out={out}", "--quick"] + ([f"--methods={','.join(methods)}"] if methods != list(mm.METHODS) else [])
    result = mm.main(argv)
    assert sorted(os.listdir(out)) == ["mixture_modes.md", "mixture_modes.png", "runs"]
    assert_png(result["image"])
    report = os.path.join(out, "mixture_modes.md")
    assert result["report"] == report
    assert_record(report, "mixture_modes", out)
    columns, rows = tables(report)[TABLE]
    assert columns == ["method", "dataset", "modes", "high-quality %", "reverse KL",
                       "VEEGAN'17 modes / HQ %", "PacGAN'18 modes / HQ %"]
    assert [(r[0], r[1]) for r in rows] == [(mm.METHODS[m].label, mm.DATASETS[d]) for d in mm.DATASETS
                                            for m in methods]
    for r in rows:
        assert 0 <= float(r[2].split(" ± ")[0]) <= (8 if "ring" in r[1] else 25)
        assert 0 <= float(r[3].split(" ± ")[0]) <= 100
    published = {(r[0], r[1]): (r[5], r[6]) for r in rows}
    assert published["GAN", "ring (8 modes)"] == ("1 / 99.3", "6.3 / 98.2")
    assert published["GAN", "grid (25 modes)"] == ("3.3 / 0.5", "17.3 / 94.8")
    # Every seed of every group was trained (one vmapped program per method and dataset) and scored.
    for g in result["groups"]:
        assert len(g["scores"]["raw"]) == mm.QUICK["seeds"] and g["samples"].shape == (mm.NUM_SAMPLES, 2)
    columns, rows = tables(report)["Per seed (raw generator)"]
    assert all(len(r[2].split(", ")) == mm.QUICK["seeds"] for r in rows)
    return result


def test_mixture_modes_quick_gan_on_ring_and_grid(tmp_path):
    result = check_quick_run(str(tmp_path / "modes"), ["gan"])
    assert [g["batch_size"] for g in result["groups"]] == [64, 64]


@pytest.mark.slow
def test_mixture_modes_quick_all_methods(tmp_path):
    from experiments import mixture_modes as mm

    result = check_quick_run(str(tmp_path / "modes"), list(mm.METHODS))
    columns, rows = tables(result["report"])[TABLE]
    assert [r[6] for r in rows if r[0] == "PacGAN4"] == ["7.8 / 95.9", "24.8 / 93.6"]
    assert all(r[5] == "—" for r in rows if r[0] == "PacGAN4")  # VEEGAN has no PacGAN row
    assert [r[5] for r in rows if r[0].startswith("Unrolled")] == ["7.6 / 35.6", "23.6 / 16"]
    # PacGAN's protocol: a batch of packs (64 under --quick), i.e. 64·m samples.
    assert {g["method"]: g["batch_size"] for g in result["groups"]}["pack3"] == 192


@pytest.mark.parametrize("argv, message", [
    (["--methods=gan,wgan"], "unknown method 'wgan'; valid choices: gan, pack2, pack3, pack4, unrolled5"),
    (["--datasets=ring"], "unknown dataset 'ring'; valid choices: grid_2d, ring_2d"),
    (["--methods=,"], "--methods must name at least one of"),
    (["--protocol=ganjax", "--methods=pack3", "--batch-size=2"], "--batch-size=2 is smaller than pack3's pack 3"),
])
def test_mixture_modes_bad_arguments_are_refused_before_anything_is_written(tmp_path, argv, message):
    assert_refused_before_writing("mixture_modes", tmp_path, argv, message)


def test_reverse_kl_cell_counts_seeds_without_high_quality_samples():
    from experiments.mixture_modes import kl_cell, published_cell

    assert kl_cell([0.5, 1.5]) == f"1.00 ± {statistics.stdev([0.5, 1.5]):.2f} (n=2)"
    assert kl_cell([0.25, "inf"]) == "0.25 (∞ in 1/2 seeds)"  # metrics.jsonl writes ∞ as "inf"
    assert kl_cell([float("inf")]) == "— (∞ in 1/1 seeds)"
    assert published_cell("VEEGAN'17", "unrolled5", "grid_2d") == "23.6 / 16"
    assert published_cell("PacGAN'18", "unrolled5", "grid_2d") == "—"


def quick_args(**kw):
    import argparse

    base = dict(protocol="pacgan", quick=True, seeds=2, steps=None, batch_size=None, g_width=None, d_width=None,
                eval_every=None, resume=False)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.slow  # CI time; tests/test_sweep_vmap.py resumes a SIGKILLed vmapped group bitwise by default
def test_resume_extends_a_finished_group_to_more_steps_bitwise(tmp_path):
    """--resume continues a group from its last checkpoint to a larger --steps: the result equals one
    straight run of that length; a group of other settings is retrained, never continued."""
    import jax
    import numpy as np

    from experiments import common
    from experiments import mixture_modes as mm

    def configs(steps, **kw):
        return [mm.method_config("ring_2d", "gan", quick_args(steps=steps, eval_every=5, **kw), seed) for seed in (0, 1)]

    straight = common.train_seeds(str(tmp_path / "straight"), configs(20), "gan-ring")
    common.train_seeds(str(tmp_path / "extended"), configs(10), "gan-ring")
    extended = common.train_seeds(str(tmp_path / "extended"), configs(20), "gan-ring", resume=True)
    same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), straight.group.states,
                        extended.group.states)
    assert jax.tree.structure(straight.group.states) == jax.tree.structure(extended.group.states)
    assert all(jax.tree.leaves(same))
    assert sorted(extended.curve["raw"]) == [5, 10, 15, 20]  # the first sitting's evaluations are kept
    assert extended.scores == straight.scores
    # The group's wall time adds up its sittings: a resume at the last step keeps the training's time.
    again = common.train_seeds(str(tmp_path / "extended"), configs(20), "gan-ring", resume=True)
    assert again.wall >= extended.wall > 0
    # Another setting (a different learning rate) in the same folder: trained afresh from step 0.
    changed = configs(10)
    for c in changed:
        c.optimizer_d.learning_rate = 3e-4
    retrained = common.train_seeds(str(tmp_path / "extended"), changed, "gan-ring", resume=True)
    assert sorted(retrained.curve["raw"]) == [5, 10]
    assert not common.reusable_group(str(tmp_path / "extended"), configs(20))


def test_a_group_recorded_before_a_model_option_existed_is_resumed(tmp_path):
    """A group whose record lacks a model option that today's config sets to the module's default (the
    record was written before the option existed) is the same group; another value of it is not."""
    import json

    from experiments import common
    from experiments import mode_collapse_remedies  # noqa: F401  (the PacGAN-protocol configs below)
    from ganjax.config import load_config_file

    def configs(**g):
        out = []
        for seed in (0, 1):
            c = load_config_file("configs/ring_2d.py", "pacgan,quick")
            c.seed = seed
            c.model.g.update(g)
            out.append(c)
        return out

    group = tmp_path / "group"
    group.mkdir()
    old = json.loads(common.group_record(configs()))
    for record in old:
        del record["model"]["g"]["bn_groups"]  # as written before model.g.bn_groups existed
    (group / common.GROUP_RECORD).write_text(json.dumps(old))
    assert common.reusable_group(str(group), configs())
    assert not common.reusable_group(str(group), configs(bn_groups=2))
    assert not common.reusable_group(str(group), configs(bn_momentum=0.9))
    (group / common.GROUP_RECORD).write_text("not json")
    assert not common.reusable_group(str(group), configs())


def test_targets_and_budget_fraction_on_hand_made_scores():
    from experiments import mixture_modes as mm

    def group(dataset, method, modes, hq):
        rows = [{"modes": m, "high_quality": q, "reverse_kl": 0.1} for m, q in zip(modes, hq)]
        return {"dataset": dataset, "method": method, "scores": {"raw": rows, "ema": rows}}

    groups = [group("grid_2d", "gan", [20, 22], [0.9, 0.8]), group("grid_2d", "pack4", [24, 23], [0.9, 0.86]),
              group("ring_2d", "gan", [8, 8], [0.9, 0.9]), group("ring_2d", "pack4", [8, 7], [0.95, 0.7])]
    rows = {(r[0], r[1]): r for r in mm.target_rows(groups)}
    assert rows["PacGAN4, grid (25 modes)", "raw"][3:] == ["23.5 modes, 88.0% HQ", "met"]
    assert rows["PacGAN4, ring (8 modes)", "raw"][3:] == ["7.5 modes, 82.5% HQ", "missed"]  # HQ below 85%
    assert rows["GAN vs PacGAN4, grid (25 modes)", "raw"][3:] == ["21.0 vs 23.5", "met"]
    assert rows["GAN vs PacGAN4, ring (8 modes)", "raw"][3:] == ["8.0 vs 7.5", "missed"]
    c = mm.method_config("grid_2d", "pack4", quick_args(quick=False, steps=20_000))
    text = mm.budget_text([{"config": c, "method": "pack4", "dataset": "grid_2d", "batch_size": c.batch_size}],
                          quick_args(quick=False, seeds=3))
    assert "**20,000 of PacGAN'18's 400,000 steps** (20 of 400 epochs of 1,000 steps, 5%)" in text
    assert "PacGAN4 400" in text and "maxout (5 pieces)" in text


def test_group_wall_time_adds_up_its_sittings(tmp_path):
    from experiments import common

    group = str(tmp_path)
    assert common.add_group_wall(group, 2.0) == 2.0  # a group without a record starts at its first sitting
    assert common.add_group_wall(group, 3.5) == 5.5
    (tmp_path / common.GROUP_WALL).write_text("damaged")
    assert common.add_group_wall(group, 1.0) == 1.0  # an unreadable record restarts the count, no traceback
