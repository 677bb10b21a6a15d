"""experiments/profile_layers.py: DCGAN-64 layer by layer, ganjax vs PyTorch."""

import pytest

pytest.importorskip("torch")


def test_layer_flops_count_the_useful_multiply_adds():
    from experiments.profile_layers import Layer

    # 4x4/2 conv 32x32x64 -> 16x16x128: 16*16 outputs x 128 filters x (4*4*64) taps, 2 FLOPs each.
    assert Layer("c", "conv", (32, 32, 64), 128).flops(1) == 2 * 16 * 16 * 128 * 4 * 4 * 64
    # transposed 4x4/2 conv 8x8x256 -> 16x16x128: each input pixel meets each of the 4x4 taps once.
    assert Layer("t", "convT", (8, 8, 256), 128).flops(2) == 2 * 2 * 8 * 8 * 256 * 128 * 16
    assert Layer("v", "conv_valid", (4, 4, 512), 1).flops(1) == 2 * 1 * 1 * 512 * 16


@pytest.mark.slow
def test_each_framework_runs_the_same_layer_shapes_and_the_report_has_a_row_per_layer():
    from experiments import profile_layers as pl

    layers = [pl.Layer("G convT 8->4, 2->4", "convT", (2, 2, 8), 4), pl.Layer("D conv 4->8, 4->2", "conv", (4, 4, 4), 8),
              pl.Layer("D BN+LReLU", "bn_lrelu", (2, 2, 8), 8), pl.Layer("D conv valid", "conv_valid", (4, 4, 8), 1)]
    for layer in layers:
        jf, jb = pl.jax_layer(layer, 2)
        tf, tb = pl.torch_layer(layer, 2)
        for fn in (jf, jb, tf, tb):
            fn()
    rows = pl.profile(layers, batch=2, steps=1, warmup=1, repeats=2)
    assert [len(r["fwd"]["ganjax"]) for r in rows] == [2] * len(layers)
    text = pl.report(rows, 2, {"ganjax": 100.0, "pytorch": 100.0})
    assert len(text.splitlines()) == len(layers) + 2 and "sum of the layers" in text
