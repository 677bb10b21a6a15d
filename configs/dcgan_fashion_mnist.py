"""DCGAN (Radford et al. 2015) on Fashion-MNIST, 28×28×1.

G: z ~ N(0, I_100) → 7×7×128 → transposed convs 4×4/2 (64, 1) with BatchNorm +
ReLU, tanh; D: conv 4×4/2 64 → LeakyReLU(0.2) → conv 4×4/2 128 → BatchNorm →
LeakyReLU → 7×7 VALID conv to the logit. Bias-free convs, N(0, 0.02) init,
Adam(2e-4, β1 = 0.5), batch 128, binary cross-entropy (``non_saturating``) —
the paper's and the PyTorch tutorial's settings, with the tutorial's nets
scaled to 28×28 (``model.generator=dcgan``, ``model.discriminator=dcgan``,
base 7×7). 20 epochs of 468 batches (9,360 steps). Another image dataset:
``--config.dataset=NAME`` (with ``--config.data.image_size`` where its
native size is not one DCGAN makes: 28, 32, 64, 128, 256). The nets and
training are those of ``configs/dcgan_cifar10.py`` at 28×28.

Variants: ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import load_config_file, parse_variants

BATCH = 128
STEPS_PER_EPOCH = 60_000 // BATCH  # drop_last


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = load_config_file("dcgan_cifar10", arg)  # same nets (depth follows the resolution) and training
    c.dataset = "fashion_mnist"
    if "quick" not in variants:
        c.num_steps = 20 * STEPS_PER_EPOCH
        c.log_every = STEPS_PER_EPOCH // 4
        c.sample_every = STEPS_PER_EPOCH
        c.checkpoint_every = STEPS_PER_EPOCH
    return c
