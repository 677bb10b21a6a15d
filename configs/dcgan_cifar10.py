"""DCGAN (Radford et al. 2015) on CIFAR-10, 32×32×3.

G: z ~ N(0, I_100) → 4×4×256 → transposed convs 4×4/2 (128, 64, 3) with
BatchNorm + ReLU, tanh; D: convs 4×4/2 (64, 128, 256) with LeakyReLU(0.2) and
BatchNorm (not on the first) → 4×4 conv to the logit. Bias-free convs,
N(0, 0.02) init, Adam(2e-4, β1 = 0.5), batch 128, binary cross-entropy
(``non_saturating``) — the paper's and the PyTorch tutorial's settings, with
the tutorial's nets scaled to 32×32 (one transposed conv / conv fewer).
100,000 steps (256 epochs of 390 batches).

Variants: ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = base_config()
    c.dataset = "cifar10"
    c.batch_size = 128
    c.num_steps = 100_000
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
    c.log_every = 500
    c.sample_every = 5000
    c.checkpoint_every = 5000
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
        c.batch_size = 16
        c.model.g.width = 8
        c.model.d.width = 8
    return c
