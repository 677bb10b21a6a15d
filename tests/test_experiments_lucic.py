"""experiments/lucic_losses.py: Lucic'18's FID-per-loss comparison over a learning-rate sweep.

Each method's trials compile their own vmapped program and FID evaluator
(about 10–15 s of CPU per method even at ``--quick``), so the in-process
``--quick`` run here asks for one method (WGAN-GP: conditional keys); the run
with all seven is ``slow``.
The fast siblings check the sweep's trials, the tables, the ranks and the
plot on hand-made result rows for every method.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import pytest

from tests.conftest import assert_refused_before_writing
from tests.test_experiments_figs import assert_png, assert_record, tables

TABLE_COLUMNS = ["method", "loss + penalty", "trials", "diverged", "failed", "min FID", "median FID",
                 "mean ± std FID", "best lr", "FID at best lr", "our rank", "published best FID (Inception)",
                 "published rank"]


def args(**kw) -> argparse.Namespace:
    from experiments import lucic_losses as ll

    a = argparse.Namespace(quick=True, full=False, methods=",".join(ll.METHODS), lrs="1e-4,1e-3", seeds=2,
                           steps=4, eval_samples=100, data_dir="", cache_dir="")
    for k, v in kw.items():
        setattr(a, k, v)
    ll.check_arguments(a)
    return a


def test_each_trial_gets_exactly_its_methods_keys_and_each_method_is_one_vmapped_group():
    from experiments import lucic_losses as ll
    from ganjax.config import config_diff, load_config_file
    from ganjax.sweep import spec

    a = args()
    sweep = ll.make_sweep(a)
    trials = spec.expand(sweep)
    assert len(trials) == len(ll.METHODS) * 2 * 2
    base = spec.load_base(sweep)
    groups = spec.groups(trials)
    assert len(groups) == len(ll.METHODS)
    for members in groups.values():  # lrs × seeds of one method stack into one program
        assert len(members) == 4 and len({ll.method_of(t.params) for t in members}) == 1
    plain = load_config_file(*spec.split_base(a.base))
    for t, c in zip(trials, spec.trial_configs(sweep, trials)):
        m = ll.METHODS[ll.method_of(t.params)]
        expected = spec.apply_params(base, {**m.overrides(), "optimizer_g.learning_rate": t.params[ll.LR],
                                            "optimizer_d.learning_rate": t.params[ll.LR], "seed": t.params["seed"]})
        assert c.to_dict() == expected.to_dict(), t.params
        assert (c.eval.features, c.eval.ema, c.eval_every, c.num_steps) == ("classifier", False, 4, 4)
        changed = set(config_diff(plain.to_dict(), c.to_dict()))
        assert ("model.d.norm" in changed) == (m.penalty != "none")
        assert ("optimizer_d.clip_value" in changed) == (m.label == "WGAN")
    # --methods=wgan_gp alone: Wasserstein with the gradient penalty only (no clipped WGAN sneaks in).
    only = spec.expand(ll.make_sweep(args(methods="wgan_gp")))
    assert {(t.params["loss"], t.params["penalty"]) for t in only} == {("wasserstein", "wgan_gp")}
    assert "optimizer_d.clip_value" not in only[0].params


def test_registry_pairs_are_unique_and_published_values_are_the_papers():
    from experiments import lucic_losses as ll

    assert len({(m.loss, m.penalty) for m in ll.METHODS.values()}) == len(ll.METHODS)
    published = {m.label: m.published for m in ll.METHODS.values()}
    assert published == {"MM GAN": 29.6, "NS GAN": 26.5, "LSGAN": 30.7, "WGAN": 21.5, "WGAN-GP": 24.5,
                         "DRAGAN": 27.7, "hinge GAN": None}
    assert ll.BUDGETS["full"].lrs == (1e-5, 3.16e-5, 1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2)
    assert ll.BUDGETS["full"].steps == 20 * 937 and ll.BUDGETS["full"].seeds == 5


def fake_rows() -> list[dict]:
    """Two lrs × two seeds per method; WGAN's high lr diverges in one seed, hinge's group failed."""
    from experiments import lucic_losses as ll

    fid = {"mm": 60.0, "ns": 40.0, "ls": 70.0, "wgan": 30.0, "wgan_gp": 50.0, "dragan": 45.0, "hinge": None}
    rows = []
    for name, m in ll.METHODS.items():
        for lr in (1e-4, 1e-3):
            for seed in (0, 1):
                params = {"loss": m.loss, "penalty": m.penalty, **m.extra, "optimizer_g.learning_rate": lr,
                          ll.LR: lr, "seed": seed}
                status, value = "ok", None if fid[name] is None else fid[name] + 10 * (lr == 1e-3) + seed
                if name == "hinge":
                    status = "failed"
                elif name == "wgan" and lr == 1e-3 and seed == 1:
                    status, value = "diverged", 999.0  # an evaluation before diverging: still not scored
                rows.append({"trial": f"{name}-{lr}-{seed}", "params": params, "status": status,
                             "error": "boom" if status == "failed" else None, "wall_seconds": 1.0,
                             "final": {} if value is None else {"fid": value},
                             "best": {} if value is None else {"fid": value}})
    return rows


def test_method_table_ranks_and_plot_from_result_rows(tmp_path):
    from experiments import lucic_losses as ll

    names = list(ll.METHODS)
    stats = ll.method_stats(fake_rows(), names)
    by = {s["name"]: s for s in stats}
    assert (by["wgan"]["trials"], by["wgan"]["diverged"], by["wgan"]["fids"]) == (4, 1, [30.0, 31.0, 40.0])
    assert by["wgan"]["best_lr"] == 1e-4 and by["wgan"]["best_lr_fid"] == 30.5
    assert (by["hinge"]["failed"], by["hinge"]["fids"], by["hinge"]["rank"]) == (4, [], None)
    # ours, by FID at the best lr: wgan 30.5 < ns 40.5 < dragan 45.5 < wgan_gp 50.5 < mm 60.5 < ls 70.5
    assert [by[n]["rank"] for n in ("wgan", "ns", "dragan", "wgan_gp", "mm", "ls")] == [1, 2, 3, 4, 5, 6]
    # the paper's: WGAN 21.5 < WGAN-GP 24.5 < NS 26.5 < DRAGAN 27.7 < MM 29.6 < LSGAN 30.7
    assert [by[n]["published_rank"] for n in ("wgan", "wgan_gp", "ns", "dragan", "mm", "ls")] == [1, 2, 3, 4, 5, 6]
    lines = ll.method_table(stats).splitlines()
    assert lines[0] == "| " + " | ".join(TABLE_COLUMNS) + " |"
    sd = statistics.stdev([30.0, 31.0, 40.0])  # sample std (ddof=1) of the three ok FIDs
    assert lines[2 + names.index("wgan")] == (f"| WGAN | `wasserstein` | 4 | 1 | 0 | 30.0 | 31.0 | 33.7 ± {sd:.1f} (n=3) "
                                              "| 0.0001 | 30.5 | 1 | 21.5 | 1 |")
    assert lines[2 + names.index("hinge")] == "| hinge GAN | `hinge` | 4 | 0 | 4 |" + " — |" * 8
    assert "ρ = +0.83" in ll.rank_agreement(stats)
    lr_lines = ll.lr_table(fake_rows(), ["wgan", "hinge"], (1e-4, 1e-3)).splitlines()
    assert lr_lines[2:] == [f"| WGAN | 30.5 ± {statistics.stdev([30.0, 31.0]):.1f} (n=2) | 40.0 (1/2 diverged or failed) |",
                            "| hinge GAN | — (2/2 diverged or failed) | — (2/2 diverged or failed) |"]
    assert_png(ll.plot_fid(str(tmp_path / "fid.png"), stats, (1e-4, 1e-3)))


def manifest(sweep) -> str:
    """A ``sweep.json`` as ganjax.sweep.run writes it."""
    from ganjax.config import to_plain
    from ganjax.sweep import spec

    trials = [{"id": t.id, "params": dict(t.params)} for t in spec.expand(sweep)]
    return json.dumps({"sweep": to_plain(sweep), "trials": trials})


def test_a_sweep_folder_is_resumed_only_for_the_same_sweep(tmp_path):
    from experiments import lucic_losses as ll

    sweep = ll.make_sweep(args(methods="ns"))
    runs = tmp_path / "runs"
    assert not ll.clear_stale_runs(str(runs), sweep)  # nothing there
    for other in (args(methods="ns", steps=5), args(methods="ns", lrs="1e-4"), args(methods="ns,mm"), None):
        runs.mkdir()
        (runs / "sweep.json").write_text(manifest(sweep))
        assert not ll.clear_stale_runs(str(runs), sweep) and runs.exists()
        if other is None:  # a folder without sweep.json is not resumed either
            (runs / "sweep.json").unlink()
        assert ll.clear_stale_runs(str(runs), sweep if other is None else ll.make_sweep(other))
        assert not runs.exists()


def test_report_only_reads_the_finished_trials_and_says_which_methods_are_missing(tmp_path):
    from experiments import lucic_losses as ll
    from ganjax.errors import ConfigError
    from ganjax.sweep import spec

    out = tmp_path / "lucic"
    argv = [f"--out={out}", "--quick", "--methods=ns,mm", "--report_only"]
    with pytest.raises(ConfigError, match="holds no run of this sweep"):  # nothing run yet
        ll.main(argv)
    a = args(methods="ns,mm", lrs=None, seeds=None, steps=None, eval_samples=None)  # the command's settings
    sweep = ll.make_sweep(a)
    runs = out / "runs"
    runs.mkdir(parents=True)
    (runs / "sweep.json").write_text(manifest(ll.make_sweep(args(methods="ns,mm", steps=5))))
    with pytest.raises(ConfigError, match="holds no run of this sweep"):  # another budget's folder
        ll.main(argv)
    assert runs.exists()  # refused, never removed
    (runs / "sweep.json").write_text(manifest(sweep))
    with pytest.raises(ConfigError, match="no trial in .* has finished yet"):
        ll.main(argv)
    trials = spec.expand(sweep)
    ns = [t for t in trials if ll.method_of(t.params) == "ns"]
    assert len(trials) == 2 and len(ns) == 1
    row = {"trial": ns[0].id, "params": dict(ns[0].params), "status": "ok", "error": None, "wall_seconds": 5.0,
           "final": {"fid": 123.4}, "best": {"fid": 123.4}}
    (runs / "results.jsonl").write_text(json.dumps(row) + "\n")
    assert ll.finished_rows(str(runs), sweep) == [row]
    result = ll.main(argv)
    text = open(result["report"]).read()
    assert "**Partial report** (`--report_only`): 1 of 2 trials have finished; no trial of MM GAN yet." in text
    _, rows = tables(result["report"])["Methods"]
    assert [r[:3] for r in rows] == [["NS GAN", "`non_saturating`", "1"], ["MM GAN", "`minimax`", "0"]]
    assert rows[0][5] == "123.4" and rows[1][5] == "—"
    assert sorted(os.listdir(runs)) == ["results.jsonl", "sweep.json"]  # read, nothing trained or written there
    assert ll.partial_text(a, [row, row], 2) == ""


@pytest.mark.parametrize("argv, message", [
    (["--methods=ns,began"], "unknown method 'began'; valid choices: dragan, hinge, ls, mm, ns, wgan, wgan_gp"),
    (["--methods=,"], "--methods must name at least one of"),
    (["--lrs=1e-4,fast"], "--lrs entry 'fast' is not a number"),
    (["--lrs=0"], "--lrs entry '0' must be a positive finite learning rate"),
    (["--quick", "--full"], "--quick and --full exclude each other"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, argv, message):
    assert_refused_before_writing("lucic_losses", tmp_path, argv, message)


def run_quick(tmp_path, fashion_data_dir, classifier_cache: str, methods: list[str]) -> tuple[str, dict]:
    from experiments import lucic_losses as ll

    cache = classifier_cache
    out = str(tmp_path / "lucic")
    result = ll.main([f"--out={out}", "--quick", f"--methods={','.join(methods)}", f"--data_dir={fashion_data_dir}",
                      f"--cache_dir={cache}"])
    for name in ("lucic_losses_fid.png", "lucic_losses_best_of_k.png"):
        assert_png(os.path.join(out, name))
    report = os.path.join(out, "lucic_losses.md")
    assert_record(report, "lucic_losses", out)
    t = tables(report)
    columns, rows = t["Methods"]
    assert columns == TABLE_COLUMNS
    assert [r[0] for r in rows] == [ll.METHODS[m].label for m in methods]
    q = ll.BUDGETS["quick"]
    for r in rows:
        trials, diverged, failed = map(int, r[2:5])
        assert trials == len(q.lrs) * q.seeds and failed == 0
        if not diverged:
            assert float(r[5]) > 0
    assert t["FID per learning rate"][0] == ["method", *(f"lr {lr:g}" for lr in q.lrs)]
    assert "compare the ranks, never the numbers" in open(report).read()
    return out, result


def test_lucic_losses_quick_writes_figures_and_method_table(tmp_path, fashion_data_dir, classifier_cache):
    out, result = run_quick(tmp_path, fashion_data_dir, classifier_cache, ["wgan_gp"])
    assert sorted(os.listdir(out)) == ["lucic_losses.md", "lucic_losses_best_of_k.png", "lucic_losses_fid.png",
                                       "runs"]
    assert os.path.exists(os.path.join(out, "runs", "results.jsonl"))
    (row,) = result["rows"]
    assert (row["params"]["loss"], row["params"]["penalty"], row["params"]["model.d.norm"]) == (
        "wasserstein", "wgan_gp", "none")
    assert row["steps"] == 3 or row["status"] == "diverged"


@pytest.mark.slow
def test_lucic_losses_quick_with_all_seven_methods(tmp_path, fashion_data_dir, classifier_cache):
    from experiments import lucic_losses as ll

    run_quick(tmp_path, fashion_data_dir, classifier_cache, list(ll.METHODS))
