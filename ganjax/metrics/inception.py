r"""The FID Inception-v3 network of pytorch-fid, ported to Flax, with its weights.

The Fréchet Inception Distance (Heusel et al., 2017) compares the mean and
covariance of Inception-v3 features of real and generated images. The numbers
reported in papers come from TensorFlow's 2015-12-05 Inception graph, which
pytorch-fid (``pytorch_fid.inception.fid_inception_v3``, weights file
``pt_inception-2015-12-05-6726825d.pth``) reproduces in PyTorch. This module
is an exact port of that network and of pytorch-fid's ``InceptionV3`` input
pipeline:

1. images in [-1, 1] (pytorch-fid takes [0, 1] and maps them to [-1, 1]; the
   two orders agree because bilinear weights sum to one), ``[N, H, W, C]``
   with ``C`` 1 (repeated to 3 channels) or 3;
2. resized to 299×299 with bilinear interpolation as
   ``F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)``
   does it: half-pixel centres, two taps per axis, **no antialiasing** when
   shrinking (``jax.image.resize``'s default would antialias);
3. the torchvision Inception-v3 trunk with pytorch-fid's patched blocks
   (``FIDInceptionA``/``C``/``E_1`` average-pool without counting the zero
   padding, ``FIDInceptionE_2`` max-pools in its pool branch); every conv is
   bias-free with explicit symmetric zero padding, BatchNorm ``eps=1e-3``, ReLU;
4. ``pool3``: the global average pool ``[N, 2048]``, the FID features;
   ``logits``: the 1008-way fc layer, for the Inception Score.

Weights: ganjax stores the network as an ``.npz`` of the flattened Flax
variables (keys joined by ``/``), written deterministically (fixed zip
timestamps), so the same ``.pth`` always gives the same ``.npz`` bytes.
:func:`load_inception` reads ``$GANJAX_CACHE/pt_inception-2015-12-05-6726825d.npz``
(default cache ``~/.cache/ganjax``), else converts the ``.pth`` found there,
else downloads it from :data:`WEIGHTS_URL`. The ``.pth`` is read without
PyTorch (a restricted unpickler that accepts only tensors and dicts), or with
``torch.load(weights_only=True)`` if that fails and PyTorch is installed.

The sha256 returned with the weights is that of the file actually read (the
``.npz`` or the ``.pth``); it is recorded with every score. It is not checked
against anything unless ``expected_sha256`` is given (the ``6726825d`` in the
file name is not used as a check).

Convert ahead of time with
``python -m ganjax.metrics.inception --convert=PATH.pth --out=PATH.npz``, or
fill the cache (downloading) with ``python -m ganjax.metrics.inception``.
"""

from __future__ import annotations

import collections
import functools
import http.client
import io
import logging
import os
import pickle
import sys
import urllib.request
import zipfile
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from ganjax import storage as storage_lib
from ganjax.errors import DataError
from ganjax.metrics import weights_file
from ganjax.metrics.batching import map_batches
from ganjax.metrics.weights_file import default_cache_dir, sha256_file

log = logging.getLogger("ganjax")

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
# torch.hub's convention: the file name carries the first hex digits of the file's sha256.
PTH_SHA256_PREFIX = "6726825d"
NPZ_NAME = "pt_inception-2015-12-05-6726825d.npz"
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3
_FORMAT = "ganjax_fid_inception_v3/1"

Precision = Any  # jax.lax.Precision, a string such as "highest", or None


# ---------------------------------------------------------------------------
# Resizing as torch's bilinear interpolation (align_corners=False).


def torch_bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The ``[out_size, in_size]`` float32 matrix of torch's 1-D bilinear resize.

    Row ``o`` holds the two taps of ``F.interpolate(..., mode='bilinear',
    align_corners=False)``: source coordinate ``s = (o + 0.5) * in/out - 0.5``
    clamped below at 0, weights ``1 - (s - floor s)`` and ``s - floor s`` on
    ``floor s`` and ``min(floor s + 1, in - 1)``. No antialiasing.
    Computed as torch's CPU kernel does: ``in/out`` rounded to float32, then
    ``s`` with a fused multiply-add (one rounding to float32), which gives
    torch's weights bit for bit (separate float32 rounding of the product
    would move some weights by an ulp of ``s``, ~4e-6).
    """
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    # float32 × (o + 0.5) is exact in float64, so this rounds once, like an FMA.
    src = (scale * (np.arange(out_size, dtype=np.float64) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    lo = np.minimum(src.astype(np.int64), in_size - 1)
    hi = np.where(lo < in_size - 1, lo + 1, lo)
    w_hi = (src - lo.astype(np.float32)).astype(np.float32)
    w_lo = (np.float32(1.0) - w_hi).astype(np.float32)
    m = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(m, (rows, lo), w_lo)
    np.add.at(m, (rows, hi), w_hi)
    return m


def resize_bilinear(x: jax.Array, size: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE)) -> jax.Array:
    """``[N, H, W, C]`` → ``[N, size[0], size[1], C]`` exactly as torch's bilinear, align_corners=False.

    Identity when the size already matches.
    """
    n, h, w, c = x.shape
    if (h, w) == tuple(size):
        return x
    mh = jnp.asarray(torch_bilinear_matrix(h, size[0]))
    mw = jnp.asarray(torch_bilinear_matrix(w, size[1]))
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=hi)
    return jnp.einsum("pw,nowc->nopc", mw, x, precision=hi)


# ---------------------------------------------------------------------------
# The network. Submodule names follow pytorch-fid's state dict.


class BasicConv2d(nn.Module):
    """torchvision's ``BasicConv2d``: conv (no bias, explicit symmetric zero padding) → BatchNorm(eps=1e-3) → ReLU.

    ``padding``: ``(ph, pw)`` zeros on both sides, as torch's ``padding=``.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = self.padding
        x = nn.Conv(self.features, self.kernel_size, strides=self.strides, padding=((ph, ph), (pw, pw)),
                    use_bias=False, precision=self.precision, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3_same(x: jax.Array) -> jax.Array:
    """``F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)``."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_same(x: jax.Array) -> jax.Array:
    """``F.max_pool2d(x, 3, stride=1, padding=1)`` (padding is -inf, never selected)."""
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """``F.max_pool2d(x, 3, stride=2)``: no padding, floor of the output size."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class FIDInceptionA(nn.Module):
    """Mixed_5b/c/d: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool (pad not counted)→1×1."""

    pool_features: int
    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b1 = conv(64, (1, 1), name="branch1x1")(x)
        b5 = conv(48, (1, 1), name="branch5x5_1")(x)
        b5 = conv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = conv(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = conv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3_same(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a (grid reduction 35→17): 3×3/2 | 1×1→3×3→3×3/2 | max-pool 3×3/2."""

    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b3 = conv(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
        bd = conv(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = conv(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionC(nn.Module):
    """Mixed_6b..e: 1×1 | factorised 7×7 | double factorised 7×7 | avg-pool (pad not counted)→1×1."""

    channels_7x7: int
    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        c7 = self.channels_7x7
        b1 = conv(192, (1, 1), name="branch1x1")(x)
        b7 = conv(c7, (1, 1), name="branch7x7_1")(x)
        b7 = conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = conv(c7, (1, 1), name="branch7x7dbl_1")(x)
        bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = conv(192, (1, 1), name="branch_pool")(_avg_pool_3x3_same(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a (grid reduction 17→8): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool 3×3/2."""

    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b3 = conv(192, (1, 1), name="branch3x3_1")(x)
        b3 = conv(320, (3, 3), strides=(2, 2), name="branch3x3_2")(b3)
        b7 = conv(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = conv(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionE(nn.Module):
    """Mixed_7b (``pool='avg'``, pad not counted) and Mixed_7c (``pool='max'``, pytorch-fid's ``E_2``)."""

    pool: str = "avg"
    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b1 = conv(320, (1, 1), name="branch1x1")(x)
        b3 = conv(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
        bd = conv(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = conv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                              conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
        pooled = _avg_pool_3x3_same(x) if self.pool == "avg" else _max_pool_3x3_same(x)
        bp = conv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID Inception-v3 (inference only: BatchNorm uses its running statistics).

    Attributes:
      resize_input: resize to 299×299 as pytorch-fid does (torch bilinear,
        align_corners=False); a 299×299 input is passed through unchanged.
      precision: of the convolutions and the fc layer. ``'highest'`` (default)
        is true float32 everywhere; ``None`` lets XLA use faster reduced
        precision (TF32 on recent NVIDIA GPUs), which changes features at the
        1e-3 level.
    """

    resize_input: bool = True
    precision: Precision = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Images ``[N, H, W, C]`` (C = 1 or 3) in [-1, 1] → ``(pool3 [N, 2048], logits [N, 1008])``."""
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise DataError(f"FID Inception takes images [N, H, W, C] with C = 1 or 3, got shape {tuple(x.shape)}")
        x = jnp.asarray(x, jnp.float32)
        if self.resize_input:
            x = resize_bilinear(x)  # on one channel for grayscale: cheaper, and the same numbers
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        conv = functools.partial(BasicConv2d, precision=self.precision)
        p = self.precision
        x = conv(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)   # 149
        x = conv(32, (3, 3), name="Conv2d_2a_3x3")(x)                  # 147
        x = conv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)  # 147
        x = _max_pool_3x3_s2(x)                                        # 73
        x = conv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = conv(192, (3, 3), name="Conv2d_4a_3x3")(x)                 # 71
        x = _max_pool_3x3_s2(x)                                        # 35
        x = FIDInceptionA(32, precision=p, name="Mixed_5b")(x)          # 256 channels
        x = FIDInceptionA(64, precision=p, name="Mixed_5c")(x)          # 288
        x = FIDInceptionA(64, precision=p, name="Mixed_5d")(x)          # 288
        x = InceptionB(precision=p, name="Mixed_6a")(x)                 # 768 × 17 × 17
        x = FIDInceptionC(128, precision=p, name="Mixed_6b")(x)
        x = FIDInceptionC(160, precision=p, name="Mixed_6c")(x)
        x = FIDInceptionC(160, precision=p, name="Mixed_6d")(x)
        x = FIDInceptionC(192, precision=p, name="Mixed_6e")(x)
        x = InceptionD(precision=p, name="Mixed_7a")(x)                 # 1280 × 8 × 8
        x = FIDInceptionE("avg", precision=p, name="Mixed_7b")(x)       # 2048
        x = FIDInceptionE("max", precision=p, name="Mixed_7c")(x)       # 2048
        pool3 = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_CLASSES, precision=p, name="fc")(pool3)
        return pool3, logits


@functools.lru_cache(maxsize=1)
def variable_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
    """Flattened ``{('params' | 'batch_stats', ..., leaf): shape}`` of :class:`FIDInceptionV3`."""
    shapes = jax.eval_shape(lambda: FIDInceptionV3().init(jax.random.key(0),
                                                          jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3))))
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes).items()}


def _check_variables(flat: Mapping[tuple[str, ...], np.ndarray], source: str) -> None:
    """``DataError`` unless ``flat`` has exactly the network's variables, with their shapes and float dtype."""
    expected = variable_shapes()
    missing = sorted("/".join(k) for k in expected.keys() - flat.keys())
    extra = sorted("/".join(k) for k in flat.keys() - expected.keys())
    wrong = sorted(f"{'/'.join(k)} {tuple(np.shape(flat[k]))} (expected {expected[k]})"
                   for k in expected.keys() & flat.keys() if tuple(np.shape(flat[k])) != expected[k])
    bad_dtype = sorted("/".join(k) for k, v in flat.items() if not np.issubdtype(np.asarray(v).dtype, np.floating))
    problems = ([f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}"] if missing else []) + \
        ([f"unexpected {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}"] if extra else []) + \
        ([f"wrong shape {', '.join(wrong[:3])}{' …' if len(wrong) > 3 else ''}"] if wrong else []) + \
        ([f"not float {', '.join(bad_dtype[:3])}"] if bad_dtype else [])
    if problems:
        raise DataError(f"{source} is not the FID Inception-v3: {'; '.join(problems)}")


# ---------------------------------------------------------------------------
# Weight conversion.


def torch_state_dict_to_variables(state_dict: Mapping[str, Any]) -> dict:
    """pytorch-fid's ``fid_inception_v3().state_dict()`` → Flax ``{'params': ..., 'batch_stats': ...}``.

    Conv weights OIHW → HWIO (``kernel``), fc weight ``[1008, 2048]`` → ``kernel``
    ``[2048, 1008]``, BatchNorm ``weight``/``bias`` → ``scale``/``bias`` and
    ``running_mean``/``running_var`` → ``batch_stats`` ``mean``/``var``;
    ``num_batches_tracked`` is dropped. Values may be numpy arrays or torch
    tensors; the result holds float32 numpy arrays.

    Raises:
      DataError: a key is unknown or missing, or a shape does not match.
    """
    flat: dict[tuple[str, ...], np.ndarray] = {}
    unknown = []
    for key, value in state_dict.items():
        parts = tuple(key.split("."))
        if parts[-1] == "num_batches_tracked":
            continue
        if len(parts) < 2:
            unknown.append(key)
            continue
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        value = np.asarray(value)
        path, layer, leaf = parts[:-2], parts[-2], parts[-1]
        if layer == "conv" and leaf == "weight" and value.ndim == 4:
            flat[("params", *path, "conv", "kernel")] = value.transpose(2, 3, 1, 0)
        elif layer == "bn" and leaf in ("weight", "bias", "running_mean", "running_var"):
            coll, name = {"weight": ("params", "scale"), "bias": ("params", "bias"),
                          "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}[leaf]
            flat[(coll, *path, "bn", name)] = value
        elif parts == ("fc", "weight") and value.ndim == 2:
            flat[("params", "fc", "kernel")] = value.T
        elif parts == ("fc", "bias"):
            flat[("params", "fc", "bias")] = value
        else:
            unknown.append(key)
    if unknown:
        raise DataError(f"the state dict is not pytorch-fid's FID Inception-v3: unexpected keys "
                        f"{', '.join(unknown[:3])}{' …' if len(unknown) > 3 else ''}")
    _check_variables(flat, "the state dict")
    flat = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in flat.items()}
    return traverse_util.unflatten_dict(flat)


# ---------------------------------------------------------------------------
# Reading pytorch .pth files without PyTorch.

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage's bytes, filled in later for the legacy format."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, numel, None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        s = self.storage
        if s.data is None:
            raise ValueError("tensor storage missing from the file")
        flat = np.frombuffer(s.data, dtype=s.dtype.newbyteorder("<"), count=s.numel)
        item = flat.itemsize
        needed = self.offset + 1 + sum((n - 1) * st for n, st in zip(self.size, self.stride)) if all(self.size) else 0
        if needed > s.numel:
            raise ValueError("tensor extends past its storage")
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.size, [st * item for st in self.stride])
        return np.array(view, dtype=s.dtype)


def _rebuild_tensor(storage, storage_offset, size, stride, *args):  # _rebuild_tensor and _rebuild_tensor_v2
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *args):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors, dicts and plain values only; any other class is refused."""

    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages: dict[str, _Storage], read_storage: Callable[[str, _Storage], None] | None):
        super().__init__(file, encoding="utf-8")
        self._storages, self._read_storage = storages, read_storage

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        kind = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage" or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid[:2]!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, numel)
            if self._read_storage is not None:
                self._read_storage(key, self._storages[key])
        return self._storages[key]


def _materialize(obj: Any) -> Any:
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    return obj


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def read_pth(path: str) -> dict[str, np.ndarray]:
    """A PyTorch ``.pth`` state dict (zip or legacy format; a local path or URL) → ``{name: numpy array}``,
    without PyTorch.

    Only tensors, dicts and plain values are unpickled (no code runs).
    Raises ``ValueError``/``pickle.UnpicklingError``/``OSError`` on anything else.
    """
    with storage_lib.open_binary(path) as f:
        return _read_pth_file(f)


def _read_pth_file(f) -> dict[str, np.ndarray]:
    """:func:`read_pth` of the open (seekable) binary file ``f``."""
    storages: dict[str, _Storage] = {}
    if zipfile.is_zipfile(f):
        with zipfile.ZipFile(f) as zf:
            names = zf.namelist()
            pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise ValueError("not a PyTorch zip checkpoint (no data.pkl)")
            root = pkl[0][: -len("data.pkl")]
            order = zf.read(root + "byteorder").decode() if root + "byteorder" in names else "little"
            if order != "little":
                raise ValueError(f"byte order {order!r} is not supported")

            def read_storage(key: str, storage: _Storage) -> None:
                storage.data = zf.read(f"{root}data/{key}")
                if len(storage.data) < storage.numel * storage.dtype.itemsize:
                    raise ValueError(f"storage {key} is truncated")

            obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), storages, read_storage).load()
    else:
        f.seek(0)
        if _RestrictedUnpickler(f, {}, None).load() != _LEGACY_MAGIC:
            raise ValueError("not a PyTorch checkpoint (bad magic number)")
        _RestrictedUnpickler(f, {}, None).load()  # protocol version
        _RestrictedUnpickler(f, {}, None).load()  # sys info
        obj = _RestrictedUnpickler(f, storages, None).load()
        keys = _RestrictedUnpickler(f, {}, None).load()
        for key in keys:
            storage = storages[str(key)]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            nbytes = numel * storage.dtype.itemsize
            storage.data = f.read(nbytes)
            if numel != storage.numel or len(storage.data) != nbytes:
                raise ValueError(f"storage {key} is truncated")
    obj = _materialize(obj)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ValueError("the file does not hold a state dict of tensors")
    return obj


def _read_pth_any(path: str) -> dict[str, np.ndarray]:
    """:func:`read_pth`, falling back on ``torch.load(weights_only=True)`` when PyTorch is installed."""
    try:
        return read_pth(path)
    except Exception as own_error:  # noqa: BLE001 - try PyTorch's reader before giving up
        try:
            import torch
        except ImportError:
            raise own_error from None
        with storage_lib.open_binary(path) as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
        return {k: v.detach().cpu().numpy() for k, v in state.items()}


# ---------------------------------------------------------------------------
# Files.


def save_variables(path: str, variables: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
    """Writes ``variables`` as ganjax's deterministic ``.npz`` (:func:`weights_file.save`).

    Raises:
      WriteError: the file cannot be written.
    """
    weights_file.save(path, variables, {"format": _FORMAT, **(info or {})}, "the Inception weights")


def _read_npz(path: str) -> dict:
    flat, _ = weights_file.load(path)
    _check_variables(flat, path)
    return traverse_util.unflatten_dict(flat)


def read_weights(path: str) -> tuple[dict, str]:
    """Reads a ganjax ``.npz`` or a pytorch-fid ``.pth`` → ``(variables, sha256 of the file)``.

    Raises:
      DataError: the file is missing, unreadable, or not the FID Inception-v3 (naming the path).
    """
    if not storage_lib.isfile(path):
        raise DataError(f"Inception weights file {path} does not exist")
    is_pth = _file_kind(path) == "pth"
    try:
        variables = torch_state_dict_to_variables(_read_pth_any(path)) if is_pth else _read_npz(path)
    except DataError as e:
        raise DataError(str(e) if path in str(e) else f"{e} (file {path})") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line naming it
        kind = "PyTorch .pth" if is_pth else "ganjax .npz"
        detail = str(e).splitlines()[0][:120] if str(e) else "damaged"
        raise DataError(f"cannot read the Inception weights {path} as a {kind} file ({type(e).__name__}: "
                        f"{detail}); delete it or replace it with {PTH_NAME} from {WEIGHTS_URL}") from None
    return variables, sha256_file(path)


def _file_kind(path: str) -> str:
    """``'npz'`` for a zip of ``.npy`` entries, ``'pth'`` for other zips; by extension when not a zip."""
    try:
        with storage_lib.open_binary(path) as f, zipfile.ZipFile(f) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return "npz" if path.lower().endswith(".npz") else "pth"
    return "npz" if names and all(n.endswith(".npy") for n in names) else "pth"


def convert(pth_path: str, npz_path: str) -> tuple[str, str]:
    """pytorch-fid ``.pth`` → ganjax ``.npz``; returns ``(sha256 of the .pth, sha256 of the .npz)``."""
    variables, pth_sha = read_weights(pth_path)
    save_variables(npz_path, variables, {"source": os.path.basename(pth_path), "source_sha256": pth_sha})
    return pth_sha, sha256_file(npz_path)


def _download(url: str, dest: str) -> None:
    """Downloads ``url`` to ``dest`` (a local path or URL) atomically (``OSError`` / ``urllib.error.URLError``
    on failure)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        log.info("downloading the FID Inception weights from %s to %s", url, dest)
        data = response.read()
    storage_lib.publish_bytes(dest, data)


def _check_release_hash(pth: str) -> None:
    """The cached/downloaded ``.pth`` must be pytorch-fid's release (sha256 starting ``6726825d``)."""
    sha = sha256_file(pth)
    if not sha.startswith(PTH_SHA256_PREFIX):
        raise DataError(f"{pth} has sha256 {sha}, not pytorch-fid's release file (sha256 {PTH_SHA256_PREFIX}...): "
                        f"a damaged or different download; delete it and fetch it again from {WEIGHTS_URL}")


def load_inception(path: str | None = None, cache_dir: str | None = None, download: bool = True,
                   expected_sha256: str | None = None) -> tuple[FIDInceptionV3, dict, str]:
    """The FID Inception-v3 and its weights.

    Args:
      path: a ganjax ``.npz`` or pytorch-fid's ``.pth`` (converted on the fly,
        not cached). ``None``: the cache.
      cache_dir: the cache folder (default ``$GANJAX_CACHE`` or ``~/.cache/ganjax``),
        holding ``pt_inception-2015-12-05-6726825d.npz``; a ``.pth`` of that
        name placed there is converted to the ``.npz`` on first use.
      download: when the cache has neither, download the ``.pth`` from
        :data:`WEIGHTS_URL` into the cache and convert it.
      expected_sha256: if given, the sha256 of the file read must equal it.

    Returns:
      ``(module, variables, sha256)``: ``module.apply(variables, images)`` maps
      ``[N, H, W, C]`` images in [-1, 1] to ``(pool3 [N, 2048], logits [N, 1008])``;
      ``sha256`` is the hex digest of the file read (the ``.npz`` or ``.pth``).

    Raises:
      DataError: the weights are missing and cannot be downloaded (one line
        naming the file, where to put it, and the URL), a file is damaged, or
        the sha256 differs from ``expected_sha256``.
    """
    if path:
        variables, sha = read_weights(path)
    else:
        cache = cache_dir or default_cache_dir()
        npz, pth = storage_lib.join(cache, NPZ_NAME), storage_lib.join(cache, PTH_NAME)
        if not storage_lib.exists(npz):
            if not storage_lib.exists(pth):
                where = (f"put {PTH_NAME} (from {WEIGHTS_URL}) or its converted {NPZ_NAME} in {cache}, "
                         f"or give the file's path (eval.inception_weights)")
                if not download:
                    raise DataError(f"the FID Inception weights are not in the cache: {where}")
                try:
                    _download(WEIGHTS_URL, pth)
                except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, HTTPError: OSError
                    reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
                    raise DataError(f"cannot download the FID Inception weights ({reason}): {where}") from None
            _check_release_hash(pth)
            convert(pth, npz)
            log.info("FID Inception weights converted to %s", npz)
        variables, sha = read_weights(npz)
        path = npz
    if expected_sha256 is not None and sha != expected_sha256.strip().lower():
        raise DataError(f"Inception weights {path} have sha256 {sha}, expected {expected_sha256}")
    return FIDInceptionV3(), variables, sha


# ---------------------------------------------------------------------------
# Batched feature extraction.


def make_feature_fn(module: nn.Module, variables: Mapping[str, Any], batch_size: int = 500
                    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A function ``images [N, H, W, C] → (features [N, 2048], logits [N, 1008])``, both float64 numpy.

    ``images``: float in [-1, 1] (uint8 in [0, 255] is rescaled), C = 1 or 3,
    any size (resized to 299×299 inside the jitted network). Runs in batches
    of ``batch_size``, the last one zero-padded, so one shape compiles per
    image size.
    """
    if batch_size <= 0:
        raise DataError(f"batch_size must be > 0, got {batch_size}")
    apply = jax.jit(module.apply)
    device_variables = jax.device_put(variables)

    def features(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise DataError(f"FID Inception takes images [N, H, W, C] with C = 1 or 3, got shape {x.shape}")
        x = x.astype(np.float32) / np.float32(127.5) - np.float32(1.0) if x.dtype == np.uint8 else \
            x.astype(np.float32, copy=False)
        if len(x) == 0:
            return np.zeros((0, FEATURE_DIM)), np.zeros((0, NUM_CLASSES))
        feats, logits = map_batches(lambda batch: apply(device_variables, batch), x, batch_size)
        return feats.astype(np.float64), logits.astype(np.float64)

    return features


# ---------------------------------------------------------------------------
# Command line.


def main(argv: list[str]) -> int:
    """``--convert=PATH.pth [--out=PATH.npz]``, or (no ``--convert``) fill the cache, downloading."""
    from absl import app, flags

    from ganjax import cli

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS

    def body():
        if f.convert:
            out = f.out or os.path.splitext(f.convert)[0] + ".npz"
            pth_sha, npz_sha = convert(f.convert, out)
            print(f"converted {f.convert} (sha256 {pth_sha}) to {out} (sha256 {npz_sha})")
        else:
            if f.out:
                raise DataError("--out needs --convert=PATH.pth")
            _, _, sha = load_inception(cache_dir=f.cache_dir or None)
            print(f"FID Inception weights ready: {storage_lib.join(f.cache_dir or default_cache_dir(), NPZ_NAME)} "
                  f"(sha256 {sha})")

    return cli.run_cli(body)


if __name__ == "__main__":
    from absl import flags

    from ganjax import cli

    flags.DEFINE_string("convert", "", f"A pytorch-fid .pth to convert (e.g. {PTH_NAME}).")
    flags.DEFINE_string("out", "", "The .npz to write (default: --convert with .npz).")
    flags.DEFINE_string("cache_dir", "", "Cache folder ('' = $GANJAX_CACHE or ~/.cache/ganjax); "
                                         "used without --convert.")
    cli.run(main)
    sys.exit(0)
