"""Named building blocks shared by the architectures: activations, initialisers,
dense/conv layers with optional spectral normalisation, discriminator
normalisation (``model.d.norm``), and the image-shape checks of the generators."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from ganjax.errors import ConfigError, unknown_name

Array = jax.Array

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    "leaky_relu": functools.partial(nn.leaky_relu, negative_slope=0.2),
    "leaky_relu_0.1": functools.partial(nn.leaky_relu, negative_slope=0.1),  # SN-GAN (Miyato'18)
    "sigmoid": nn.sigmoid,
    "tanh": jnp.tanh,
    "linear": lambda x: x,
}


def _torch_linear_init(key, shape, dtype=jnp.float32):
    """PyTorch's default ``nn.Linear``/``nn.Conv`` init: U(±1/sqrt(fan_in))."""
    fan_in = 1
    for d in shape[:-1]:
        fan_in *= d
    bound = 1.0 / jnp.sqrt(jnp.asarray(fan_in, jnp.float32))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


# Kernel initialisers by name. For "torch" the bias needs the kernel's fan-in,
# which Flax's bias initialiser cannot see: `Dense` below supplies it.
KERNEL_INITS: dict[str, Callable] = {
    "torch": _torch_linear_init,
    "glorot_uniform": nn.initializers.glorot_uniform(),
    "lecun_normal": nn.initializers.lecun_normal(),
    "normal_0.02": nn.initializers.normal(0.02),
    "orthogonal": nn.initializers.orthogonal(),  # BigGAN (Brock'18): the kernel as a [fan_in, out] matrix
}
# Besides these names, ``normal_<std>`` (e.g. ``normal_0.01``) is N(0, std²) for any std > 0:
# isotropic Gaussian weights with a configured std, as Blocks' ``IsotropicGaussian`` (PacGAN'18).
NORMAL_INIT_PREFIX = "normal_"
KERNEL_INIT_CHOICES = (*KERNEL_INITS, "normal_<std>")


def _normal_std(name: str) -> float | None:
    """The std of a ``normal_<std>`` init name (``None`` if ``name`` is not one)."""
    if not isinstance(name, str) or not name.startswith(NORMAL_INIT_PREFIX):
        return None
    try:
        std = float(name[len(NORMAL_INIT_PREFIX):])
    except ValueError:
        return None
    return std if std > 0 and np.isfinite(std) else None


def is_kernel_init(name: str) -> bool:
    """Whether ``name`` is a kernel initialiser: a :data:`KERNEL_INITS` key or ``normal_<std>``."""
    return (isinstance(name, str) and name in KERNEL_INITS) or _normal_std(name) is not None


def activation(name: str) -> Callable[[Array], Array]:
    """Looks up an activation function by name."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def kernel_init(name: str) -> Callable:
    """Looks up a kernel initialiser by name (:data:`KERNEL_INITS` or ``normal_<std>``)."""
    if name in KERNEL_INITS:
        return KERNEL_INITS[name]
    std = _normal_std(name)
    if std is None:
        raise unknown_name("kernel_init", name, KERNEL_INIT_CHOICES)
    return nn.initializers.normal(std)


def per_layer(spec: str | Sequence[str], num_layers: int, what: str) -> tuple[str, ...]:
    """Expands one activation name, or checks a per-layer list has ``num_layers`` names."""
    if isinstance(spec, str):
        return (spec,) * num_layers
    spec = tuple(spec)
    if len(spec) != num_layers:
        from ganjax.errors import ConfigError

        raise ConfigError(f"{what} has {len(spec)} entries {spec} but there are {num_layers} hidden layers")
    return spec


def bias_init(weight_init: str, fan_in: int) -> Callable:
    """The bias initialiser that goes with a kernel init: U(±1/sqrt(fan_in)) for
    ``torch`` (as ``torch.nn.Linear``/``Conv2d``), zeros otherwise."""
    if weight_init != "torch":
        return nn.initializers.zeros
    bound = 1.0 / float(np.sqrt(fan_in))
    return lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound)


# Mutable collection holding the power-iteration vectors of spectral normalisation.
SPECTRAL_COLLECTION = "spectral"


def _l2_normalize(x: Array, eps: float = 1e-12) -> Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x), eps))


def spectral_normalize(module: nn.Module, kernel: Array, train: bool) -> Array:
    """``kernel / σ̂`` (Miyato'18), σ̂ the power-iteration estimate of its largest singular value.

    ``kernel [..., out]`` is viewed as the matrix ``W [prod(...), out]``. The
    vector ``u [out]`` lives in ``module``'s ``spectral`` collection (so it is
    part of ``d_state``, synchronised and checkpointed). ``train=True`` does one
    power iteration ``v = Wu/‖Wu‖, u ← Wᵀv/‖Wᵀv‖`` and stores ``u`` (when the
    collection is mutable); ``train=False`` uses the stored ``u`` as it is
    (σ̂ = ‖Wu‖). No gradient flows through ``u``/``v``, only through ``W`` in σ̂.
    The normalised kernel is sown as ``intermediates/normalized_kernel``.
    """
    w = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)
    init = lambda key: _l2_normalize(jax.random.normal(key, (w.shape[1],), jnp.float32))
    u_var = module.variable(SPECTRAL_COLLECTION, "u", init,
                            module.make_rng("params") if module.is_initializing() else None)
    u = u_var.value
    if train:
        v = _l2_normalize(w @ u)
        u = jax.lax.stop_gradient(_l2_normalize(w.T @ v))
        if not module.is_initializing() and module.is_mutable_collection(SPECTRAL_COLLECTION):
            u_var.value = u
    v = jax.lax.stop_gradient(_l2_normalize(w @ u))
    sigma = v @ (w @ u)
    normalized = (w / sigma).reshape(kernel.shape)
    module.sow("intermediates", "normalized_kernel", normalized)
    return normalized


class Dense(nn.Module):
    """A dense layer ``[..., fan_in] → [..., features]`` with a named init.

    ``weight_init="torch"`` matches ``torch.nn.Linear`` exactly in distribution
    (kernel and bias both U(±1/sqrt(fan_in))); other inits use a zero bias.
    ``spectral=True`` divides the kernel by its spectral norm
    (:func:`spectral_normalize`; ``train`` then matters).
    """

    features: int
    weight_init: str = "torch"
    dtype: jnp.dtype = jnp.float32  # compute dtype; parameters stay float32
    use_bias: bool = True
    spectral: bool = False

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        x = x.astype(self.dtype)
        fan_in = x.shape[-1]
        kernel = self.param("kernel", kernel_init(self.weight_init), (fan_in, self.features), jnp.float32)
        if self.spectral:
            kernel = spectral_normalize(self, kernel, train)
        y = jnp.dot(x, kernel.astype(self.dtype))
        if self.use_bias:
            y = y + self.param("bias", bias_init(self.weight_init, fan_in), (self.features,), jnp.float32
                               ).astype(self.dtype)
        return y


_DIMS = ("NHWC", "HWIO", "NHWC")
_PAD1 = ((1, 1), (1, 1))  # a 4×4/2 'SAME' convolution of an even-sized input: padding 1 each side
_PAD1_NHWC = ((0, 0), *_PAD1, (0, 0))  # the same padding of a [B, H, W, C] array
# A 4×4/2 convolution whose input has at most this many channels (an image: the first layer of a
# discriminator) keeps XLA's input gradient (wider inputs take the phase-decomposed one, faster there)
# and gets its kernel gradient from one im2col product.
FEW_CHANNELS = 4


def _flip_swap(kernel: Array) -> Array:
    """``[k, k, C, F]`` → ``[k, k, F, C]``, the taps reversed: the kernel whose stride-2 convolution is the
    adjoint of the transposed convolution with ``kernel``, and the other way round."""
    return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def _conv(x: Array, kernel: Array, strides: int, padding) -> Array:
    return jax.lax.conv_general_dilated(x, kernel, (strides, strides), padding, dimension_numbers=_DIMS)


# Inputs of at most this many pixels (H·W), with at least this many output channels, compute the four
# output phases as four convolutions (each exactly H×W outputs) instead of one all-phase convolution over
# (H + 1)×(W + 1) offsets, whose border row and column cost (H + 1)(W + 1)/(HW) of the multiply-adds:
# 1.56× at 4×4, 1.27× at 8×8, 1.13× at 16×16. Narrow outputs keep the single convolution (its matmul is
# 4× as wide). Measured in whole train steps (experiments.bench_conv_forms, docs/benchmarks.md): DCGAN-64
# (4×4 → 256 and 8×8 → 128 channels) 3–4% faster than the single convolution everywhere; InfoGAN-28's
# 7×7 → 64 channels 4% slower split, so it stays single.
SPLIT_PHASES_MAX_PIXELS = 64
SPLIT_PHASES_MIN_FEATURES = 128


def _phase_conv_transpose(x: Array, k4: Array) -> Array:
    """:func:`phase_conv_transpose` (``[B, H, W, C]``, ``[4, 4, C, F]`` → ``[B, 2H, 2W, F]``) with JAX's
    autodiff gradients (used inside the hand-written ones, which need no custom rule of their own)."""
    b, h, w, _ = x.shape
    f = k4.shape[-1]
    if h * w <= SPLIT_PHASES_MAX_PIXELS and f >= SPLIT_PHASES_MIN_FEATURES:
        # Phase (r, s) is a VALID 2×2 convolution of x padded by (1 − r, r) rows and (1 − s, s) columns
        # with the sub-kernel k4[r::2, s::2]: exactly H×W outputs each.
        phases = [[_conv(jnp.pad(x, ((0, 0), (1 - r, r), (1 - s, s), (0, 0))), k4[r::2, s::2], 1, "VALID")
                   for s in (0, 1)] for r in (0, 1)]
    else:
        # Phase (r, s) reads the window x[p − 1 + r : p + 1 + r] along each axis, i.e. xp[p + r : p + r + 2] of
        # x padded by 1: one VALID 2×2 convolution of xp with the four phases' sub-kernels side by side gives
        # every phase at every offset ([B, H + 1, W + 1, 4F]); phase (r, s) is its window starting at (r, s).
        sub_kernels = jnp.concatenate([k4[r::2, s::2] for r in (0, 1) for s in (0, 1)], axis=-1)  # [2, 2, C, 4F]
        y = _conv(jnp.pad(x, _PAD1_NHWC), sub_kernels, 1, "VALID")
        phases = [[y[:, r:r + h, s:s + w, (2 * r + s) * f:(2 * r + s + 1) * f] for s in (0, 1)] for r in (0, 1)]
    y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # [B, H, r, W, s, F]
    return y.reshape(b, 2 * h, 2 * w, f)


@jax.custom_vjp
def phase_conv_transpose(x: Array, k4: Array) -> Array:
    """Flax's ``ConvTranspose`` (stride 2, ``'SAME'``) of ``x`` ``[B, H, W, C]`` with a 4×4 kernel ``k4``
    ``[4, 4, C, F]`` → ``[B, 2H, 2W, F]``, by output phases computed in one 2×2 convolution (see
    :class:`ConvTranspose`), with the gradients of :func:`_phase_conv_transpose_bwd`."""
    return _phase_conv_transpose(x, k4)


def _phase_conv_transpose_fwd(x: Array, k4: Array):
    return _phase_conv_transpose(x, k4), (x, k4)


def _phase_conv_transpose_bwd(residuals, dy: Array):
    """The transposed convolution with ``k4`` is the adjoint of the 4×4/2 convolution (padding 1) with
    ``_flip_swap(k4)``. So ``x``'s gradient is that convolution of ``dy`` (a plain strided convolution,
    which XLA:CPU runs near its matmul speed, unlike the autodiff of the four phases), and ``k4``'s is
    ``_flip_swap`` of that convolution's kernel gradient at input ``dy`` and output gradient ``x``
    (:func:`_conv4s2_kernel_grad`)."""
    x, k4 = residuals
    dx = _conv(dy, _flip_swap(k4), 2, _PAD1)
    return dx, _flip_swap(_conv4s2_kernel_grad(dy, x))


phase_conv_transpose.defvjp(_phase_conv_transpose_fwd, _phase_conv_transpose_bwd)


@jax.custom_vjp
def _conv4s2(x: Array, kernel: Array) -> Array:
    """A 4×4, stride-2, ``'SAME'`` convolution of an even-sized ``x`` ``[B, H, W, C]`` → ``[B, H/2, W/2, F]``
    (padding 1 each side, PyTorch's ``Conv2d(k=4, s=2, p=1)``), with the gradients of :func:`_conv4s2_bwd`."""
    return _conv(x, kernel, 2, _PAD1)


def _conv4s2_fwd(x: Array, kernel: Array):
    return _conv4s2(x, kernel), (x, kernel)


def _space_to_depth_padded(x: Array) -> Array:
    """``x`` ``[B, H, W, C]`` (H, W even), padded by 1 each side and cut into 2×2 blocks:
    ``[B, H/2 + 1, W/2 + 1, 4C]``, the block's row a, column b and channel c at ``(2a + b)·C + c``."""
    b, h, w, c = x.shape
    xp = jnp.pad(x, _PAD1_NHWC)
    return xp.reshape(b, h // 2 + 1, 2, w // 2 + 1, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        b, h // 2 + 1, w // 2 + 1, 4 * c)


# Inputs of at least this many pixels (H·W) take the shifted-dy kernel gradient of a 4×4/2 convolution;
# smaller ones XLA's own (see _conv4s2_kernel_grad).
SHIFTED_KERNEL_GRAD_MIN_PIXELS = 1024


def _conv4s2_kernel_grad(x: Array, dy: Array) -> Array:
    """∂/∂kernel ``[4, 4, C, F]`` of :func:`_conv4s2` at input ``x`` ``[B, H, W, C]`` and output gradient
    ``dy`` ``[B, H/2, W/2, F]``, in the form fastest on XLA:CPU for the shape.

    * A few-channel ``x`` (an image, C ≤ ``FEW_CHANNELS``): the 16 taps stacked into one
      ``[B·H/2·W/2, 16·C]`` matrix (im2col) for a single product.
    * A map of at least ``SHIFTED_KERNEL_GRAD_MIN_PIXELS`` pixels: tap ``(i, j) = (2u + a, 2v + b)`` reads
      the padded ``x`` at rows ``2(p + u) + a``, block row ``p + u`` and in-block row ``a``. After a
      space-to-depth of the padded ``x`` (:func:`_space_to_depth_padded`, blocks ``[B, H/2 + 1, W/2 + 1,
      4C]``) the 16 taps are 4 shifts ``(u, v)`` of ``4C`` channels: ``Σ_q dy[q − (u, v)]ᵀ · blocks[q]``,
      ``dy`` zero-padded to the blocks' grid at offset ``(u, v)``. Padding the ``F``-channel ``dy`` costs
      less than cutting four ``4C``-channel windows out of the blocks.
    * Smaller maps: XLA's own (the transpose of the convolution in its kernel).

    Measured in the DCGAN-64 train step on an Intel host (docs/benchmarks.md): XLA's own is the fastest
    below 32×32 and the slowest at 32×32 (as on the AMD host before); the shifted form the fastest there.
    """
    _, h, w, c = x.shape
    f = dy.shape[-1]
    if c <= FEW_CHANNELS:  # one [F, 16·C] product over the stacked taps (im2col)
        xp = jnp.pad(x, _PAD1_NHWC)
        taps = [xp[:, i:i + h:2, j:j + w:2, :].reshape(-1, c) for i in range(4) for j in range(4)]
        return (dy.reshape(-1, f).T @ jnp.concatenate(taps, axis=1)).reshape(f, 4, 4, c).transpose(1, 2, 3, 0)
    if h * w < SHIFTED_KERNEL_GRAD_MIN_PIXELS:
        kernel = jax.ShapeDtypeStruct((4, 4, c, f), x.dtype)
        return jax.linear_transpose(lambda k: _conv(x, k, 2, _PAD1), kernel)(dy)[0]
    blocks = _space_to_depth_padded(x).reshape(-1, 4 * c)  # [B·(H/2 + 1)·(W/2 + 1), 4C]
    g = jnp.stack([jnp.pad(dy, ((0, 0), (u, 1 - u), (v, 1 - v), (0, 0))).reshape(-1, f).T @ blocks
                   for u in (0, 1) for v in (0, 1)])  # [(u, v), F, (a, b, C)]
    return g.reshape(2, 2, f, 2, 2, c).transpose(0, 3, 1, 4, 5, 2).reshape(4, 4, c, f)


def _conv4s2_bwd(residuals, dy: Array):
    """XLA:CPU lowers the input gradient of a stride-2 convolution to a convolution over zero-dilated
    data, far below its matmul speed. It is the transposed convolution of ``dy`` with the kernel flipped
    and its in/out axes swapped, computed here by phases (:func:`_phase_conv_transpose`); for a
    few-channel input (an image) XLA's own is faster and is kept. The kernel gradient is
    :func:`_conv4s2_kernel_grad`."""
    x, kernel = residuals
    if x.shape[-1] <= FEW_CHANNELS:
        dx = jax.vjp(lambda x_: _conv(x_, kernel, 2, _PAD1), x)[1](dy)[0]
    else:
        dx = _phase_conv_transpose(dy, _flip_swap(kernel))
    return dx, _conv4s2_kernel_grad(x, dy)


_conv4s2.defvjp(_conv4s2_fwd, _conv4s2_bwd)


def conv2d(x: Array, kernel: Array, strides: int, padding: str) -> Array:
    """``x`` ``[B, H, W, C]`` convolved with ``kernel`` ``[k, k, C, F]`` (NHWC, HWIO) → ``[B, H', W', F]``.

    A 4×4, stride-2, ``'SAME'`` convolution of an even-sized input takes the faster gradients of
    :func:`_conv4s2_bwd` (the same function; its gradients agree with XLA's to float32 rounding); every
    other shape is ``lax.conv_general_dilated`` as it is."""
    k, _, _, _ = kernel.shape
    if (k, strides, padding) == (4, 2, "SAME") and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
        return _conv4s2(x, kernel)
    return _conv(x, kernel, strides, padding)


class Conv(nn.Module):
    """A 2-D convolution ``[B, H, W, C] → [B, H', W', features]`` (NHWC, HWIO kernel)
    with a named init and optional spectral normalisation.

    ``padding`` is ``"SAME"`` (``ceil(H / stride)`` outputs; for 4×4/2 and 3×3/1
    kernels the same as PyTorch's padding 1) or ``"VALID"``.
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: str = "SAME"
    weight_init: str = "normal_0.02"
    use_bias: bool = True
    spectral: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        x = x.astype(self.dtype)
        shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", kernel_init(self.weight_init), shape, jnp.float32)
        if self.spectral:
            kernel = spectral_normalize(self, kernel, train)
        y = conv2d(x, kernel.astype(self.dtype), self.strides, self.padding)
        if self.use_bias:
            fan_in = shape[0] * shape[1] * shape[2]
            y = y + self.param("bias", bias_init(self.weight_init, fan_in), (self.features,), jnp.float32
                               ).astype(self.dtype)
        return y


# Kernel sizes :class:`ConvTranspose` implements (k = 4: PyTorch's ConvTranspose2d(k=4, s=2, p=1)).
CONV_TRANSPOSE_KERNEL_SIZES = (3, 4)


class ConvTranspose(nn.Module):
    """``nn.ConvTranspose(features, (k, k), strides=(2, 2), padding='SAME')`` for k = 3 or 4: the
    same function and parameters (``kernel`` ``[k, k, C_in, features]``, ``bias`` ``[features]``),
    ``[B, H, W, C_in]`` → ``[B, 2H, 2W, features]``. Named as Flax's module so the parameter
    paths (``ConvTranspose_0``, …) of the nets that used ``nn.ConvTranspose`` stay the same.

    XLA:CPU lowers a stride-2 transposed convolution to a convolution over the input
    dilated with zeros, 3/4 of whose multiply-adds hit those zeros. Here each output
    phase (r, s) ∈ {0, 1}² is an ordinary 2×2 convolution: along one axis
    ``out[2p + r] = x[p − 1 + r]·k[r] + x[p + r]·k[2 + r]`` (k = 3 is k = 4 with
    ``k[3] = 0``), so the sub-kernel of phase (r, s) is ``kernel[r::2, s::2]`` over x
    padded by (1 − r, r). All four are one VALID 2×2 convolution of x padded by 1 with
    the sub-kernels side by side (4·features outputs), each phase a shifted window of
    it, interleaved by depth-to-space (:func:`phase_conv_transpose`, whose gradients are
    plain strided convolutions and matmuls); a small map with many outputs computes the
    four phase convolutions separately (``SPLIT_PHASES_MAX_PIXELS``). Measured on XLA:CPU with the earlier form (four
    separately padded phase convolutions, XLA's gradients): forward + backward 8× (3×3,
    7×7×128 → 14×14×64) to 19× (4×4, 16×16×256 → 32×32×128) faster than
    ``nn.ConvTranspose``; the current form's layer timings against PyTorch are in
    docs/benchmarks.md (``experiments.profile_layers``).
    """

    features: int
    kernel_size: int = 4
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    dtype: jnp.dtype = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k, f = self.kernel_size, self.features
        if k not in CONV_TRANSPOSE_KERNEL_SIZES:
            raise ConfigError(f"stride-2 transposed conv kernel_size {k!r} is not supported; valid choices: "
                              f"{', '.join(map(str, CONV_TRANSPOSE_KERNEL_SIZES))}")
        cin = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, cin, f), jnp.float32)
        k4 = jnp.pad(kernel, ((0, 4 - k), (0, 4 - k), (0, 0), (0, 0))).astype(self.dtype)  # taps 2a + r
        y = phase_conv_transpose(x.astype(self.dtype), k4)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (f,), jnp.float32).astype(self.dtype)
        return y


def conv_transpose(features: int, weight_init: str, dtype: jnp.dtype, use_bias: bool = True,
                   kernel_size: int = 4) -> nn.Module:
    """A stride-2 transposed convolution doubling H and W (``[B, H, W, C] → [B, 2H, 2W, features]``;
    4×4 kernels as PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)``); see :class:`ConvTranspose`."""
    return ConvTranspose(features, kernel_size, use_bias=use_bias, kernel_init=kernel_init(weight_init), dtype=dtype)


def batch_norm(train: bool, momentum: float, epsilon: float, dtype: jnp.dtype,
               axis_name: str | None) -> nn.Module:
    """BatchNorm over all axes but the last (Flax/Keras momentum: the fraction of
    the running average kept; PyTorch's momentum 0.1 is 0.9 here)."""
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon, dtype=dtype,
                        axis_name=axis_name)


class GroupBatchNorm(nn.Module):
    """BatchNorm of ``[B, F]`` with training statistics per group of rows: row ``n`` is in group
    ``n mod groups``, and each group is normalised with its own mean and variance.

    PacGAN'18's code calls its generator once per pack slot, so each slot's batch has its own
    BatchNorm statistics; with ``pack`` = ``groups``, rows ``n`` with the same ``n mod pack`` are one
    slot, and :func:`ganjax.pack.pack` packs consecutive rows, one per slot. The parameters
    (``scale``, ``bias``) and running averages (``mean``, ``var``) are shared: the running averages
    move towards the mean over the groups of their batch statistics (PacGAN's merge of the slots'
    population updates). Statistics are taken as Flax's ``nn.BatchNorm`` takes them (float32,
    ``E[x²] − E[x]²`` clipped at 0, averaged over ``axis_name`` when given); with
    ``use_running_average`` the groups play no part.
    """

    groups: int
    use_running_average: bool = False
    momentum: float = 0.99
    epsilon: float = 1e-5
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        features = x.shape[-1]
        mean_avg = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
        var_avg = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
        scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
        if self.use_running_average:
            mean, var = mean_avg.value, var_avg.value
            y = (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + self.epsilon)
            return (y * scale + bias).astype(self.dtype)
        if x.ndim != 2 or x.shape[0] % self.groups:
            raise ConfigError(f"BatchNorm statistics per {self.groups} groups (model.g.bn_groups) need a "
                              f"[batch, features] input whose batch is a multiple of {self.groups}, got shape "
                              f"{tuple(x.shape)}; use a batch_size that is a multiple of {self.groups} "
                              f"(times the device count when parallel)")
        rows = x.astype(jnp.float32).reshape(-1, self.groups, features)
        stats = jnp.stack([rows.mean(0), jnp.square(rows).mean(0)])  # [2, groups, F]
        if self.axis_name is not None and not self.is_initializing():
            stats = jax.lax.pmean(stats, self.axis_name)
        mean, mean_sq = stats
        var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
        if not self.is_initializing():
            mean_avg.value = self.momentum * mean_avg.value + (1.0 - self.momentum) * mean.mean(0)
            var_avg.value = self.momentum * var_avg.value + (1.0 - self.momentum) * var.mean(0)
        y = ((rows - mean) * jax.lax.rsqrt(var + self.epsilon)).reshape(x.shape)
        return (y * scale + bias).astype(self.dtype)


def upsample2x(x: Array) -> Array:
    """Nearest-neighbour 2× upsampling ``[B, H, W, C] → [B, 2H, 2W, C]`` (Keras' ``UpSampling2D``)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool2x(x: Array) -> Array:
    """2×2 average pooling ``[B, H, W, C] → [B, H/2, W/2, C]``."""
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


# ---- discriminator normalisation (Kurach'19's axis): model.d.norm ----

D_NORMS = ("none", "batch", "layer", "spectral")


@dataclasses.dataclass(frozen=True)
class DNorm:
    """How a discriminator normalises: ``norm`` in :data:`D_NORMS`.

    ``spectral`` normalises every conv/dense kernel (:meth:`conv`, :meth:`dense`);
    ``batch`` and ``layer`` normalise activations where the architecture puts
    its normalisation layers (:meth:`activations`); ``none`` does neither.
    """

    norm: str
    train: bool
    dtype: jnp.dtype
    weight_init: str
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_axis_name: str | None = None

    def conv(self, features: int, kernel_size: int, strides: int = 1, padding: str = "SAME",
             use_bias: bool = True) -> Callable[[Array], Array]:
        layer = Conv(features, kernel_size, strides, padding, self.weight_init, use_bias,
                     self.norm == "spectral", self.dtype)
        return lambda x: layer(x, self.train)

    def dense(self, features: int, use_bias: bool = True) -> Callable[[Array], Array]:
        layer = Dense(features, self.weight_init, self.dtype, use_bias, self.norm == "spectral")
        return lambda x: layer(x, self.train)

    def activations(self, x: Array) -> Array:
        """``[B, ..., C]`` → the same shape, batch- or layer-normalised (else unchanged)."""
        if self.norm == "batch":
            return batch_norm(self.train, self.bn_momentum, self.bn_epsilon, self.dtype, self.bn_axis_name)(x)
        if self.norm == "layer":  # over all of an example's features, a scale/offset per channel
            return nn.LayerNorm(epsilon=self.bn_epsilon, reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1,
                                dtype=self.dtype)(x)
        return x


def logits(x: Array) -> Array:
    """``[B, 1]`` → float32 logits ``[B]``."""
    return x[:, 0].astype(jnp.float32)


# ---- generator output shapes ----

RESOLUTIONS = (28, 32, 64, 128, 256)


def check_image_shape(name: str, out_shape: Sequence[int], resolutions: Sequence[int] = RESOLUTIONS) -> int:
    """Returns H of a square ``(H, H, C)`` image shape ``name`` can generate, else a ConfigError."""
    shape = tuple(out_shape)
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] not in resolutions or shape[2] < 1:
        from ganjax.errors import ConfigError

        raise ConfigError(f"generator {name!r} cannot produce examples of shape {shape}: it makes square "
                          f"[H, H, C] images with H in {', '.join(map(str, resolutions))}")
    return shape[0]


def doublings(size: int, base: int) -> int:
    """How many 2× upsamplings take ``base`` to ``size`` (``size = base · 2^n``)."""
    n = int(round(np.log2(size / base)))
    assert base * 2 ** n == size, (size, base)
    return n


# ---- base classes of the image generators and discriminators ----

class ImageGenerator(nn.Module):
    """Base of the conv generators: z ``[B, z_dim]`` → images ``[B, H, H, C]`` in [-1, 1], float32.

    Subclasses set ``resolutions`` (the H they can make) and ``base_size(H)``
    (the side of the first feature map), and add their own options.

    Attributes:
      out_shape: ``(H, H, C)``, set from the dataset.
      bn_momentum, bn_epsilon: BatchNorm (Flax/Keras momentum convention).
      weight_init: kernel initialiser name (see ``KERNEL_INITS``).
      dtype: compute dtype (from ``compute_dtype``); outputs are float32.
      bn_axis_name: device axis for synchronised BatchNorm (None: per device).
    """

    out_shape: Sequence[int]
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    weight_init: str = "normal_0.02"
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    resolutions: ClassVar[tuple[int, ...]] = RESOLUTIONS

    @classmethod
    def check_out_shape(cls, name: str, out_shape: Sequence[int]) -> int:
        """H of ``out_shape`` if this architecture can make it, else a ConfigError naming the valid ones."""
        return check_image_shape(name, out_shape, cls.resolutions)

    @staticmethod
    def base_size(size: int) -> int:
        """Side of the first feature map for images of side ``size``: 7 for 28, else 4."""
        return 7 if size == 28 else 4

    def plan(self) -> tuple[int, int, int]:
        """``(H, base, n)``: image side, first feature-map side, number of 2× upsamplings."""
        size = self.check_out_shape(type(self).__name__, self.out_shape)
        base = self.base_size(size)
        return size, base, doublings(size, base)

    def bn(self, x: Array, train: bool) -> Array:
        return batch_norm(train, self.bn_momentum, self.bn_epsilon, self.dtype, self.bn_axis_name)(x)

    def project(self, z: Array, base: int, channels: int, train: bool, act: Callable[[Array], Array],
                per_unit_bn: bool, use_bias: bool = True, act_first: bool = False) -> Array:
        """``z [B, z_dim]`` → Dense → BatchNorm and ``act`` → ``[B, base, base, channels]``.

        ``per_unit_bn``: BatchNorm of each of the ``base²·channels`` units before
        the reshape (Keras/Chainer/compare_gan nets); else one per channel after
        it (DCGAN's 1×1 → 4×4 transposed conv). ``act_first``: activation before
        BatchNorm (seed 001's Keras order).
        """
        h = Dense(base * base * channels, self.weight_init, self.dtype, use_bias)(z)
        norm_act = (lambda t: self.bn(act(t), train)) if act_first else (lambda t: act(self.bn(t, train)))
        if per_unit_bn:
            return norm_act(h).reshape((z.shape[0], base, base, channels))
        return norm_act(h.reshape((z.shape[0], base, base, channels)))

    def deconv(self, h: Array, features: int, train: bool, use_bias: bool = True) -> Array:
        """4×4/2 transposed conv → BatchNorm → ReLU: ``[B, S, S, ·] → [B, 2S, 2S, features]``."""
        return nn.relu(self.bn(conv_transpose(features, self.weight_init, self.dtype, use_bias)(h), train))

    def to_image(self, h: Array) -> Array:
        """tanh, as float32 ``[B, H, H, C]``."""
        return jnp.tanh(h).astype(jnp.float32)


class ImageDiscriminator(nn.Module):
    """Base of the conv discriminators: x ``[B, H, W, C]`` → logits ``[B]`` (float32).

    Attributes:
      norm: ``none``, ``batch``, ``layer`` or ``spectral`` (see :class:`DNorm`).
      bn_momentum, bn_epsilon: BatchNorm/LayerNorm settings for ``batch``/``layer``.
      weight_init: kernel initialiser name.
      dtype: compute dtype; logits are float32.
      bn_axis_name: device axis for synchronised BatchNorm.
    """

    input_rank = 3  # [H, W, C] examples (a class attribute, not an option)

    norm: str = "batch"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    weight_init: str = "normal_0.02"
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    def normalizer(self, train: bool) -> DNorm:
        return DNorm(self.norm, train, self.dtype, self.weight_init, self.bn_momentum, self.bn_epsilon,
                     self.bn_axis_name)

    def conv_stack(self, x: Array, specs: Sequence[tuple[int, int, int]], train: bool,
                   act: Callable[[Array], Array], use_bias: bool = True, act_first: bool = False) -> Array:
        """Convs ``(features, kernel, stride)`` each followed by ``act``; every conv but the
        first is also normalised (before ``act``, or after it with ``act_first``)."""
        nrm = self.normalizer(train)
        h = x.astype(self.dtype)
        for i, (features, kernel, stride) in enumerate(specs):
            h = nrm.conv(features, kernel, stride, use_bias=use_bias)(h)
            norm = nrm.activations if i > 0 else (lambda t: t)
            h = norm(act(h)) if act_first else act(norm(h))
        return h
