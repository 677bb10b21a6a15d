"""The figure scripts experiments/ae_pretrain.py (seed 004) and dcgan_interpolation.py (Radford'15).

The DCGAN script runs its ``--quick`` mode in-process (train, then load the
workdir again with ``--workdir``). ``ae_pretrain --quick`` trains four runs
(two variants × two seeds, each compiling phase 1, the GAN step and the FID
evaluator): about 80 s of CPU, so it is ``slow``; its fast siblings check the
tables, the plot and the configs on hand-made FID curves.
"""

from __future__ import annotations

import os
import statistics

import numpy as np
import pytest

from tests.conftest import assert_refused_before_writing
from tests.test_experiments_figs import assert_png, assert_record, tables

FID_COLUMNS = ["step", "AE-pretrained decoder FID", "from scratch FID"]
SPREAD_COLUMNS = ["variant", "final FID", "final FID per seed", "std across seeds, final",
                  "std across seeds, mean over evaluations", "std across seeds, max", "autoencoder MSE (phase 1)"]
SMOOTHNESS_COLUMNS = ["generator", "mean L2, consecutive images", "max L2, consecutive images", "L2, endpoints",
                      "path length / endpoint L2"]


# ---------------------------------------------------------------------------
# ae_pretrain


def test_ae_pretrain_tables_and_plot_from_fid_curves(tmp_path):
    from experiments import ae_pretrain as ae

    curves = {"pretrained": [{3: 100.0, 6: 80.0}, {3: 110.0, 6: 90.0, 9: 1.0}],  # 9: only one seed has it
              "scratch": [{3: 200.0, 6: 150.0}, {3: 240.0, 6: 170.0}]}
    stacked = {v: ae.stack_curves(c) for v, c in curves.items()}
    assert stacked["pretrained"][0] == [3, 6]
    fids = {v: s[1] for v, s in stacked.items()}
    np.testing.assert_array_equal(fids["scratch"], [[200.0, 150.0], [240.0, 170.0]])
    sd = statistics.stdev  # the sample std over seeds (ddof=1), from the standard library

    def ms(values, digits=2):
        return f"{statistics.mean(values):.{digits}f} ± {sd(values):.{digits}f} (n={len(values)})"

    assert ae.fid_table([3, 6], fids).splitlines()[2:] == [f"| 3 | {ms([100, 110])} | {ms([200, 240])} |",
                                                           f"| 6 | {ms([80, 90])} | {ms([150, 170])} |"]
    spread = ae.spread_table(fids, {"pretrained": [0.1, 0.3], "scratch": [float("nan")] * 2}).splitlines()
    assert spread[0] == "| " + " | ".join(SPREAD_COLUMNS) + " |"
    # std across seeds at the end, its mean and max over the evaluations (steps 3 and 6)
    pre, scr = (sd([100, 110]), sd([80, 90])), (sd([200, 240]), sd([150, 170]))
    assert spread[2] == (f"| AE-pretrained decoder | {ms([80, 90])} | 80.00, 90.00 | {pre[1]:.2f} "
                         f"| {statistics.mean(pre):.2f} | {max(pre):.2f} | {ms([0.1, 0.3], 4)} |")
    assert spread[3] == (f"| from scratch | {ms([150, 170])} | 150.00, 170.00 | {scr[1]:.2f} "
                         f"| {statistics.mean(scr):.2f} | {max(scr):.2f} | — |")
    assert spread[3] == "| from scratch | 160.00 ± 14.14 (n=2) | 150.00, 170.00 | 14.14 | 21.21 | 28.28 | — |"
    assert_png(ae.plot_fid(str(tmp_path / "fid.png"), [3, 6], fids, "raw"))
    assert ae.fid_curve([{"step": 3, "generator": "raw", "fid": 7.0}, {"step": 3, "generator": "ema", "fid": 9.0}],
                        "ema") == {3: 9.0}


def test_ae_pretrain_variants_differ_only_in_pretraining():
    import argparse

    from experiments import ae_pretrain as ae
    from ganjax.config import config_diff, validate

    a = argparse.Namespace(quick=True, seeds=2, steps=6, pretrain_steps=6, eval_every=3, eval_samples=100,
                           generator="raw", data_dir="", cache_dir="")
    pre, scratch = ae.run_config(a, "pretrained", 1), ae.run_config(a, "scratch", 1)
    for c in (pre, scratch):
        validate(c)
    assert config_diff(pre.to_dict(), scratch.to_dict()) == ["pretrain.autoencoder_steps"]
    assert (pre.pretrain.autoencoder_steps, scratch.pretrain.autoencoder_steps) == (6, 0)
    assert (pre.model.generator, pre.seed, pre.eval.features, pre.eval.ema) == ("ae_decoder", 1, "classifier", False)


@pytest.mark.slow
def test_ae_pretrain_quick_writes_fid_plot_and_tables(tmp_path, fashion_data_dir, classifier_cache):
    from experiments import ae_pretrain as ae

    cache = classifier_cache
    out = str(tmp_path / "ae")
    result = ae.main([f"--out={out}", "--quick", f"--data_dir={fashion_data_dir}", f"--cache_dir={cache}"])
    assert_png(os.path.join(out, "ae_pretrain_fid.png"))
    report = os.path.join(out, "ae_pretrain.md")
    assert_record(report, "ae_pretrain", out)
    t = tables(report)
    columns, rows = t["FID over training"]
    q = ae.QUICK
    assert columns == FID_COLUMNS
    assert [int(r[0]) for r in rows] == list(range(q["eval_every"], q["steps"] + 1, q["eval_every"]))
    columns, rows = t["Run-to-run spread"]
    assert columns == SPREAD_COLUMNS and [r[0] for r in rows] == ["AE-pretrained decoder", "from scratch"]
    assert rows[1][-1] == "—" and rows[0][-1] != "—"  # only the pretrained runs have phase 1
    for v in ae.VARIANTS:
        assert result["fids"][v].shape == (q["seeds"], len(result["steps"]))
        assert np.all(np.isfinite(result["fids"][v])) and np.all(result["fids"][v] > 0)
    assert os.path.exists(os.path.join(out, "runs", "pretrained_seed1", "pretrain", "metrics.jsonl"))
    assert not os.path.exists(os.path.join(out, "runs", "scratch_seed1", "pretrain"))


def test_ae_pretrain_resume_keeps_finished_runs_and_default_trains_afresh(tmp_path, monkeypatch, fashion_data_dir):
    """With --resume the workdirs under DIR/runs are handed to the trainer as they are (it resumes from their
    checkpoints); without it they are deleted first. The trainer is replaced by one that writes FID rows."""
    import json

    from experiments import ae_pretrain as ae
    from ganjax import trainer

    calls = []

    def fake_train(config, workdir, dataset=None):
        fresh = not os.path.exists(os.path.join(workdir, "metrics.jsonl"))
        calls.append((os.path.basename(workdir), fresh))
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
            for step in range(config.eval_every, config.num_steps + 1, config.eval_every):
                f.write(json.dumps({"kind": "eval", "step": step, "generator": "raw", "fid": 10.0 + config.seed}) + "\n")

    monkeypatch.setattr(trainer, "train_and_evaluate", fake_train)
    out = str(tmp_path / "ae")
    argv = [f"--out={out}", "--quick", f"--data_dir={fashion_data_dir}"]
    ae.main(argv)
    runs = ["pretrained_seed0", "scratch_seed0", "pretrained_seed1", "scratch_seed1"]
    assert calls == [(r, True) for r in runs]
    calls.clear()
    result = ae.main(argv + ["--resume"])
    assert calls == [(r, False) for r in runs]  # the same workdirs, continued
    assert result["fids"]["scratch"].tolist() == [[10.0, 10.0], [11.0, 11.0]]
    calls.clear()
    ae.main(argv)
    assert calls == [(r, True) for r in runs]


# ---------------------------------------------------------------------------
# dcgan_interpolation


def test_interpolation_paths():
    from experiments.dcgan_interpolation import lerp, slerp

    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=(5, 100)), rng.normal(size=(5, 100))
    t = np.linspace(0.0, 1.0, 7)
    for f in (lerp, slerp):
        p = f(z0, z1, t)
        assert p.shape == (5, 7, 100)
        np.testing.assert_allclose(p[:, 0], z0, atol=1e-12)
        np.testing.assert_allclose(p[:, -1], z1, atol=1e-12)
    # Equal-norm endpoints: slerp stays on the sphere, the linear midpoint shrinks to about 1/sqrt(2).
    z1 = z1 / np.linalg.norm(z1, axis=-1, keepdims=True) * np.linalg.norm(z0, axis=-1, keepdims=True)
    norms = np.linalg.norm(slerp(z0, z1, t), axis=-1)
    np.testing.assert_allclose(norms, np.repeat(np.linalg.norm(z0, axis=-1)[:, None], 7, 1), rtol=1e-10)
    mid = np.linalg.norm(lerp(z0, z1, t)[:, 3], axis=-1) / np.linalg.norm(z0, axis=-1)
    assert np.all((mid > 0.6) & (mid < 0.8))
    np.testing.assert_allclose(slerp(z0, z0, t), lerp(z0, z0, t))  # parallel ends: the linear path


def test_smoothness_of_a_cross_fade_and_of_a_jump():
    from experiments.dcgan_interpolation import smoothness

    a, b = np.zeros((4, 4, 1)), np.ones((4, 4, 1))
    fade = np.stack([(1 - t) * a + t * b for t in np.linspace(0, 1, 5)])[None]   # [1, 5, 4, 4, 1]
    s = smoothness(fade)
    assert s["endpoint"] == pytest.approx(4.0) and s["step_mean"] == pytest.approx(1.0)
    assert s["ratio"] == pytest.approx(1.0)
    jump = np.stack([a, a, b, a, b])[None]
    s = smoothness(jump)
    assert s["step_max"] == pytest.approx(4.0) and s["ratio"] == pytest.approx(3.0)


@pytest.fixture(scope="module")
def dcgan_quick(fashion_data_dir, tmp_path_factory):
    from experiments import dcgan_interpolation as di

    out = str(tmp_path_factory.mktemp("dcgan") / "di")
    return out, di.main([f"--out={out}", "--quick", f"--data_dir={fashion_data_dir}"])


def test_dcgan_interpolation_quick_trains_and_writes_panels_and_table(dcgan_quick):
    from experiments import dcgan_interpolation as di

    out, result = dcgan_quick
    assert sorted(os.listdir(out)) == ["dcgan_interpolation.md", "dcgan_interpolation.png", "runs"]
    assert_png(os.path.join(out, "dcgan_interpolation.png"))
    report = os.path.join(out, "dcgan_interpolation.md")
    assert_record(report, "dcgan_interpolation", out)
    text = open(report).read()
    assert "**linear** interpolation" in text and "trained by this command" in text
    assert f"checkpoint at step {di.QUICK['steps']}" in text
    columns, rows = tables(report)["Smoothness"]
    assert columns == SMOOTHNESS_COLUMNS and [r[0] for r in rows] == ["ema", "raw"]
    for r in rows:
        step_mean, step_max, endpoint, ratio = map(float, r[1:])
        assert 0 < step_mean <= step_max and endpoint > 0 and ratio >= 1.0 - 1e-3  # triangle inequality
    assert result["step"] == di.QUICK["steps"]


def test_dcgan_interpolation_loads_a_workdir_without_training(dcgan_quick, tmp_path):
    from experiments import dcgan_interpolation as di

    workdir = os.path.join(dcgan_quick[0], "runs", "dcgan")
    out = str(tmp_path / "loaded")
    result = di.main([f"--out={out}", f"--workdir={workdir}", "--interpolation=slerp",
                      "--generators=raw", "--rows=2", "--interp_steps=3"])
    assert sorted(os.listdir(out)) == ["dcgan_interpolation.md", "dcgan_interpolation.png"]  # nothing trained
    text = open(result["report"]).read()
    assert "**slerp** interpolation" in text and f"loaded from `{workdir}`" in text
    columns, rows = tables(result["report"])["Smoothness"]
    assert [r[0] for r in rows] == ["raw"]
    assert result["step"] == di.QUICK["steps"] and result["paths_shape"] == (2, 3, 100)
    assert_png(result["images"][0])


@pytest.mark.parametrize("module, argv, message", [
    ("ae_pretrain", ["--generator=best"], "unknown --generator 'best'; valid choices: ema, raw"),
    ("ae_pretrain", ["--steps=10", "--eval_every=20"], "--eval_every=20 must be at most --steps=10"),
    ("dcgan_interpolation", ["--interpolation=cubic"], "unknown --interpolation 'cubic'; valid choices: linear, slerp"),
    ("dcgan_interpolation", ["--generators=ema,best"], "unknown --generators entry 'best'; valid choices: ema, raw"),
    ("dcgan_interpolation", ["--dataset=ring_2d"], "--dataset=ring_2d is a toy distribution"),
    ("dcgan_interpolation", ["--interp_steps=1"], "--interp_steps=1 must be >= 2"),
    ("dcgan_interpolation", ["--workdir=/nonexistent/run"], "--workdir=/nonexistent/run has no config.json"),
    ("dcgan_interpolation", ["--workdir=TOY_WORKDIR"], "was trained on the toy distribution 'gaussian_1d'"),
    ("dcgan_interpolation", ["--image_size=-1"], "config.data.image_size must be an integer >= 0"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, module, argv, message):
    import json

    toy = tmp_path / "toy_run"
    toy.mkdir()
    (toy / "config.json").write_text(json.dumps({"dataset": "gaussian_1d"}))
    argv = [arg.replace("TOY_WORKDIR", str(toy)) for arg in argv]
    assert_refused_before_writing(module, tmp_path, argv, message.replace("(", r"\("))
