"""Seed 001: the Keras "cats vs dogs" image GAN at 256×256×3.

G (``dcgan_upsample``): z ~ U(−1, 1)^100 → Dense 8·8·128 → LeakyReLU(0.2) →
BatchNorm(momentum 0.8) → five blocks of UpSampling2D → Conv 128 3×3 →
LeakyReLU → BatchNorm → Conv 3 3×3 → tanh. (The seed's G starts at 7×7 and
upsamples twice, i.e. makes 28×28 images although it declares 256×256; this
config makes the 256×256 it declares.) D: Conv 64/128/256/512 3×3 'same' at
full resolution, LeakyReLU(0.2), BatchNorm(0.8) after the activation of all
but the first → global average pooling → Dense 1 (the logit; the seed's
sigmoid + binary cross-entropy is the ``non_saturating`` loss). Keras defaults:
glorot-uniform init, Adam(1e-3, β = (0.9, 0.999), ε = 1e-7). Batch 32; D is
trained on a real and then a fake batch, then G (alternating). The seed runs
100 epochs of int(50000 / 32) = 1,562 batches (156,200 steps). Images resized
and center-cropped to 256×256 (``data.image_size``, ``data.crop``).

The full-resolution D costs ~200 GFLOP per image (an accelerator job);
``--config.model.d.strides=2`` makes it a strided net.

Variants: ``quick`` — 32×32 images and tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = base_config()
    c.dataset = "cats_vs_dogs"
    c.data.image_size = 256
    c.data.crop = "center"
    c.batch_size = 32
    c.num_steps = 100 * (50_000 // 32)
    c.loss = "non_saturating"
    c.update_rule = "alternating"
    c.model.generator = "dcgan_upsample"
    c.model.discriminator = "dcgan_upsample"
    c.model.z_dim = 100
    c.model.noise = "uniform_signed"
    c.model.g.width = 128
    c.model.d.widths = (64, 128, 256, 512)
    c.model.d.strides = 1
    c.model.d.norm = "batch"
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 1e-3
        o.b1 = 0.9
        o.b2 = 0.999
        o.eps = 1e-7
    c.log_every = 200
    c.sample_every = 2000
    c.checkpoint_every = 2000
    if "quick" in variants:
        shrink_for_quick(c, num_steps=10)
        c.data.image_size = 32
        c.batch_size = 8
        c.model.g.width = 8
        c.model.d.widths = (8, 16)
    return c
