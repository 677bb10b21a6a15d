"""DCGAN on CelebA at 64×64×3: the PyTorch DCGAN tutorial.

Images resized and center-cropped to 64×64 (``data.image_size=64``,
``data.crop=center``). G: z ~ N(0, I_100) → 4×4×512 → transposed convs 4×4/2
(256, 128, 64, 3) with BatchNorm + ReLU, tanh (3,576,704 parameters); D: convs
4×4/2 (64, 128, 256, 512), LeakyReLU(0.2), BatchNorm except on the first →
4×4 conv to the logit (2,765,568 parameters); bias-free, N(0, 0.02) init.
Adam(2e-4, β1 = 0.5), batch 128, BCE (``non_saturating``), 5 epochs of the
202,599 images (7,910 steps). The nets and training are those of
``configs/dcgan_cifar10.py``, one resolution doubling deeper.

Variants: ``quick`` — tiny nets, a seconds-long CPU smoke run.
"""

from ganjax.config import load_config_file, parse_variants


def get_config(arg: str | None = None):
    variants = parse_variants(arg, set())
    c = load_config_file("dcgan_cifar10", arg)  # same nets (depth follows the resolution) and training
    c.dataset = "celeb_a"
    c.data.image_size = 64
    c.data.crop = "center"
    if "quick" not in variants:
        c.num_steps = 5 * (202_599 // 128)
        c.log_every = 200
        c.sample_every = 1000
        c.checkpoint_every = 1000
    return c
