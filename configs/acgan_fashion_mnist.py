"""AC-GAN (Odena, Olah & Shlens 2017) on Fashion-MNIST, with seed 002's MLP nets.

G is seed 002's MLP conditioned by concat (``[z, one_hot(y)]``, z ~ N(0, I_100)); D is seed
002's MLP D without label input (``model.d.conditioning = none``, as the paper's D) whose last
layer has 1 + 10 outputs: the real/fake logit and the class logits (``acgan_weight = 1``, the
paper's unweighted sum of L_S and L_C). Adam(2e-4, β1 0.5) for both players (the paper's
setting), batch 128, BCE (``non_saturating``), uniform generated labels, 20 epochs.

Variants: ``mnist`` — MNIST instead of Fashion-MNIST; ``quick`` — smoke run.
"""

import os

from ganjax.config import load_config_file

SEED_002 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion_mnist_mlp.py")


def get_config(arg: str | None = None):
    c = load_config_file(SEED_002, arg)  # its variants: mnist, quick
    c.model.num_classes = 10
    c.model.d.conditioning = "none"
    c.acgan_weight = 1.0
    for o in (c.optimizer_g, c.optimizer_d):
        o.b1 = 0.5
    return c
