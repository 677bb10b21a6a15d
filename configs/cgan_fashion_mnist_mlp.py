"""The classic conditional GAN (Mirza & Osindero 2014) on Fashion-MNIST: seed 002's MLP nets, conditioned by concat.

Seed 002's MLP nets (``configs/fashion_mnist_mlp.py``: G 100→256→512→1024→784, LeakyReLU 0.2,
tanh; D 784→1024→512→256→1, LeakyReLU 0.2; PyTorch's default init; BCE) with
``model.num_classes = 10``: G's input is ``[z, one_hot(y)]`` (110 inputs), D's ``[x, one_hot(y)]``
(794 inputs); generated labels are uniform.

The training recipe is the one PyTorch cGAN implementations use, not seed 002's: BatchNorm in
G's hidden layers (Dense → BN → LeakyReLU; PyTorch's BatchNorm1d momentum 0.1 and eps 1e-5, i.e.
``bn_momentum = 0.9`` here), no dropout in D, Adam(5e-4, β1 0.5) for both players, batch 64.
Measured on this project's CPU (2026-12-04, docs/architectures.md#class-conditioning): with seed
002's own recipe (Adam(2e-4, β1 0.9), batch 128, D dropout 0.3, no BN) G still ignores its labels
after 3 epochs (class agreement 0.10, chance), with this one it follows them (0.73). 20 epochs
(937 steps each).

Variants: ``mnist`` — MNIST instead of Fashion-MNIST; ``quick`` — smoke run.
"""

import os

from ganjax.config import load_config_file, parse_variants

SEED_002 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion_mnist_mlp.py")
BATCH_SIZE = 64
STEPS_PER_EPOCH = 60_000 // BATCH_SIZE


def get_config(arg: str | None = None):
    variants = parse_variants(arg, {"mnist"})
    c = load_config_file(SEED_002, arg)  # its variants: mnist, quick
    c.model.num_classes = 10
    c.model.d.conditioning = "concat"
    c.model.d.dropout = 0.0
    c.model.g.batch_norm = True
    c.model.g.norm_position = "before_activation"
    c.model.g.bn_momentum = 0.9
    c.model.g.bn_epsilon = 1e-5
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 5e-4
        o.b1 = 0.5
    c.batch_size = BATCH_SIZE
    if "quick" not in variants:
        c.num_steps = 20 * STEPS_PER_EPOCH
        c.log_every = c.sample_every = c.checkpoint_every = STEPS_PER_EPOCH
    return c
