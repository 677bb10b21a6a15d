"""Lucic et al. 2018 ("Are GANs created equal?") on Fashion-MNIST: the InfoGAN-style nets.

G: z ~ U(−1, 1)^64 (compare_gan's default) → FC 1024 → BN → ReLU → FC 7·7·128 →
BN → ReLU → deconv 64 4×4/2 → BN → ReLU → deconv 1 4×4/2 → tanh. D: conv 64
4×4/2 → LeakyReLU(0.2) → conv 128 4×4/2 → BN → LeakyReLU → FC 1024 → BN →
LeakyReLU → FC 1. The paper's shared setup: batch 64, Adam(2e-4, β1 = 0.5,
β2 = 0.999), one D update per G update; the NS GAN (``non_saturating``). 20
epochs (937 steps each). Swap ``loss``/``penalty`` (and ``model.d.norm=none``
for WGAN-GP/DRAGAN, as the paper) for the other methods.

Variants: ``quick`` — 250 steps of the nets with narrower layers (FC 256,
conv/deconv 32) at Adam 1e-3: a CPU smoke run that already moves G's samples
clearly towards the data (its per-pixel mean/std images; tests/test_image_models.py).
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick

STEPS_PER_EPOCH = 60_000 // 64


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = base_config()
    c.dataset = "fashion_mnist"
    c.batch_size = 64
    c.num_steps = 20 * STEPS_PER_EPOCH
    c.loss = "non_saturating"
    c.model.generator = "infogan"
    c.model.discriminator = "infogan"
    c.model.z_dim = 64
    c.model.noise = "uniform_signed"
    c.model.d.norm = "batch"
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
        o.b1 = 0.5
        o.b2 = 0.999
    c.log_every = STEPS_PER_EPOCH
    c.sample_every = STEPS_PER_EPOCH
    c.checkpoint_every = STEPS_PER_EPOCH
    if "quick" in variants:
        shrink_for_quick(c, num_steps=250)
        for o in (c.optimizer_g, c.optimizer_d):
            o.learning_rate = 1e-3
        c.model.g.fc_width = 256
        c.model.d.fc_width = 256
        c.model.g.width = 32
        c.model.d.width = 32
    return c
