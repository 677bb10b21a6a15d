"""experiments/mode_collapse_remedies.py (seed 001's remedies vs the plain GAN) in ``--quick`` mode.

The quick budget (2 seeds, 20 steps, the quick nets, 200 evaluation samples)
checks the pipeline — one vmapped group per remedy and dataset, the config
key each remedy sets, both tables, both PNGs — not the science.
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
import pytest

from tests.conftest import assert_refused_before_writing
from tests.test_experiments_figs import assert_png, assert_record, tables

TOY_TABLE = "2-D ring and grid: modes captured, high-quality samples, reverse KL"
IMAGE_TABLE = "Fashion-MNIST: FID, classes covered, precision and recall (domain classifier)"


def parsed(*argv: str) -> argparse.Namespace:
    """The script's arguments after ``check_arguments`` (``--out`` is not needed for configs)."""
    from experiments import mode_collapse_remedies as mcr

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    mcr.add_arguments(parser)
    a = parser.parse_args(list(argv))
    mcr.check_arguments(a)
    return a


def flat(c) -> dict:
    out = {}

    def walk(prefix, d):
        for k, v in d.items():
            if hasattr(v, "items"):
                walk(f"{prefix}{k}.", v)
            else:
                out[prefix + k] = v
    walk("", c.to_dict())
    return out


@pytest.mark.parametrize("dataset, remedy, expected", [
    ("ring_2d", "augment", {"augment": "noise:0.01"}),  # instance noise at the mode std of PacGAN's ring
    ("grid_2d", "augment", {"augment": "noise:0.05"}),
    ("ring_2d", "k3", {"num_discriminators": 3}),
    ("ring_2d", "ttur", {"optimizer_d.learning_rate": 4e-4}),
    ("fashion_mnist", "augment", {"augment": "translation,cutout"}),
    ("fashion_mnist", "k3", {"num_discriminators": 3}),
    ("fashion_mnist", "ttur", {"optimizer_d.learning_rate": 8e-4}),
])
def test_each_remedy_changes_only_its_config_keys(dataset, remedy, expected):
    from experiments import mode_collapse_remedies as mcr

    a = parsed("--quick", "--seeds=2")
    base, other = flat(mcr.remedy_config(dataset, "gan", a, 1)), flat(mcr.remedy_config(dataset, remedy, a, 1))
    changed = {k: other[k] for k in base if base[k] != other[k]}
    assert changed == pytest.approx(expected)
    assert base["seed"] == 1 and base["eval_every"] == base["num_steps"] == base["checkpoint_every"] == 20


def test_gan_is_always_the_first_remedy_and_names_are_checked(tmp_path):
    assert parsed("--quick", "--remedies=ttur,gan,k3").remedies == ["gan", "ttur", "k3"]
    for argv, match in ((["--remedies=flip"], r"unknown remedy 'flip'; valid choices: augment, gan, k3, ttur"),
                        (["--datasets=mnist3"], r"unknown dataset 'mnist3'; valid choices: fashion_mnist, "
                                                r"grid_2d, ring_2d"),
                        (["--image_config=nope.py"], r"--image_config=nope\.py: no such file")):
        assert_refused_before_writing("mode_collapse_remedies", tmp_path, argv, match)


def test_change_marks_only_differences_beyond_the_seed_spread():
    from experiments.mode_collapse_remedies import change

    def group(*fids):
        return {"scores": {"raw": [{"fid": f} for f in fids]}, "status": ["ok"] * len(fids)}

    base = group(100.0, 110.0)                      # mean 105, std 5
    assert change(base, base, "fid", 1, 1, True) == "—"
    assert change(group(90.0, 94.0), base, "fid", 1, 1, True) == "-13.0 ✓"   # better by 13 > 5
    assert change(group(102.0, 104.0), base, "fid", 1, 1, True) == "-2.0"     # within the spread
    assert change(group(120.0, 122.0), base, "fid", 1, 1, True) == "+16.0 ✗"
    assert change(group(120.0, 122.0), base, "fid", 1, 1, False) == "+16.0 ✓"  # higher is better
    assert change(group(105.04), group(105.0), "fid", 1, 1, True) == "+0.0"   # no spread, invisible change


def test_quick_run_on_the_ring_writes_the_toy_table_and_figure(tmp_path):
    from experiments import mode_collapse_remedies as mcr

    out = str(tmp_path / "mcr")
    result = mcr.main([f"--out={out}", "--quick", "--datasets=ring_2d", "--remedies=augment"])
    assert sorted(os.listdir(out)) == ["mode_collapse_remedies.md", "mode_collapse_remedies_toy.png", "runs"]
    assert_png(result["images"][0])
    report = os.path.join(out, "mode_collapse_remedies.md")
    assert_record(report, "mode_collapse_remedies", out)
    columns, rows = tables(report)[TOY_TABLE]
    assert columns[:5] == ["dataset", "remedy", "modes", "high-quality %", "reverse KL"]
    assert [r[1] for r in rows] == ["plain GAN", "augmentation"]
    assert all(0 <= float(r[2].split(" ± ")[0]) <= 8 for r in rows)
    assert [g["config"].augment for g in result["groups"]] == ["", "noise:0.01"]
    assert IMAGE_TABLE not in tables(report)
    # The budget names the protocol's own nets and rule (PacGAN'18's maxout D, simultaneous updates).
    text = open(report).read()
    assert "protocol `pacgan`" in text and "maxout (5 pieces)" in text and "simultaneous updates" in text


def fake_image_group(remedy: str, fids: list[float], classes: list[int]) -> dict:
    rows = [{"fid": f, "classes": k, "class_kl": 0.1, "is": 5.0, "precision": 0.5, "recall": 0.4}
            for f, k in zip(fids, classes)]
    return {"dataset": "fashion_mnist", "method": remedy, "scores": {"raw": rows}, "status": ["ok"] * len(rows),
            "wall": 1.0, "samples": np.linspace(-1, 1, 64 * 28 * 28).reshape(64, 28, 28, 1)}


def test_image_table_and_sample_panels_from_scores(tmp_path):
    from experiments import mode_collapse_remedies as mcr

    groups = [fake_image_group("gan", [100.0, 110.0], [6, 8]), fake_image_group("k3", [80.0, 84.0], [9, 9])]
    table = mcr.score_table(groups, mcr.IMAGE_COLUMNS, with_dataset=False).splitlines()
    assert table[0] == ("| remedy | FID (classifier) | classes (of 10) | class KL | classifier score | precision "
                        "| recall | Δ FID (classifier) vs plain GAN | Δ classes (of 10) vs plain GAN |")
    sd = statistics.stdev  # sample std over the seeds (ddof=1)
    assert table[2] == (f"| plain GAN | 105.00 ± {sd([100.0, 110.0]):.2f} (n=2) | 7.0 ± {sd([6, 8]):.1f} (n=2) "
                        "| 0.100 ± 0.000 (n=2) | 5.00 ± 0.00 (n=2) | 0.500 ± 0.000 (n=2) | 0.400 ± 0.000 (n=2) | — | — |")
    assert table[3].endswith("| -23.00 ✓ | +2.0 ✓ |")
    assert_png(mcr.plot_images(str(tmp_path / "panels.png"), groups))
    panel = mcr.sample_panel(groups[0]["samples"])  # the samples' grey levels, -1 → 0 and 1 → 255
    assert panel.shape == (8 * 30 + 2, 8 * 30 + 2) and panel.dtype == np.uint8
    assert panel[2:30, 2:30].min() == 0 and panel.max() == 255 and len(np.unique(panel)) > 200


@pytest.mark.slow
def test_quick_run_writes_both_tables_and_figures(tmp_path, fashion_data_dir, classifier_cache):
    from experiments import mode_collapse_remedies as mcr

    cache = classifier_cache
    out = str(tmp_path / "mcr")
    result = mcr.main([f"--out={out}", "--quick", "--datasets=ring_2d,fashion_mnist", "--remedies=ttur",
                       f"--data_dir={fashion_data_dir}", f"--cache_dir={cache}"])
    assert sorted(os.listdir(out)) == ["mode_collapse_remedies.md", "mode_collapse_remedies_images.png",
                                       "mode_collapse_remedies_toy.png", "runs"]
    for image in result["images"]:
        assert_png(image)
    report = os.path.join(out, "mode_collapse_remedies.md")
    assert_record(report, "mode_collapse_remedies", out)
    found = tables(report)
    columns, rows = found[TOY_TABLE]
    assert columns == ["dataset", "remedy", "modes", "high-quality %", "reverse KL",
                       "Δ modes vs plain GAN", "Δ high-quality % vs plain GAN"]
    assert [(r[0], r[1]) for r in rows] == [("ring (8 modes)", "plain GAN"), ("ring (8 modes)", "TTUR (lr_D = 4 lr_G)")]
    assert rows[0][5] == "—" and rows[1][5] != "—"
    columns, rows = found[IMAGE_TABLE]
    assert columns == ["remedy", "FID (classifier)", "classes (of 10)", "class KL", "classifier score", "precision",
                       "recall", "Δ FID (classifier) vs plain GAN", "Δ classes (of 10) vs plain GAN"]
    assert [r[0] for r in rows] == ["plain GAN", "TTUR (lr_D = 4 lr_G)"]
    for r in rows:
        fid, classes = float(r[1].split(" ± ")[0]), float(r[2].split(" ± ")[0])
        assert fid > 0 and 1 <= classes <= 10
    # Both seeds of each group were trained in one program and scored; the samples are the plotted ones.
    for g in result["groups"]:
        assert g["status"] == ["ok", "ok"] and len(g["scores"]["raw"]) == 2
        assert g["samples"].shape == ((2500, 2) if g["dataset"] == "ring_2d" else (64, 28, 28, 1))
    _, per_seed = found["Fashion-MNIST per seed"]
    assert all(len(r[2].split(", ")) == 2 for r in per_seed)
