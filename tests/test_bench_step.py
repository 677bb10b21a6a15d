"""experiments/bench_step.py's ``biggan32`` benchmark and its PyTorch twin (experiments/torch_twins.py).

The twin is written independently of ganjax's nets; its parameter counts must equal ganjax's for the
same config (tiny widths here, the full config's published counts at ch = 96), and its step must make
the config's n_disc D updates per G update.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.conftest import ROOT

torch = pytest.importorskip("torch")

# configs/biggan_cifar10.py at ch = 96 (its docstring; tests/test_biggan.py checks ganjax's nets against them).
BIGGAN32_PARAMS = (9_416_196, 2_415_170)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny nets on one thread: with its default threads PyTorch's small ops slowed ~100x on the shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def twin_counts(c, orthogonal: bool = True) -> tuple[int, int]:
    """``(G, D)`` parameter counts of the PyTorch twin at the widths of the ganjax config ``c``."""
    from experiments.torch_twins import biggan32_nets, param_count

    m = c.model
    G, D = biggan32_nets(m.g.width, m.d.width, m.z_dim, m.g.shared_dim, m.num_classes, orthogonal)
    return param_count(G), param_count(D)


@pytest.mark.parametrize("variant", ["quick", None])  # tiny (G ch 2, D ch 4, z 8, shared 4) and ch = 96
def test_biggan32_twin_has_ganjax_parameter_counts(variant):
    from experiments import bench_step
    from ganjax import config as config_lib

    c = config_lib.load_config_file("biggan_cifar10", variant)
    counts = bench_step.ganjax_param_counts("biggan_cifar10", (32, 32, 3), variant)
    assert twin_counts(c, orthogonal=variant is not None) == counts
    if variant is None:
        assert counts == BIGGAN32_PARAMS
    line = bench_step.check_param_counts({"ganjax": {"params": counts}, "pytorch": {"params": counts}})
    assert f"ganjax G {counts[0]:,} D {counts[1]:,}; pytorch G {counts[0]:,} D {counts[1]:,}" in line
    # Negative control: one more channel in D's twin is a different count, and the check refuses it.
    c.model.d.width += 1
    other = twin_counts(c, orthogonal=False)
    assert other[0] == counts[0] and other[1] != counts[1]
    with pytest.raises(AssertionError, match="parameter counts differ"):
        bench_step.check_param_counts({"ganjax": {"params": counts}, "pytorch": {"params": other}})


def test_bench_data_of_a_conditional_config_is_labelled():
    from experiments.bench_step import GanjaxStep, bench_data

    dataset, batch = bench_data((32, 32, 3), 5, 8, num_classes=10)
    images, labels = batch
    assert images.shape == (5, 8, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (5, 8) and labels.dtype == np.int32 and 0 <= labels.min() and labels.max() < 10
    assert dataset.num_classes == 10 and len(dataset.labels) == len(dataset.images) == 40
    assert GanjaxStep(None, None, batch, 8).n_disc == 5
    dataset, images = bench_data((32, 32, 3), 5, 8)  # unconditional: images alone, no labels
    assert images.shape == (5, 8, 32, 32, 3) and dataset.labels is None
    assert GanjaxStep(None, None, images, 8).n_disc == 5


def test_biggan32_twin_generates_images_and_logits():
    from experiments.torch_twins import biggan32_nets

    G, D = biggan32_nets(2, 4, 8, 4, 10)
    z, y = torch.randn(3, 8), torch.tensor([3, 7, 9])
    with torch.no_grad():
        x = G(z, y)
        logits = D(x, y)
    assert x.shape == (3, 3, 32, 32) and float(x.abs().max()) <= 1.0
    assert logits.shape == (3,) and bool(torch.isfinite(logits).all())


def test_biggan32_model_matches_its_config():
    from experiments.bench_step import MODELS, conditional_hinge_step
    from ganjax import config as config_lib

    m, c = MODELS["biggan32"], config_lib.load_config_file("biggan_cifar10", None)
    assert (m.config, m.z_dim, m.batch, m.n_disc, m.num_classes) == (
        "biggan_cifar10", c.model.z_dim, c.batch_size, c.n_disc, c.model.num_classes)
    assert m.ema_decay == c.ema_decay and c.loss == "hinge" and m.torch_step is conditional_hinge_step
    for o in (c.optimizer_g, c.optimizer_d):  # the twin's Adam: lr 2e-4, torch_betas
        assert (o.learning_rate, (o.b1, o.b2)) == (2e-4, m.torch_betas)


def test_conditional_hinge_step_makes_n_disc_d_updates_then_one_g_update_and_the_ema():
    from experiments import bench_step
    from experiments.torch_twins import biggan32_nets

    model = dataclasses.replace(bench_step.MODELS["biggan32"], z_dim=8, n_disc=2, ema_decay=0.5)
    torch.manual_seed(0)
    G, D = biggan32_nets(2, 4, 8, 4, 10)
    d_opt, g_opt = (torch.optim.Adam(n.parameters(), lr=2e-4, betas=model.torch_betas) for n in (D, G))
    g0 = [p.detach().clone() for p in G.parameters()]
    twin = bench_step.TorchTwin(model, G, D, g_opt, d_opt, 4, "cpu", "float32")
    one = bench_step.conditional_hinge_step(twin)
    one()
    assert {int(s["step"]) for s in d_opt.state.values()} == {2}
    assert {int(s["step"]) for s in g_opt.state.values()} == {1}
    g1 = [p.detach() for p in G.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(g0, g1))
    for e, a, b in zip(twin.ema, g0, g1):  # EMA = decay · before + (1 - decay) · after
        torch.testing.assert_close(e, 0.5 * a + 0.5 * b)


def test_bench_torch_reports_the_twins_counts_and_n_disc():
    from experiments import bench_step
    from experiments.torch_twins import biggan32_nets

    model = dataclasses.replace(bench_step.MODELS["biggan32"], z_dim=8, n_disc=2,
                                torch_nets=lambda: biggan32_nets(2, 4, 8, 4, 10))
    r = bench_step.bench_torch(model, 4, steps=1, warmup=0)
    G, D = biggan32_nets(2, 4, 8, 4, 10)
    assert r["n_disc"] == 2 and r["params"] == (sum(p.numel() for p in G.parameters()),
                                                sum(p.numel() for p in D.parameters()))
    assert r["sec_per_step"] > 0 and np.isfinite(r["sec_per_step"])



def test_rounds_alternate_which_framework_runs_first_and_warm_up_once():
    from experiments import bench_step

    calls = []
    steppers = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = bench_step.alternated_timings(steppers, steps=2, warmup=1, repeats=3)
    # round 0: a (1 warm-up + 2 timed), b (1 + 2); round 1: b first, no warm-up; round 2: a first.
    assert calls == ["a"] * 3 + ["b"] * 3 + ["b"] * 2 + ["a"] * 2 + ["a"] * 2 + ["b"] * 2
    assert [len(times[k]) for k in ("a", "b")] == [3, 3] and all(t >= 0 for t in times["a"] + times["b"])
    assert bench_step.spread([3.0, 1.0, 2.0]) == "2.00 (1.00-3.00)"


@pytest.mark.slow
def test_cli_reports_rounds_spread_load_and_matmul_fractions():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "experiments.bench_step", "--model=mlp", "--steps=1", "--warmup=0",
                          "--repeats=2", "--batch=8"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "2 alternated rounds" in out and "load average" in out and "per round:" in out, out
    assert "matmul GFLOP/s" in out and out.count("fraction") == 1, out
    bad = subprocess.run([sys.executable, "-m", "experiments.bench_step", "--repeats=0"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--repeats=0" in bad.stderr, bad.stderr
