"""Seed 003: the 1-D Gaussian GAN, N(4, 1.5).

Real examples are vectors of 100 sorted draws of N(4, 1.5); the noise is
U(0, 1)^100. G and D are 3-layer fully connected nets (G: relu, sigmoid,
linear; D: relu, sigmoid, then the logit) and D sees only the mean and std of
each vector (the seed's advice). Binary cross-entropy with label 1 for G's
samples is the ``non_saturating`` loss.

Variants: ``rounds200`` — the seed's 200 D–G rounds; ``quick`` — a smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick


def get_config(arg: str | None = None):
    variants = parse_variants(arg, {"rounds200"})
    c = base_config()
    c.dataset = "gaussian_1d"
    c.data.mean = 4.0
    c.data.std = 1.5
    c.data.length = 100
    c.data.sort = True
    c.num_steps = 3000
    c.batch_size = 64
    c.loss = "non_saturating"
    c.model.generator = "mlp"
    c.model.discriminator = "mlp"
    c.model.z_dim = 100
    c.model.noise = "uniform"
    c.model.g.hidden = (64, 64)
    c.model.g.activation = ("relu", "sigmoid")
    c.model.g.output = "linear"
    c.model.g.weight_init = "glorot_uniform"
    c.model.d.hidden = (32, 32)
    c.model.d.activation = ("relu", "sigmoid")
    c.model.d.dropout = 0.0
    c.model.d.features = "moments"
    c.model.d.weight_init = "glorot_uniform"
    c.optimizer_g.learning_rate = 1e-3
    c.optimizer_d.learning_rate = 1e-3
    c.ema_decay = 0.99
    c.log_every = 100
    c.sample_every = 500
    c.checkpoint_every = 1000
    c.eval_every = 500  # mean, std and KS distance of raw and EMA samples
    if "rounds200" in variants:
        c.num_steps = 200
        c.log_every = 10
        c.sample_every = 200
        c.eval_every = 200
    if "quick" in variants:
        shrink_for_quick(c, num_steps=40)
    return c
