"""Seed 004: a GAN whose generator is a pretrained autoencoder's decoder, on Fashion-MNIST.

Phase 1 (``pretrain.*``, :mod:`ganjax.pretrain`): a convolutional autoencoder
— encoder Conv32 3×3/2 → Conv64 3×3/2 → Conv128 3×3 (ReLU; the seed's
32/64/128 channels, strided so that the code is the seed's decoder input
7×7×128), decoder ConvTranspose64 3×3/2 → ConvTranspose32 3×3/2 (ReLU) →
Conv1 3×3 → tanh — trained on the training images with the seed's
``compile(optimizer='adam', loss='binary_crossentropy')``: Adam(1e-3, β
0.9/0.999, ε 1e-7, Keras' defaults), binary cross-entropy of the [0, 1]
pixels (``pretrain.loss='bce'``; tanh on [−1, 1] is the seed's sigmoid on
[0, 1]), batch 256, 50 epochs (``fit(epochs=50, batch_size=256)``).

Phase 2: G = z ~ N(0, I_100) → Dense(7·7·128) + ReLU → reshape → the
pretrained decoder (``model.generator='ae_decoder'``, initialised from the
phase-1 decoder and fine-tuned, as the seed's generator layers are trainable;
``--config.model.g.freeze_decoder=True`` trains only the mapping). D: the
seed's two 3×3 convs 64/128 and Dense 1, here ganjax's ``keras_conv`` (strided,
LeakyReLU 0.2 and Dropout 0.3 instead of the seed's unstrided ReLU convs).
Loss: BCE (``non_saturating``, the seed's sigmoid cross-entropy with the
label-1 generator target). The seed's adversarial loop has no working
optimizer settings (its generator is never compiled); here Adam(2e-4, β1 0.5)
for both nets, batch 256 (the seed's autoencoder batch), 20 epochs.

``--config.pretrain.autoencoder_steps=0`` keeps the same generator without
pretraining (the ablation baseline).

Variants: ``quick`` — seconds-long smoke run of both phases.
"""

from ganjax.config import base_config, parse_variants, shrink_for_quick

BATCH = 256
STEPS_PER_EPOCH = 60_000 // BATCH  # drop_last


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = base_config()
    c.dataset = "fashion_mnist"
    c.batch_size = BATCH
    c.num_steps = 20 * STEPS_PER_EPOCH
    c.loss = "non_saturating"
    c.model.generator = "ae_decoder"
    c.model.discriminator = "keras_conv"
    c.model.z_dim = 100
    c.model.noise = "normal"
    c.model.g.code_channels = 128
    c.model.g.widths = (64, 32)
    c.model.g.freeze_decoder = False
    c.model.g.weight_init = "glorot_uniform"
    c.model.d.dropout = 0.3
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
        o.b1 = 0.5
    c.pretrain.autoencoder_steps = 50 * STEPS_PER_EPOCH
    c.pretrain.batch_size = BATCH
    c.pretrain.learning_rate = 1e-3
    c.pretrain.b1 = 0.9
    c.pretrain.b2 = 0.999
    c.pretrain.eps = 1e-7
    c.pretrain.loss = "bce"
    c.pretrain.encoder_widths = (32, 64)
    c.pretrain.log_every = STEPS_PER_EPOCH
    c.pretrain.checkpoint_every = 5 * STEPS_PER_EPOCH
    c.log_every = 100
    c.sample_every = STEPS_PER_EPOCH
    c.checkpoint_every = STEPS_PER_EPOCH
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
        c.batch_size = 32
        c.pretrain.autoencoder_steps = 20
        c.pretrain.batch_size = 32
        c.pretrain.log_every = 5
        c.pretrain.checkpoint_every = 10
    return c
