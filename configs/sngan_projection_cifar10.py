"""Conditional SN-GAN with a projection discriminator (Miyato & Koyama 2018) on CIFAR-10, 32×32×3.

The authors' ``configs/sn_cifar10_conditional.yml`` (pfnet-research/sngan_projection): SN-GAN's
ResNet nets (``configs/sngan_cifar10.py``: G ch 256, z ~ N(0, I_128); D ch 128, spectral norm)
with ``model.num_classes = 10``: every BatchNorm in G's up-blocks is a conditional BatchNorm
(per-class γ/β; the final BatchNorm stays unconditional) and D adds the projection term
⟨embed(y), φ(x)⟩ (spectrally normalised embedding) to its logit. Hinge loss, Adam(2e-4,
β = (0, 0.9)), n_disc = 5, batch 64, 50,000 G updates.

Not reproduced: the authors decay both learning rates linearly to 0 over the run, draw 128
samples (twice the batch) for each G update, and their D's final linear layer has no bias.

Variants: ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import load_config_file, parse_variants


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = load_config_file("sngan_cifar10", "quick" if "quick" in variants else None)
    c.model.num_classes = 10
    return c
