"""Seed 002: the PyTorch MNIST MLP GAN, on Fashion-MNIST (``:mnist`` for MNIST).

G 100→256→512→1024→784 (LeakyReLU 0.2, tanh); D 784→1024→512→256→1
(LeakyReLU 0.2, Dropout 0.3); PyTorch's default init; Adam(2e-4) for both
(PyTorch's default betas 0.9/0.999, as the seed uses ``optim.Adam(..., lr=0.0002)``);
batch 128, BCE ≡ ``non_saturating`` (D loss = BCE(real, 1) + BCE(fake, 0)).
The seed trains 200 epochs of 468 batches; the default here is 20 epochs.

Variants: ``mnist`` — MNIST instead of Fashion-MNIST; ``quick`` — smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick

STEPS_PER_EPOCH = 60_000 // 128  # drop_last, as the seed's DataLoader


def get_config(arg: str | None = None):
    variants = parse_variants(arg, {"mnist"})
    c = base_config()
    c.dataset = "mnist" if "mnist" in variants else "fashion_mnist"
    c.batch_size = 128
    c.num_steps = 20 * STEPS_PER_EPOCH
    c.loss = "non_saturating"
    c.model.generator = "mlp"
    c.model.discriminator = "mlp"
    c.model.z_dim = 100
    c.model.noise = "normal"
    c.model.g.hidden = (256, 512, 1024)
    c.model.d.hidden = (1024, 512, 256)
    c.model.d.dropout = 0.3
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
        o.b1 = 0.9
        o.b2 = 0.999
    c.log_every = STEPS_PER_EPOCH
    c.sample_every = STEPS_PER_EPOCH
    c.checkpoint_every = STEPS_PER_EPOCH
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
    return c
