"""SN-GAN (Miyato et al. 2018) on CIFAR-10, 32×32×3: the ResNet nets of Table 4.

G (``sngan_resnet``): z ~ N(0, I_128) → dense 4×4×256 → three ResBlocks up
(256) → BN → ReLU → conv 3×3 3 → tanh (4,276,739 parameters). D: an optimised
ResBlock down (128), a ResBlock down, two ResBlocks (128) → ReLU → global sum
pooling → dense 1 (1,053,825 parameters), every kernel spectrally normalised
(``model.d.norm=spectral``; one power iteration per D call, ``u`` in
``d_state``). Hinge loss, Adam(2e-4, β = (0, 0.9)), n_disc = 5 D updates per
G update, batch 64, 50,000 G updates.

Variants: ``cnn`` — the "standard CNN" of Table 3 (``sngan_cnn``; dense
4×4×512 → deconvs 256/128/64 → conv 3; D convs 64…512 with LeakyReLU(0.1))
with the same training setup; ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick


def get_config(arg: str | None = None):
    variants = parse_variants(arg, {"cnn"})
    c = base_config()
    c.dataset = "cifar10"
    c.batch_size = 64
    c.num_steps = 50_000
    c.loss = "hinge"
    c.n_disc = 5
    arch = "sngan_cnn" if "cnn" in variants else "sngan_resnet"
    c.model.generator = arch
    c.model.discriminator = arch
    c.model.z_dim = 128
    c.model.noise = "normal"
    c.model.d.norm = "spectral"
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
        o.b1 = 0.0
        o.b2 = 0.9
    c.log_every = 500
    c.sample_every = 5000
    c.checkpoint_every = 5000
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
        c.batch_size = 16
        c.model.g.width = 16
        c.model.d.width = 16
    return c
