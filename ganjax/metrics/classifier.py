r"""A domain classifier for MNIST / Fashion-MNIST: features for "FID (domain classifier)".

Inception-v3 was trained on ImageNet photographs; on 28×28 grayscale digits
and clothes its features are a poor and expensive yardstick (and its weights
may be unavailable offline). ganjax trains a small CNN on the dataset's own
training split instead and uses

* its 128-d penultimate activations as the features of FID, KID,
  precision/recall and density/coverage ("FID (domain classifier)");
* its softmax as ``p(y|x)`` of the Inception Score ("classifier score").

Network (:class:`ClassifierCNN`), on float32 ``[N, 28, 28, 1]`` in [-1, 1]::

    conv32 3×3 → ReLU → max-pool 2 → conv64 3×3 → ReLU → max-pool 2
    → Dense 128 → ReLU   (the features)
    → Dropout 0.3 → Dense K   (logits; K = 10)

One conv per stage rather than two: on a CPU the backward pass of the wider
network costs 3–4× more per step for about half a point of accuracy.

Training (:func:`train_classifier`): Adam (β = 0.9, 0.999) with a cosine decay
of the learning rate from 1e-3 to 0 over ``num_steps``, batch 128, softmax
cross-entropy, no augmentation (random flips would be wrong for digits and
are unnecessary for clothes; the same recipe serves both datasets),
deterministic given ``seed`` (initialisation, batch order and dropout all
derive from it). The default 3,000 steps (6.4 epochs) reach 91.68% test
accuracy on Fashion-MNIST (seed 0: the shipped weights) in about 4 minutes on
a quiet 2-core CPU. Feature extraction then runs at about 13,000 images/s there.

Shipped weights and the cache. The default recipe's Fashion-MNIST weights
ship with ganjax (``ganjax/metrics/weights/classifier_fashion_mnist_v1.npz``,
1.7 MB, pinned by the sha256 of its arrays), so evaluation on Fashion-MNIST
needs no training. Other classifiers (MNIST, or other settings) are trained
and live in ``<cache_dir>/classifier_<dataset>_v1.npz`` (``cache_dir``:
``$GANJAX_CACHE`` or ``~/.cache/ganjax``); a file there takes precedence over
the shipped one. Files are written atomically and deterministically (equal
weights give byte-identical files). Next to the weights a file holds an
``info`` dict: ``name``, ``dataset``, ``test_accuracy``, ``num_steps``,
``seed``, ``batch_size``, ``learning_rate``, ``train_seconds``; loading adds
the file's ``sha256`` and its arrays' ``arrays_sha256``. ``info['name']``
identifies the extractor in every score: ``classifier_<dataset>_v1`` for the
default recipe, with a suffix (e.g. ``classifier_fashion_mnist_v1_150steps_seed0``)
when trained with other settings, so a quickly trained classifier cannot pass
for the standard one.

Ahead of evaluation, ``python -m ganjax.metrics.classifier --dataset=mnist``
trains and caches it (evaluation otherwise trains it on first use); with
``--dataset=fashion_mnist`` it retrains the shipped weights into the cache.

Inputs of other shapes (:func:`make_feature_fn`): 3-channel images are
converted to gray by averaging their channels; images not 28×28 are resized
bilinearly (``jax.image.resize``, no antialiasing) to 28×28. Any other channel
count is refused.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import traverse_util

from ganjax import storage
from ganjax.errors import ConfigError, DataError, unknown_name
from ganjax.metrics import weights_file
from ganjax.metrics.batching import map_batches
from ganjax.progress import EtaClock

log = logging.getLogger("ganjax")

DATASETS = ("mnist", "fashion_mnist")
VERSION = 1
IMAGE_SIZE = 28
FEATURE_DIM = 128
DEFAULT_STEPS = 3000
DEFAULT_BATCH_SIZE = 128
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_SEED = 0


# ---------------------------------------------------------------------------
# The network.


def _max_pool_2x2(h: jax.Array) -> jax.Array:
    """2×2 max-pool, stride 2, of ``[N, H, W, C]`` with even H, W.

    Same values as ``nn.max_pool(h, (2, 2), (2, 2))``; written as a reshape
    because XLA's CPU gradient of a reshape-max is faster than its
    ``select_and_scatter``.
    """
    n, height, width, c = h.shape
    return h.reshape(n, height // 2, 2, width // 2, 2, c).max(axis=(2, 4))


class ClassifierCNN(nn.Module):
    """Images float32 ``[N, 28, 28, 1]`` in [-1, 1] → ``(logits [N, K], features [N, 128])``.

    Use :func:`prepare_images` (done by :func:`make_feature_fn`) for uint8,
    colour or differently sized images.
    """

    num_classes: int = 10
    feature_dim: int = FEATURE_DIM
    dropout: float = 0.3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        h = x
        for width in (32, 64):
            h = nn.relu(nn.Conv(width, (3, 3), padding="SAME")(h))
            h = _max_pool_2x2(h)
        features = nn.relu(nn.Dense(self.feature_dim)(h.reshape((h.shape[0], -1))))
        h = nn.Dropout(self.dropout, deterministic=not train)(features)
        return nn.Dense(self.num_classes)(h), features


def prepare_images(images: jax.Array) -> jax.Array:
    """uint8 ``[N, H, W, C]`` (0..255) or float ``[N, H, W, C]`` in [-1, 1] → float32 ``[N, 28, 28, 1]`` in [-1, 1].

    ``C`` must be 1, or 3 (averaged to gray); ``H×W`` other than 28×28 is
    resized bilinearly. Traceable (used inside ``jit``).
    """
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"the domain classifier takes images [N, H, W, C] with C = 1 (grayscale) or 3 "
                        f"(averaged to gray), got shape {tuple(images.shape)}")
    if images.dtype == jnp.uint8:
        x = images.astype(jnp.float32) / 127.5 - 1.0
    else:
        x = images.astype(jnp.float32)
    if x.shape[-1] == 3:
        x = x.mean(axis=-1, keepdims=True)
    if x.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        x = jax.image.resize(x, (x.shape[0], IMAGE_SIZE, IMAGE_SIZE, 1), "bilinear", antialias=False)
    return x


# ---------------------------------------------------------------------------
# Training.


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise unknown_name("classifier dataset", dataset, DATASETS)


def _load_split(dataset: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``[N, 28, 28, 1]`` in [-1, 1] and int32 labels ``[N]``."""
    from ganjax.data.images import load_images

    images, labels = load_images(dataset, split=split, data_dir=data_dir)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise DataError(f"dataset {dataset!r} has images {images.shape[1:]}, the domain classifier "
                        f"expects [{IMAGE_SIZE}, {IMAGE_SIZE}, 1]")
    return images.astype(np.float32) / 127.5 - 1.0, labels.astype(np.int32)


def _predict_fn(module: ClassifierCNN) -> Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]:
    """Jitted ``(variables, images [B, H, W, C]) → (features f32 [B, 128], probs f32 [B, K])``."""

    @jax.jit
    def predict(variables, images):
        logits, features = module.apply(variables, prepare_images(images), train=False)
        return features, jax.nn.softmax(logits, axis=-1)

    return predict


def _run_batched(predict, variables, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``predict`` on fixed-size batches (the last one zero-padded); float64 outputs."""
    if images.shape[0] == 0:
        raise DataError("the domain classifier got no images (shape [0, ...])")
    feats, probs = map_batches(lambda batch: predict(variables, batch), images, batch_size)
    return feats.astype(np.float64), probs.astype(np.float64)


def evaluate_accuracy(module: ClassifierCNN, variables: Any, images: np.ndarray, labels: np.ndarray,
                      batch_size: int = 1000) -> float:
    """Top-1 accuracy on ``images [N, H, W, C]`` (uint8, or float in [-1, 1]) with ``labels [N]``."""
    _, probs = _run_batched(_predict_fn(module), variables, images, batch_size)
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))


def train_classifier(dataset: str, data_dir: str | None = None, num_steps: int = DEFAULT_STEPS,
                     batch_size: int = DEFAULT_BATCH_SIZE, seed: int = DEFAULT_SEED,
                     learning_rate: float = DEFAULT_LEARNING_RATE) -> tuple[dict, float]:
    """Trains :class:`ClassifierCNN` on ``dataset``'s train split (see the module docstring).

    Args:
      dataset: ``"mnist"`` or ``"fashion_mnist"``.
      data_dir: TFDS data dir (``None``: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      num_steps: Adam steps of ``batch_size`` examples (epochs are reshuffled).
      seed: initialisation, batch order and dropout.

    Returns:
      ``(variables, test_accuracy)``: the flax variables as numpy arrays and
      the top-1 accuracy on the full test split.

    Raises:
      ConfigError: unknown dataset or non-positive settings. DataError: data missing.
    """
    _check_dataset(dataset)
    if num_steps <= 0 or batch_size <= 0 or not learning_rate > 0:
        raise ConfigError(f"num_steps, batch_size and learning_rate must be > 0, got {num_steps}, "
                          f"{batch_size} and {learning_rate}")
    x, y = _load_split(dataset, "train", data_dir)
    if batch_size > len(x):
        raise ConfigError(f"batch_size {batch_size} exceeds the {len(x)} training examples of {dataset!r}")
    module = ClassifierCNN(num_classes=int(y.max()) + 1)
    log.info("training the %s domain classifier: %d steps of batch %d (%d training images)", dataset, num_steps,
             batch_size, len(x))
    key = jax.random.key(seed)
    init_key, dropout_key = jax.random.split(key)
    variables = module.init(init_key, jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), jnp.float32))
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))
    opt_state = tx.init(variables)

    @jax.jit
    def train_step(variables, opt_state, xb, yb, step):
        def loss_fn(v):
            logits, _ = module.apply(v, xb, train=True, rngs={"dropout": jax.random.fold_in(dropout_key, step)})
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(variables)
        updates, opt_state = tx.update(grads, opt_state, variables)
        return optax.apply_updates(variables, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    order, pos = rng.permutation(len(x)), 0
    start, clock = time.time(), EtaClock(num_steps)
    for i in range(num_steps):
        if pos + batch_size > len(x):
            order, pos = rng.permutation(len(x)), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        variables, opt_state, loss = train_step(variables, opt_state, x[idx], y[idx], i)
        if i == 0:  # compiled: the ETA counts from here
            jax.block_until_ready(loss)
            clock.start(1, time.time())
        if (i + 1) % 500 == 0 or i + 1 == num_steps:
            log.info("domain classifier %s: step %d/%d, loss %.4f, %.0fs, ETA %s", dataset, i + 1, num_steps,
                     float(loss), time.time() - start, clock.eta(i + 1, time.time()))
    variables = jax.tree_util.tree_map(np.asarray, jax.device_get(variables))
    x_test, y_test = _load_split(dataset, "test", data_dir)
    return variables, evaluate_accuracy(module, variables, x_test, y_test)


# ---------------------------------------------------------------------------
# The cache file.


def cache_path(dataset: str, cache_dir: str | None = None) -> str:
    """``<cache_dir>/classifier_<dataset>_v1.npz``."""
    return storage.join(cache_dir or weights_file.default_cache_dir(), f"classifier_{dataset}_v{VERSION}.npz")


# The default recipe's weights ship with ganjax (``ganjax/metrics/weights/``), so a first evaluation
# needs no training and CI checks their accuracy. Each is pinned by the sha256 of its arrays
# (weights_file.arrays_sha256); `python -m ganjax.metrics.classifier --dataset=D` retrains them
# bitwise on the same jax version and CPU instruction set (tests/test_classifier.py, slow).
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
SHIPPED_ARRAYS_SHA256: dict[str, str] = {
    "fashion_mnist": "6a02352c8551444d7dc6b4fa8ab49996e20fe8237fb722528762480362715fc0",
}


def shipped_path(dataset: str) -> str | None:
    """The packaged default-recipe weights of ``dataset`` (None when ganjax ships none for it)."""
    return os.path.join(SHIPPED_DIR, f"classifier_{dataset}_v{VERSION}.npz") if dataset in SHIPPED_ARRAYS_SHA256 \
        else None


def read_shipped(dataset: str) -> tuple[ClassifierCNN, dict, dict]:
    """The packaged weights of ``dataset``, checked against their pinned array digest.

    Raises:
      DataError: the file is missing or its arrays are not the pinned ones.
    """
    path = shipped_path(dataset)
    if path is None or not os.path.exists(path):
        raise DataError(f"ganjax ships no domain classifier for {dataset!r} at {path}; reinstall ganjax, or "
                        f"train one with `{train_command(dataset)}`")
    module, variables, info = read_classifier(path, dataset)
    if info["arrays_sha256"] != SHIPPED_ARRAYS_SHA256[dataset]:
        raise DataError(f"the shipped domain classifier {path} has arrays sha256 {info['arrays_sha256']}, not the "
                        f"pinned {SHIPPED_ARRAYS_SHA256[dataset]}; reinstall ganjax")
    return module, variables, info


def train_command(dataset: str) -> str:
    """The shell command that trains and caches the classifier for ``dataset``."""
    return f"python -m ganjax.metrics.classifier --dataset={dataset}"


def classifier_name(dataset: str, num_steps: int = DEFAULT_STEPS, seed: int = DEFAULT_SEED,
                    batch_size: int = DEFAULT_BATCH_SIZE, learning_rate: float = DEFAULT_LEARNING_RATE) -> str:
    """``classifier_<dataset>_v1``, suffixed with the settings that differ from the default recipe."""
    name = f"classifier_{dataset}_v{VERSION}"
    if (num_steps, batch_size, learning_rate) != (DEFAULT_STEPS, DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE) \
            or seed != DEFAULT_SEED:
        name += f"_{num_steps}steps_seed{seed}"
        if batch_size != DEFAULT_BATCH_SIZE:
            name += f"_batch{batch_size}"
        if learning_rate != DEFAULT_LEARNING_RATE:
            name += f"_lr{learning_rate:g}"
    return name


def save_classifier(path: str, variables: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    """Writes ``variables`` and ``info`` as one deterministic ``.npz`` (:func:`weights_file.save`).

    Raises:
      WriteError: the cache folder cannot be written.
    """
    weights_file.save(path, variables, info, "the domain classifier cache")


def read_classifier(path: str, dataset: str | None = None) -> tuple[ClassifierCNN, dict, dict]:
    """Reads a cache file → ``(module, variables, info)``, ``info['sha256']`` being the file's.

    Raises:
      DataError: the file is unreadable, damaged, or holds another dataset's
        classifier; the message names the file and how to recreate it.
    """
    dataset = dataset or os.path.basename(path).removeprefix("classifier_").rsplit("_v", 1)[0]
    fix = f"delete it, or re-create it with `{train_command(dataset)}`"
    try:
        flat, info = weights_file.load(path)
        if not {"name", "dataset", "test_accuracy"} <= set(info):
            raise ValueError("no info record")
        variables = traverse_util.unflatten_dict(flat)
        module = ClassifierCNN(num_classes=int(variables["params"]["Dense_1"]["bias"].shape[0]))
        expected = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1)))
        expected = {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(dict(expected)).items()}
        if {k: tuple(v.shape) for k, v in flat.items()} != expected:
            raise ValueError("its arrays do not match the network's variables")
    except Exception as e:  # noqa: BLE001 - any unreadable or inconsistent file is one line naming it
        detail = str(e).splitlines()[0][:120] if str(e) else "damaged"
        raise DataError(f"the cached domain classifier {path} is damaged ({type(e).__name__}: {detail}); "
                        f"{fix}") from None
    if info["dataset"] != dataset:
        raise DataError(f"the cached domain classifier {path} was trained on {info['dataset']!r}, not "
                        f"{dataset!r}; {fix}")
    info["sha256"] = weights_file.sha256_file(path)
    info["arrays_sha256"] = weights_file.arrays_sha256(flat)
    return module, variables, info


def train_and_cache(dataset: str, data_dir: str | None = None, cache_dir: str | None = None,
                    num_steps: int = DEFAULT_STEPS, seed: int = DEFAULT_SEED,
                    batch_size: int = DEFAULT_BATCH_SIZE, learning_rate: float = DEFAULT_LEARNING_RATE
                    ) -> tuple[ClassifierCNN, dict, dict]:
    """Trains the classifier and (re)writes its cache file; returns what :func:`read_classifier` reads back."""
    _check_dataset(dataset)
    path = cache_path(dataset, cache_dir)
    start = time.time()
    variables, accuracy = train_classifier(dataset, data_dir, num_steps=num_steps, batch_size=batch_size,
                                           seed=seed, learning_rate=learning_rate)
    info = {"name": classifier_name(dataset, num_steps, seed, batch_size, learning_rate), "dataset": dataset,
            "version": VERSION, "test_accuracy": accuracy, "num_steps": num_steps, "seed": seed,
            "batch_size": batch_size, "learning_rate": learning_rate,
            "train_seconds": round(time.time() - start, 1)}
    save_classifier(path, variables, info)
    log.info("%s: test accuracy %.4f, cached at %s", info["name"], accuracy, path)
    return read_classifier(path, dataset)


def one_time_notice(dataset: str, path: str, num_steps: int) -> str:
    """The line that announces the classifier training a first evaluation on ``dataset`` needs."""
    return (f"one-time setup: training the {dataset} domain classifier that scores samples ({num_steps} steps; "
            f"progress and ETA below); it is cached at {path} and every later evaluation reuses it")


def load_classifier(dataset: str, data_dir: str | None = None, cache_dir: str | None = None,
                    train_if_missing: bool = True, num_steps: int = DEFAULT_STEPS, seed: int = DEFAULT_SEED
                    ) -> tuple[ClassifierCNN, dict, dict]:
    """The domain classifier for ``dataset``: the cached one, else the shipped one, else trained and cached.

    A file in the cache is used as it is (its ``info`` says how it was
    trained). Without one, the default recipe (``num_steps``, ``seed`` at
    their defaults) of a dataset ganjax ships weights for
    (:data:`SHIPPED_ARRAYS_SHA256`) is read from the package; any other is
    trained here and cached.

    Returns:
      ``(module, variables, info)``; ``info`` has ``name`` (e.g.
      ``"classifier_fashion_mnist_v1"``), ``dataset``, ``test_accuracy``,
      ``num_steps``, ``seed``, ``sha256`` (of the file) and ``arrays_sha256`` (of its arrays).

    Raises:
      ConfigError: unknown dataset. DataError: the cache file is damaged, or
        missing with ``train_if_missing=False`` (naming the command that creates it).
    """
    _check_dataset(dataset)
    path = cache_path(dataset, cache_dir)
    if storage.exists(path):
        return read_classifier(path, dataset)
    if shipped_path(dataset) is not None and (num_steps, seed) == (DEFAULT_STEPS, DEFAULT_SEED):
        return read_shipped(dataset)
    if not train_if_missing:
        raise DataError(f"no domain classifier for {dataset!r} at {path}; create it with `{train_command(dataset)}`"
                        + (f" --cache_dir={cache_dir}" if cache_dir else ""))
    log.info("%s", one_time_notice(dataset, path, num_steps))
    return train_and_cache(dataset, data_dir, cache_dir, num_steps=num_steps, seed=seed)


# ---------------------------------------------------------------------------
# Features.


def make_feature_fn(module: ClassifierCNN, variables: Mapping[str, Any], batch_size: int = 500
                    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A function: images → ``(features float64 [N, 128], probs float64 [N, K])``.

    The images are uint8 ``[N, 28, 28, 1]`` (0..255) or float ``[N, H, W, C]``
    in [-1, 1] with C = 1 or 3 (see :func:`prepare_images`). They run through
    one jitted function in batches of ``batch_size``, the last one zero-padded,
    so one shape compiles per image size and dtype, whatever N. Rows do not
    interact (no batch statistics), so padding does not change results.
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0, got {batch_size}")
    predict = _predict_fn(module)
    variables = jax.device_put(variables)

    def features_and_probs(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            images = images.astype(np.float32, copy=False)
        return _run_batched(predict, variables, images, batch_size)

    return features_and_probs


# ---------------------------------------------------------------------------
# Command line.


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("dataset", "fashion_mnist", f"One of {', '.join(DATASETS)}.")
    flags.DEFINE_string("data_dir", None, "TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).")
    flags.DEFINE_integer("num_steps", DEFAULT_STEPS, "Adam steps of batch 128 (non-default values change the "
                                                     "classifier's recorded name).")
    flags.DEFINE_integer("seed", DEFAULT_SEED, "Seed of initialisation, batch order and dropout.")
    flags.DEFINE_string("cache_dir", None, "Cache folder (default: $GANJAX_CACHE or ~/.cache/ganjax).")


def main(argv: list[str]) -> int:
    """Trains the classifier, (re)writes its cache and prints one line."""
    from absl import app, flags

    from ganjax import cli

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS

    def body():
        _check_dataset(f.dataset)
        _, _, info = train_and_cache(f.dataset, f.data_dir or None, f.cache_dir or None,
                                     num_steps=f.num_steps, seed=f.seed)
        print(f"{info['name']}: test accuracy {info['test_accuracy']:.4f} after {info['num_steps']} steps "
              f"({info['train_seconds']:.0f}s); cached at {cache_path(f.dataset, f.cache_dir or None)} "
              f"(sha256 {info['sha256'][:12]})")

    return cli.run_cli(body)


if __name__ == "__main__":
    from ganjax import cli

    _define_flags()
    cli.run(main)
