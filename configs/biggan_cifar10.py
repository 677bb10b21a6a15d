"""Class-conditional BigGAN (Brock et al. 2018) on CIFAR-10, 32×32×3: PyTorch-StudioGAN's
``src/configs/CIFAR10/BigGAN.yaml`` (with its default optimisation settings), the setting CR-GAN
(Zhang et al. 2020) and StudioGAN's regulariser tables start from.

G and D ``biggan`` at ch = 96 (9,416,196 and 2,415,170 parameters): z ~ N(0, I_80) in 4 chunks of
20 (hierarchical z), a shared class embedding of 128, conditional BatchNorm from
[embedding, z chunk], self-attention at 16×16 in both nets, spectral norm in G and D,
orthogonal init; the projection discriminator. Hinge loss, Adam(2e-4, β = (0.5, 0.999)) for both
nets, n_disc = 5, batch 64, 100,000 G updates, G's EMA with decay 0.9999 (StudioGAN starts its
EMA at step 1,000; ganjax averages from step 0). No orthogonal regularisation (StudioGAN's CIFAR
setting; BigGAN's ImageNet runs use ``ortho_reg = 1e-4``).

Variants: ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = base_config()
    c.dataset = "cifar10"
    c.batch_size = 64
    c.num_steps = 100_000
    c.loss = "hinge"
    c.n_disc = 5
    c.model.generator = "biggan"
    c.model.discriminator = "biggan"
    c.model.num_classes = 10
    c.model.z_dim = 80
    c.model.noise = "normal"
    c.model.g.width = 96
    c.model.g.shared_dim = 128
    c.model.d.width = 96
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
        o.b1 = 0.5
        o.b2 = 0.999
    c.ema_decay = 0.9999
    c.log_every = 500
    c.sample_every = 5000
    c.checkpoint_every = 5000
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
        c.batch_size = 16
        c.model.z_dim = 8
        c.model.g.width = 2  # 8 channels: the least self-attention takes
        c.model.g.shared_dim = 4
        c.model.d.width = 4
    return c
