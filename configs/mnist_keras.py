"""Seed 000: the Keras MNIST GAN (``:fashion`` for Fashion-MNIST).

G: Dense 256 → LeakyReLU(0.2) → BatchNorm(momentum 0.8), ×3 widths
256/512/1024, then Dense 784 tanh → 28×28×1. D: Conv64 3×3/2 → LeakyReLU →
Dropout 0.3 → Conv128 3×3/2 → LeakyReLU → Dropout 0.3 → Dense 1 (logits).
Adam(1e-4, β1=0.5) for both, batch 32, binary cross-entropy; the seed's
``train_step`` updates G and D simultaneously from one forward pass
(``update_rule='simultaneous'``). Keras' glorot-uniform init, BN epsilon 1e-3.

Variants: ``fashion`` — Fashion-MNIST (offline-friendly); ``quick`` — smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick


def get_config(arg: str | None = None):
    variants = parse_variants(arg, {"fashion"})
    c = base_config()
    c.dataset = "fashion_mnist" if "fashion" in variants else "mnist"
    c.batch_size = 32
    c.num_steps = 20 * (60_000 // 32)
    c.loss = "non_saturating"
    c.update_rule = "simultaneous"
    c.model.generator = "mlp"
    c.model.discriminator = "keras_conv"
    c.model.z_dim = 100
    c.model.g.hidden = (256, 512, 1024)
    c.model.g.batch_norm = True
    c.model.g.bn_momentum = 0.8
    c.model.g.bn_epsilon = 1e-3
    c.model.g.weight_init = "glorot_uniform"
    c.model.d.dropout = 0.3
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 1e-4
        o.b1 = 0.5
    c.log_every = 500
    c.sample_every = 2000
    c.checkpoint_every = 2000
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
    return c
