"""A researcher's own loss and penalty: this file is both the module that registers them and its config.

    python -m ganjax.main --config=configs/examples/my_loss.py --workdir=runs/my_loss
    python -m ganjax.sweep --config=configs/examples/my_loss_sweep.py --workdir=runs/my_loss_sweep

``ra_hinge``: the relativistic average hinge loss (Jolicoeur-Martineau 2018's
code); its G loss takes the real logits too. ``gp0``: the zero-centred
gradient penalty on interpolates (Thanh-Tung et al. 2019), E‖∇D(x̂)‖².
See docs/extending.md.
"""

import jax
import jax.numpy as jnp

import ganjax
from ganjax.config import mixture_config
from ganjax.shard import single


@ganjax.register_loss("ra_hinge")
class RaHinge:
    def d_loss(real_logits, fake_logits):  # [B], [B] -> scalar
        r, f = real_logits, fake_logits
        return jnp.mean(jax.nn.relu(1 - (r - f.mean()))) + jnp.mean(jax.nn.relu(1 + (f - r.mean())))

    def g_loss(real_logits, fake_logits):  # two arguments: the step passes D's logits on real data too
        r, f = real_logits, fake_logits
        return jnp.mean(jax.nn.relu(1 + (r - f.mean()))) + jnp.mean(jax.nn.relu(1 - (f - r.mean())))


@ganjax.register_penalty("gp0")
def gp0(d_fn, real, fake, key, shard=None):  # d_fn(x [B, ...]) -> logits [B]; real, fake [B, ...]
    shard = shard or single(real.shape[0])
    eps = shard.uniform(key, (1,) * (real.ndim - 1), real.dtype)  # one draw per example of the global batch
    grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(eps * real + (1 - eps) * fake)
    return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=1))


def get_config(arg=None):
    c = mixture_config("ring_2d", arg)  # the 2-D ring of 8 Gaussians; arg 'quick' = a CPU smoke run
    c.imports = (__file__,)  # ganjax.sample, ganjax.evaluate and sweep trials import this file again
    c.loss, c.penalty, c.penalty_weight = "ra_hinge", "gp0", 1.0
    return c
