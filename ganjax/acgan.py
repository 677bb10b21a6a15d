"""ACGAN's auxiliary classifier (Odena, Olah & Shlens 2017, "Conditional Image Synthesis with
Auxiliary Classifier GANs").

With ``acgan_weight = λ > 0`` the discriminator has a class head: its output is
``[B, 1 + C]``, column 0 the real/fake logit, columns ``1..C`` the class
logits (the module field ``class_head = C``, set by the model builder from
``model.num_classes``). :func:`split` separates them in one place, so every
loss of :mod:`ganjax.losses` keeps receiving logits ``[B]``.

The paper's class log-likelihood ``L_C = E[log P(C=c | X_real)] + E[log P(C=c | X_fake)]``
is maximised by both players. As losses to minimise:

* D: ``d_loss(r, f) + λ · (CE(real class logits, real labels) + CE(fake class logits, sampled labels))``;
* G: ``g_loss(f) + λ · CE(fake class logits, sampled labels)``,

``CE`` the mean softmax cross-entropy (:func:`class_loss`). G's generated
examples are conditioned on the sampled labels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def split(out: Array, class_head: bool) -> tuple[Array, Array | None]:
    """D's output → ``(logits [B], class logits [B, C] or None)``.

    Without a class head ``out`` is already the logits ``[B]``; with one it is
    ``[B, 1 + C]``.
    """
    if not class_head:
        return out, None
    return out[:, 0], out[:, 1:]


def class_loss(class_logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy ``-mean_i log softmax(class_logits_i)[labels_i]``: scalar float32."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits.astype(jnp.float32), labels))
