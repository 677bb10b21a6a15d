"""Sweep summaries from hand-made results rows: statistics, best trials, best-of-k, summary.md, plots, errors."""

import math
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from ganjax.errors import ConfigError
from ganjax.sweep import results as results_lib
from ganjax.sweep import summary

BASE = {"loss": "non_saturating", "penalty": "none"}
D_LR, G_LR = "optimizer_d.learning_rate", "optimizer_g.learning_rate"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row(trial, value, lr=1e-3, seed=0, metric="modes", status="ok", where="best", evaluated=True, **params):
    """A results.jsonl row; ``value`` goes into ``best`` (or ``final``) under ``metric``."""
    scores = {metric: value} if value is not None else {}
    final = {"d_loss": 0.5, "g_loss": 0.7, **({"eval_step": 20} if evaluated else {})}
    return {"trial": trial, "group": "g-0", "mode": "vmap", "params": {**params, D_LR: lr, G_LR: lr, "seed": seed},
            "status": status, "error": None if status == "ok" else "boom", "steps": 20, "wall_seconds": 1.0,
            "final": {**final, **(scores if where == "final" else {})}, "best": scores if where == "best" else {}}


def two_losses(metric="modes"):
    """non_saturating: lr 1e-3 → 7, 8 (+ one diverged at 100); lr 1e-4 → 3, 5. hinge: lr 1e-3 → 6, 2."""
    return [row("t0", 7, 1e-3, 0, metric), row("t1", 8, 1e-3, 1, metric),
            row("t2", 100, 1e-3, 2, metric, status="diverged"),
            row("t3", 3, 1e-4, 0, metric), row("t4", 5, 1e-4, 1, metric),
            row("t5", 6, 1e-3, 0, metric, loss="hinge"), row("t6", 2, 1e-3, 1, metric, loss="hinge")]


def write_rows(sweep_dir, rows):
    os.makedirs(sweep_dir, exist_ok=True)
    for r in rows:
        results_lib.append_result(str(sweep_dir), r)


def test_seed_statistics_are_mean_sample_std_and_student_t_interval():
    s = summary.seed_statistics([1.0, 2.0, 3.0, 6.0])
    std = math.sqrt((4 + 1 + 0 + 9) / 3)
    half = stats.t.ppf(0.975, 3) * std / 2  # t quantile with n - 1 = 3 dof, √n = 2
    assert s["n"] == 4 and s["mean"] == pytest.approx(3.0) and s["std"] == pytest.approx(std)
    assert (s["ci95_low"], s["ci95_high"]) == pytest.approx((3.0 - half, 3.0 + half))
    assert half == pytest.approx(3.4374, abs=1e-4)  # 3.1824 · 2.1602 / 2, by hand
    one = summary.seed_statistics([4.0])
    assert (one["n"], one["mean"], one["std"]) == (1, 4.0, 0.0)
    assert math.isnan(one["ci95_low"]) and math.isnan(one["ci95_high"])
    assert summary.seed_statistics([])["n"] == 0 and math.isnan(summary.seed_statistics([])["mean"])


def test_method_labels_setting_keys_and_values():
    assert summary.method_label({"loss": "wasserstein", "penalty": "wgan_gp"}, BASE) == "wasserstein+wgan_gp"
    assert summary.method_label({"loss": "hinge"}, {"loss": "x", "penalty": "dragan"}) == "hinge+dragan"
    assert summary.method_label({"penalty": "none"}, BASE) == "non_saturating"
    a, b = row("a", 1, seed=0, loss="hinge"), row("b", 2, seed=5, loss="hinge")
    assert summary.setting_key(a["params"]) == summary.setting_key(b["params"])
    assert "seed" not in dict(summary.setting_key(a["params"]))
    assert summary.setting_key(a["params"]) != summary.setting_key(row("c", 1, lr=0.1, loss="hinge")["params"])
    # best[metric] wins over final[metric]; final is the fallback; NaN and absent values are no value.
    both = row("d", 9, metric="fid")
    both["final"]["fid"] = 11
    assert summary.metric_value(both, "fid") == 9
    assert summary.metric_value(row("e", 11, metric="fid", where="final"), "fid") == 11
    assert summary.metric_value(row("f", float("nan")), "modes") is None
    assert summary.metric_value(row("g", None), "modes") is None


def test_lr_key_prefers_the_varied_discriminator_rate():
    rows = two_losses()
    assert summary.lr_key(rows) == D_LR
    for r in rows:
        r["params"][D_LR] = 1e-3
    assert summary.lr_key(rows) == G_LR
    for r in rows:
        r["params"][G_LR] = 1e-3
    assert summary.lr_key(rows) is None


@pytest.mark.parametrize("metric, best_ns, best_hinge", [("modes", ("t1", 8.0), ("t5", 6.0)),
                                                         ("fid", ("t3", 3.0), ("t6", 2.0))])
def test_best_trial_follows_the_metric_direction_and_ignores_diverged_trials(metric, best_ns, best_hinge):
    methods = {m.method: m for m in summary.method_summaries(two_losses(metric), metric, BASE)}
    assert (methods["non_saturating"].best[0]["trial"], methods["non_saturating"].best[1]) == best_ns
    assert (methods["hinge"].best[0]["trial"], methods["hinge"].best[1]) == best_hinge
    ns = methods["non_saturating"]
    assert len(ns.trials) == 5 and ns.fraction("diverged") == pytest.approx(0.2) and ns.fraction("failed") == 0
    # The best setting by mean over ok seeds: lr 1e-3 (7, 8; the diverged 100 left out) for modes, 1e-4 for fid.
    assert ns.best_setting.hyperparams[D_LR] == (1e-3 if metric == "modes" else 1e-4)
    assert ns.best_setting.values == ([7.0, 8.0] if metric == "modes" else [3.0, 5.0])
    assert len(ns.best_setting.trials) == (3 if metric == "modes" else 2)
    # Methods are ranked by their best setting's mean: ns 7.5 > hinge 4 (modes); hinge 4 < ns 4 tie → name order.
    assert [m.method for m in summary.method_summaries(two_losses(metric), metric, BASE)][0] == \
        ("non_saturating" if metric == "modes" else "hinge")


def test_best_of_k_improves_with_k_and_reaches_the_overall_best():
    values = [3.0, 9.0, 1.0, 7.0, 4.0, 6.0, 2.0]
    for higher, best in ((True, 9.0), (False, 1.0)):
        draws = summary.best_of_k(values, len(values), higher, num_draws=500, seed=1)
        assert draws.shape == (7, 500)
        medians = np.median(draws, axis=1)
        steps = np.diff(medians) if higher else -np.diff(medians)
        assert (steps >= 0).all() and steps.sum() > 0
        assert (draws[-1] == best).all()
        assert set(draws[0]) == set(values)  # k = 1: one trial at random, every one drawn
        assert draws[0].mean() == pytest.approx(np.mean(values), abs=0.5)
    with pytest.raises(ValueError, match="k_max"):
        summary.best_of_k(values, 8, True)


def test_summary_markdown_has_the_header_method_and_setting_rows():
    text = summary.summarize(two_losses(), "modes", BASE)
    assert "7 trials: 6 ok, 1 diverged, 0 failed" in text and "`modes` (higher is better)" in text
    assert f"Learning rate in the plots: `{D_LR}`." in text
    lr = f"{D_LR}=0.001, {G_LR}=0.001"
    # 7, 8: mean 7.5, std 0.7071, t(0.975, 1) = 12.71 → 7.5 ± 6.353.
    assert (f"| non_saturating | 5 | 20% | 0% | t1 | {lr}, seed=1 | 8 | {lr} | 2 | 7.5 ± 0.7071 | [1.147, 13.85] |"
            in text)
    assert f"| hinge | 2 | 0% | 0% | t5 | {lr}, seed=0 | 6 | {lr} | 2 | 4 ± 2.828 | [-21.41, 29.41] |" in text
    assert f"| non_saturating | {lr} | 2/3 | 7.5 ± 0.7071 | [1.147, 13.85] |" in text
    assert f"| non_saturating | {D_LR}=0.0001, {G_LR}=0.0001 | 2/2 | 4 ± 1.414 | [-8.706, 16.71] |" in text
    assert text.index("| non_saturating | 5 |") < text.index("| hinge | 2 |")  # best method first
    assert "No trial has" not in text


def test_summary_without_any_value_says_so():
    rows = [row("t0", None, status="failed"), row("t1", None, seed=1, status="diverged")]
    text = summary.summarize(rows, "fid", BASE)
    assert "**No trial has a `fid` value**" in text
    assert "| non_saturating | 2 | 50% | 50% | — | — | — | — | 0 | — | — |" in text


def test_write_summary_writes_markdown_and_valid_pngs(tmp_path):
    write_rows(tmp_path, two_losses())
    written = summary.write_summary(str(tmp_path), "modes", BASE)
    assert written == [str(tmp_path / name) for name in (summary.SUMMARY, summary.METRIC_VS_LR, summary.BEST_OF_K)]
    assert "| hinge | 2 |" in (tmp_path / summary.SUMMARY).read_text()
    for name in (summary.METRIC_VS_LR, summary.BEST_OF_K):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
        with Image.open(tmp_path / name) as image:
            image.verify()
            assert image.size[0] > 100 and image.size[1] > 100
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_write_summary_skips_impossible_plots_and_removes_stale_ones(tmp_path):
    write_rows(tmp_path, two_losses())
    summary.write_summary(str(tmp_path), "modes", BASE)
    # Every trial failed before evaluating (no metric anywhere, not an error): markdown only, old plots gone.
    failed = tmp_path / "failed"
    write_rows(failed, [row("t0", None, status="failed", evaluated=False)])
    for name in (summary.METRIC_VS_LR, summary.BEST_OF_K):
        shutil.copy(tmp_path / name, failed / name)
    assert summary.write_summary(str(failed), "fid", BASE) == [str(failed / summary.SUMMARY)]
    assert sorted(os.listdir(failed)) == ["results.jsonl", "summary.md"]
    assert "**No trial has a `fid` value**" in (failed / summary.SUMMARY).read_text()
    # A metric varied over one learning rate only: no metric-vs-lr plot, the best-of-k one still.
    one_lr = tmp_path / "one_lr"
    write_rows(one_lr, [r for r in two_losses() if r["params"][D_LR] == 1e-3])
    assert summary.write_summary(str(one_lr), "modes", BASE) == [str(one_lr / n) for n in (summary.SUMMARY,
                                                                                           summary.BEST_OF_K)]


def test_write_summary_errors_name_the_missing_file_and_the_unknown_metric(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path}/results.jsonl is missing"):
        summary.write_summary(str(tmp_path), "modes", BASE)
    write_rows(tmp_path, two_losses())
    with pytest.raises(ConfigError, match=r"unknown metric 'fidd'; valid choices: d_loss, g_loss, modes"):
        summary.write_summary(str(tmp_path), "fidd", BASE)
    assert not (tmp_path / summary.SUMMARY).exists()
