"""BigGAN (ganjax/models/biggan.py): parameter counts against the published ones (StudioGAN's CIFAR-10
log, compare_gan's ImageNet-128 docstring), with the arithmetic written out; the shapes and the place of
self-attention at 32, 64 and 128; SAGAN's attention block against a numpy formula; bad options."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.errors import ConfigError
from ganjax.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from ganjax.models.biggan import BigGANDiscriminator, BigGANGenerator, SelfAttention


def count(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def abstract(module, example, labels):
    """``module.init``'s variables as shapes only (jax.eval_shape: nothing allocated or computed)."""
    return jax.eval_shape(lambda: module.init(jax.random.key(0), example, train=False, labels=labels))


def conv(k: int, cin: int, cout: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def attention(c: int) -> int:
    """θ, φ (C → C/8), g (C → C/2), o (C/2 → C), bias-free 1×1 convs, and the scalar σ."""
    return 2 * c * (c // 8) + 2 * c * (c // 2) + 1


def g_block(cin: int, cout: int, cond: int) -> int:
    """Two 3×3 convs, the 1×1 shortcut, and two cBNs whose gain and bias heads map cond → channels."""
    return conv(3, cin, cout) + conv(3, cout, cout) + conv(1, cin, cout) + 2 * cond * cin + 2 * cond * cout


def test_biggan_parameter_counts_match_the_published_ones():
    """ch = 96, shared embedding 128, hierarchical z in chunks of 20, spectral norm (no extra parameters).

    CIFAR-10 (32×32, z 80 = 4 chunks, 10 classes): PyTorch-StudioGAN's logs/CIFAR10/BigGAN-train-
    2021_01_15_14_48_48.log prints "Number of parameters: 9416196" (G) and "2415170" (D).
    ImageNet 128×128 (z 120 = 6 chunks, 1000 classes): compare_gan's architectures/resnet_biggan.py
    docstring, "(D) 87,982,370 (G) 70,433,988".
    """
    cond = 128 + 20  # each cBN sees [shared embedding, z chunk]
    g32 = (10 * 128 + (20 * 384 * 16 + 384 * 16)          # shared embedding; z₀ → 4×4×4ch
           + 3 * g_block(384, 384, cond) + attention(384)  # three up-blocks at 4ch, attention at 16×16
           + 2 * 384 + conv(3, 384, 3))                    # final BatchNorm γ/β, conv → RGB
    d32 = (conv(3, 3, 192) + conv(3, 192, 192) + conv(1, 3, 192) + attention(192)  # optimised block, attention
           + 2 * conv(3, 192, 192) + conv(1, 192, 192)                              # block down
           + 2 * (2 * conv(3, 192, 192))                                            # two blocks, identity shortcut
           + (192 + 1) + 10 * 192)                                                  # ψ and the class embedding
    g_ch = [96 * m for m in (16, 16, 8, 4, 2, 1)]
    g128 = (1000 * 128 + (20 * g_ch[0] * 16 + g_ch[0] * 16)
            + sum(g_block(g_ch[i], g_ch[i + 1], cond) for i in range(5)) + attention(g_ch[4])  # attention at 64×64
            + 2 * 96 + conv(3, 96, 3))
    d_ch = [3] + [96 * m for m in (1, 2, 4, 8, 16, 16)]
    d128 = (conv(3, 3, 96) + conv(3, 96, 96) + conv(1, 3, 96) + attention(96)             # optimised block, 64×64
            + sum(conv(3, d_ch[i], d_ch[i + 1]) + conv(3, d_ch[i + 1], d_ch[i + 1])
                  + conv(1, d_ch[i], d_ch[i + 1]) for i in range(1, 5))                   # four blocks down
            + 2 * conv(3, 1536, 1536)                                                     # last block, identity
            + (1536 + 1) + 1000 * 1536)
    assert (g32, d32, g128, d128) == (9_416_196, 2_415_170, 70_433_988, 87_982_370)
    for size, z_dim, classes, n_g, n_d in ((32, 80, 10, g32, d32), (128, 120, 1000, g128, d128)):
        labels = jnp.zeros((2,), jnp.int32)
        g = BigGANGenerator((size, size, 3), num_classes=classes)
        d = BigGANDiscriminator(num_classes=classes)
        g_vars = abstract(g, jnp.zeros((2, z_dim)), labels)
        d_vars = abstract(d, jnp.zeros((2, size, size, 3)), labels)
        assert (count(g_vars["params"]), count(d_vars["params"])) == (n_g, n_d), size
        assert set(g_vars) == {"params", "batch_stats", "spectral"} and set(d_vars) == {"params", "spectral"}


@pytest.mark.parametrize("size,g_attention_channels,d_attention_channels", [(32, 32, 16), (64, 16, 8), (128, 16, 8)])
def test_every_resolution_has_the_right_shapes_and_attention_at_half_the_side(size, g_attention_channels,
                                                                              d_attention_channels):
    """ch = 8: G's attention follows the block making H/2 × H/2 (ch·4 at 32; ch·2 at 64 and 128), D's the
    first block (ch·2 at 32, ch at 64 and 128), as StudioGAN's attn_g_loc / attn_d_loc."""
    z_dim = 4 * (int(np.log2(size // 4)) + 1)  # 4 per chunk, one chunk per up-block and one for the dense layer
    g = BigGANGenerator((size, size, 3), width=8, shared_dim=4, num_classes=5)
    d = BigGANDiscriminator(width=8, num_classes=5)
    labels = jnp.array([0, 4], jnp.int32)

    def run():
        gv = g.init(jax.random.key(0), jnp.zeros((2, z_dim)), train=False, labels=labels)
        x = g.apply(gv, jnp.zeros((2, z_dim)), train=True, labels=labels, mutable=["batch_stats", "spectral"])[0]
        dv = d.init(jax.random.key(1), x, train=False, labels=labels)
        return gv, x, dv, d.apply(dv, x, train=True, labels=labels, mutable=["spectral"])[0]

    gv, x, dv, logits = jax.eval_shape(run)
    assert x.shape == (2, size, size, 3) and x.dtype == jnp.float32 and logits.shape == (2,)
    assert gv["params"]["SelfAttention_0"]["theta"]["kernel"].shape[2] == g_attention_channels
    assert dv["params"]["SelfAttention_0"]["theta"]["kernel"].shape[2] == d_attention_channels
    assert "SelfAttention_1" not in gv["params"] and "SelfAttention_1" not in dv["params"]


def test_unconditional_biggan_conditions_each_block_on_its_z_chunk_alone():
    g = BigGANGenerator((32, 32, 1), width=4, num_classes=0)
    v = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 8)), train=False))
    assert "shared" not in v["params"]
    assert v["params"]["LinearConditionalBatchNorm_0"]["gain"]["kernel"].shape == (2, 16)  # z chunk 2 → 4ch
    d = BigGANDiscriminator(width=4)
    dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((2, 32, 32, 1)), train=False))
    assert "ClassProjection_0" not in dv["params"]


def test_self_attention_matches_the_sagan_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 16)).astype(np.float32)
    block = SelfAttention(spectral=False)
    v = flax.core.unfreeze(block.init(jax.random.key(0), x))
    v["params"]["sigma"] = jnp.asarray(0.7)
    p = jax.tree.map(np.asarray, v["params"])
    w = {k: p[k]["kernel"][0, 0] for k in ("theta", "phi", "g", "o")}  # 1×1 convs as matrices

    def pool(t):  # 2×2 max pooling of [B, 4, 4, C] → [B, 4, C] (the 2×2 map flattened)
        return t.reshape(2, 2, 2, 2, 2, -1).max(axis=(2, 4)).reshape(2, 4, -1)

    theta = (x @ w["theta"]).reshape(2, 16, 2)
    phi, g = pool(x @ w["phi"]), pool(x @ w["g"])
    scores = np.einsum("bqc,bkc->bqk", theta, phi)
    beta = np.exp(scores - scores.max(-1, keepdims=True))
    beta /= beta.sum(-1, keepdims=True)
    expected = x + 0.7 * (np.einsum("bqk,bkc->bqc", beta, g).reshape(2, 4, 4, 8) @ w["o"])
    np.testing.assert_allclose(block.apply(v, x), expected, atol=1e-5)
    v["params"]["sigma"] = jnp.asarray(0.0)  # σ starts at 0: the block starts as the identity
    np.testing.assert_array_equal(block.apply(v, x), x)


def test_biggan_is_registered_and_supports_truncation():
    assert GENERATORS["biggan"] is BigGANGenerator and DISCRIMINATORS["biggan"] is BigGANDiscriminator
    assert BigGANGenerator.supports_truncation is True
    with pytest.raises(ConfigError, match=r"generator 'biggan' cannot produce examples of shape \(256, 256, 3\)"
                                          r".*H in 32, 64, 128"):
        build_generator("biggan", (256, 256, 3))


@pytest.mark.parametrize("module,example,message", [
    (BigGANGenerator((32, 32, 3), width=4, attention=5), np.zeros((2, 8)),
     r"attention = 5 is not the side of one of its feature maps \(8, 16, 32\)"),
    (BigGANDiscriminator(width=4, attention=32), np.zeros((2, 32, 32, 3)),
     r"attention = 32 is not the side of one of its feature maps \(8, 16\)"),
    (BigGANGenerator((32, 32, 3), width=4), np.zeros((2, 10)), r"model.z_dim = 10 cannot be split into 4 equal"),
    (BigGANGenerator((32, 32, 3), width=1), np.zeros((2, 8)), r"self-attention on a 16×16×4 feature map needs at least 8"),
    (BigGANDiscriminator(width=4), np.zeros((2, 48, 48, 3)), r"takes square images with H in 32, 64, 128, got \(48"),
])
def test_bad_biggan_options_are_config_errors(module, example, message):
    with pytest.raises(ConfigError, match=message):
        jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.asarray(example, jnp.float32), train=False))


def test_attention_zero_turns_self_attention_off_and_bad_values_are_refused_at_build():
    g = build_generator("biggan", (32, 32, 3), {"width": 4, "attention": 0})
    v = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 8)), train=False))
    assert not any(k.startswith("SelfAttention") for k in v["params"])
    with pytest.raises(ConfigError, match=r"model.d.attention = -1 is invalid"):
        build_discriminator("biggan", {"attention": -1})
