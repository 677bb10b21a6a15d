"""DCGAN (Radford et al. 2015) on Fashion-MNIST, 28×28×1.

G: z ~ N(0, I_100) → 7×7×128 → transposed convs 4×4/2 (64, 1) with BatchNorm +
ReLU, tanh; D: conv 4×4/2 64 → LeakyReLU(0.2) → conv 4×4/2 128 → BatchNorm →
LeakyReLU → 7×7 VALID conv to the logit. Bias-free convs, N(0, 0.02) init,
Adam(2e-4, β1 = 0.5), batch 128, binary cross-entropy (``non_saturating``) —
the paper's and the PyTorch tutorial's settings, with the tutorial's nets
scaled to 28×28 (``model.generator=dcgan``, ``model.discriminator=dcgan``,
base 7×7). 20 epochs of 468 batches (9,360 steps). Another image dataset:
``--config.dataset=NAME`` (with ``--config.data.image_size`` where its
native size is not one DCGAN makes: 28, 32, 64, 128, 256).

Variants: ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick

BATCH = 128
STEPS_PER_EPOCH = 60_000 // BATCH  # drop_last


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = base_config()
    c.dataset = "fashion_mnist"
    c.batch_size = BATCH
    c.num_steps = 20 * STEPS_PER_EPOCH
    c.loss = "non_saturating"
    c.model.generator = "dcgan"
    c.model.discriminator = "dcgan"
    c.model.z_dim = 100
    c.model.noise = "normal"
    c.model.g.width = 64
    c.model.d.width = 64
    c.model.d.norm = "batch"
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
        o.b1 = 0.5
        o.b2 = 0.999
    c.log_every = STEPS_PER_EPOCH // 4
    c.sample_every = STEPS_PER_EPOCH
    c.checkpoint_every = STEPS_PER_EPOCH
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
        c.batch_size = 16
        c.model.g.width = 8
        c.model.d.width = 8
    return c
