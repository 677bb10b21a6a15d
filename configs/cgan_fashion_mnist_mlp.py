"""The classic conditional GAN (Mirza & Osindero 2014) on Fashion-MNIST: seed 002's MLP nets, conditioned by concat.

Seed 002's PyTorch MLP GAN (``configs/fashion_mnist_mlp.py``: G 100→256→512→1024→784,
LeakyReLU 0.2, tanh; D 784→1024→512→256→1, LeakyReLU 0.2, Dropout 0.3; PyTorch's default init;
Adam(2e-4, 0.9, 0.999); batch 128; BCE) with ``model.num_classes = 10``: G's input is
``[z, one_hot(y)]`` (110 inputs), D's ``[x, one_hot(y)]`` (794 inputs); generated labels are uniform.
20 epochs, as the unconditional config.

Variants: ``mnist`` — MNIST instead of Fashion-MNIST; ``quick`` — smoke run.
"""

import os

from ganjax.config import load_config_file

SEED_002 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion_mnist_mlp.py")


def get_config(arg: str | None = None):
    c = load_config_file(SEED_002, arg)  # its variants: mnist, quick
    c.model.num_classes = 10
    c.model.d.conditioning = "concat"
    return c
