"""experiments.bench_conv_forms: each variant's step is built under its thresholds, which are restored after."""

from __future__ import annotations

import pytest

from experiments import bench_conv_forms
from ganjax.models import layers

THRESHOLDS = ("SPLIT_PHASES_MAX_PIXELS", "SPLIT_PHASES_MIN_FEATURES", "SHIFTED_KERNEL_GRAD_MIN_PIXELS")


def test_every_variant_sets_real_thresholds():
    assert bench_conv_forms.VARIANTS["chosen"] == {}
    for settings in bench_conv_forms.VARIANTS.values():
        assert set(settings) <= set(THRESHOLDS)


class FakeStep:
    """Records the thresholds in force when the step was built and counts its (warm-up) runs."""

    def __init__(self):
        self.seen = {name: getattr(layers, name) for name in THRESHOLDS}
        self.runs = 0

    def step(self):
        self.runs += 1


def test_steps_are_built_and_warmed_under_their_thresholds_then_restored(monkeypatch):
    built = []
    monkeypatch.setattr(bench_conv_forms, "build_ganjax", lambda *a, **k: built.append(FakeStep()) or built[-1])
    shipped = {name: getattr(layers, name) for name in THRESHOLDS}
    steps = bench_conv_forms.build_variant_steps("dcgan64", 2, warmup=2)
    assert list(steps) == list(bench_conv_forms.VARIANTS)
    for fake, settings in zip(built, bench_conv_forms.VARIANTS.values()):
        assert fake.seen == {**shipped, **settings}
        assert fake.runs == 2
    assert {name: getattr(layers, name) for name in THRESHOLDS} == shipped


def test_thresholds_are_restored_when_a_build_fails(monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("compile failed")

    monkeypatch.setattr(bench_conv_forms, "build_ganjax", failing)
    shipped = {name: getattr(layers, name) for name in THRESHOLDS}
    with pytest.raises(RuntimeError, match="compile failed"):
        bench_conv_forms.build_variant_steps("dcgan64", 2, warmup=1, variants={"x": {"SPLIT_PHASES_MAX_PIXELS": 0}})
    assert {name: getattr(layers, name) for name in THRESHOLDS} == shipped
