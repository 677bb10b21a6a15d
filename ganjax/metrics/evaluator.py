"""Scoring generators during training and post hoc, with the protocol recorded.

An :class:`Evaluator` is built once per run from ``config.eval`` and the
dataset. ``evaluator(gan, state, step)`` draws ``num_samples`` examples from
the raw and the EMA generator (fixed noise, the same at every evaluation) and
returns one row per generator::

    {"generator": "raw" | "ema", "fid": ..., "kid": ..., ...,
     "num_samples": 10000, "split": "train", "features": "classifier_fashion_mnist_v1",
     "weights_sha256": "...", "resize": "none"}

Which metrics apply depends on the data (``config.eval.metrics = 'auto'``
picks all that apply):

* images — ``fid``, ``kid``, ``is``, ``class_coverage``, ``precision_recall``,
  ``density_coverage`` on the features of ``config.eval.features``
  (``classifier``: the ganjax domain classifier, for 28×28 grayscale data;
  ``inception``: the FID Inception-v3 port). Real-data features are computed
  once and cached per (dataset, split, extractor, weights, num_samples).
* 2-D mixtures — ``mode_coverage``; 1-D Gaussian — ``gaussian_1d`` (mean,
  std, KS distance over all generated values).

Class-conditional runs (``model.num_classes = C > 0``) generate balanced
classes (sample ``i`` of class ``⌊i·C/N⌋``) and add, for images,
``intra_fid`` (the mean over classes of the FID between the generated and
the real examples of that class; the real ones are the class's members of the
same seeded real subset) and ``class_agreement`` (the fraction of generated
samples that the domain classifier assigns to their requested class; needs
``eval.features = 'classifier'``, MNIST and Fashion-MNIST). Their rows also
record ``labels``, how the generated classes were chosen.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import logging
from typing import TYPE_CHECKING, Any, Callable, Mapping

import jax
import numpy as np

from ganjax import storage
from ganjax.errors import ConfigError, DataError, unknown_name
from ganjax.metrics import frechet, inception_score, kid, manifold, toy
from ganjax.metrics.batching import map_batches
from ganjax.registry import Registry, RegistrationError, accepts, describe, same_definition

if TYPE_CHECKING:
    from ganjax.data.preprocess import ImageOptions

log = logging.getLogger("ganjax")

EVAL_SEED_OFFSET = 20_011  # evaluation noise: key(seed + this), fixed for the run


@dataclasses.dataclass(frozen=True)
class EvalData:
    """What the metric functions see.

    Attributes:
      samples: generated examples ``[N, *example_shape]`` (float32).
      fake_features, fake_probs: extractor outputs for ``samples`` (images only).
      real_features: ``[N_real, D]`` cached real features (images only).
      real_stats: ``(mu [D], sigma [D, D])`` of ``real_features``.
      toy: the toy distribution (toy data only).
      labels: int ``[N]`` the classes the samples were generated for (conditional runs only).
      real_labels: int ``[N_real]`` the classes of the real examples (conditional image runs only).
    """

    samples: np.ndarray
    fake_features: np.ndarray | None = None
    fake_probs: np.ndarray | None = None
    real_features: np.ndarray | None = None
    real_stats: tuple[np.ndarray, np.ndarray] | None = None
    toy: Any = None
    labels: np.ndarray | None = None
    real_labels: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Metric:
    """A named score: the data ``kind`` it applies to and ``fn(EvalData) -> {name: value}``; a
    ``conditional`` metric applies to class-conditional runs only (it reads the labels)."""

    kind: str
    fn: Callable[[EvalData], dict[str, float]]
    conditional: bool = False


def _fid(d: EvalData) -> dict[str, float]:
    return {"fid": frechet.frechet_distance(*d.real_stats, *frechet.feature_statistics(d.fake_features))}


def intra_fid(d: EvalData) -> dict[str, float]:
    """The mean over the requested classes of the FID between that class's generated and real features."""
    classes = np.unique(d.labels)
    fids = [frechet.frechet_distance_of_features(d.real_features[d.real_labels == c], d.fake_features[d.labels == c])
            for c in classes]
    return {"intra_fid": float(np.mean(fids))}


def class_agreement(d: EvalData) -> dict[str, float]:
    """The fraction of generated samples whose classifier class (argmax of its probabilities) is the requested one."""
    return {"class_agreement": float(np.mean(np.argmax(d.fake_probs, axis=1) == d.labels))}


def _is(d: EvalData) -> dict[str, float]:
    mean, std = inception_score.inception_score(d.fake_probs, splits=min(10, len(d.fake_probs)))
    return {"is": mean, "is_std": std}


DATA_KINDS = ("image", "mixture", "gaussian_1d")
METRIC_SIGNATURE = "fn(data: EvalData) -> dict[str, float] (score names to values)"


def _check_metric(name: str, metric: object) -> None:
    if not isinstance(metric, Metric):
        raise RegistrationError(f"metric {name!r}: expected a Metric(kind, fn), got {metric!r}")
    if metric.kind not in DATA_KINDS:
        raise RegistrationError(f"metric {name!r}: unknown data kind {metric.kind!r}; valid choices: "
                                f"{', '.join(DATA_KINDS)}")
    if not callable(metric.fn) or not accepts(metric.fn, 1):
        raise RegistrationError(f"metric {name!r}: {describe(metric.fn)} has the wrong signature; "
                                f"expected {METRIC_SIGNATURE}")


METRICS: Registry[Metric] = Registry("metric", _check_metric,
                                     lambda a, b: a.kind == b.kind and same_definition(a.fn, b.fn))


def register_metric(name: str, fn: Callable[[EvalData], dict[str, float]] | None = None, *, kind: str,
                    override: bool = False):
    """Registers ``fn`` as evaluation metric ``name`` for data of ``kind``; without ``fn``, a decorator.

    ``kind`` is ``'image'``, ``'mixture'`` or ``'gaussian_1d'`` (the data
    kind of the datasets it applies to; ``eval.metrics='auto'`` then includes
    it). ``fn(data: EvalData) -> {score name: value}`` sees the generated
    samples and, for images, the extractor's features (see :class:`EvalData`).
    Returns ``fn``.

    Raises:
      RegistrationError: a wrong signature or kind, or ``name`` taken (unless ``override``).
    """
    if fn is None:
        return lambda f: register_metric(name, f, kind=kind, override=override)
    METRICS.register(name, Metric(kind, fn), override=override)
    return fn


for _name, _metric in (
    ("fid", Metric("image", _fid)),
    ("kid", Metric("image", lambda d: kid.kernel_inception_distance(d.real_features, d.fake_features))),
    ("is", Metric("image", _is)),
    ("class_coverage", Metric("image", lambda d: inception_score.class_coverage(d.fake_probs))),
    ("precision_recall", Metric("image", lambda d: manifold.precision_recall(d.real_features, d.fake_features))),
    ("density_coverage", Metric("image", lambda d: manifold.density_coverage(d.real_features, d.fake_features))),
    ("mode_coverage", Metric("mixture", lambda d: toy.mode_coverage(
        d.samples.reshape(len(d.samples), -1), d.toy.modes, d.toy.mode_std))),
    ("gaussian_1d", Metric("gaussian_1d", lambda d: toy.gaussian_1d_metrics(d.samples, d.toy.mean, d.toy.std))),
    ("intra_fid", Metric("image", intra_fid, conditional=True)),
    ("class_agreement", Metric("image", class_agreement, conditional=True)),
):
    METRICS.register(_name, _metric)
METRICS.mark_builtin()
PROTOCOL_KEYS = ("num_samples", "split", "features", "weights_sha256", "resize")  # (+ "labels": conditional runs)
CLASSIFIER_METRICS = ("class_agreement",)  # read the domain classifier's classes: eval.features='classifier' only
DEFAULT_NUM_SAMPLES = {"image": 10_000, "mixture": 2_500, "gaussian_1d": 100}


def data_kind(dataset) -> str:
    """``'image'``, ``'mixture'`` or ``'gaussian_1d'`` for a :class:`ganjax.data.Dataset`."""
    if dataset.toy is None:
        return "image"
    from ganjax.data.toy import TOY_DATASETS

    if dataset.name in TOY_DATASETS:
        return TOY_DATASETS[dataset.name].kind
    return "mixture" if dataset.toy.modes is not None else "gaussian_1d"


def resolve_metrics(spec: str, kind: str, conditional: bool = False) -> list[str]:
    """``'auto'`` or a comma list → metric names valid for ``kind`` (else ``ConfigError``); the conditional
    metrics only for a ``conditional`` run."""
    valid = [n for n, m in METRICS.items() if m.kind == kind and (conditional or not m.conditional)]
    if spec.strip() == "auto":
        return valid
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"eval.metrics is empty; use 'auto' or some of: {', '.join(valid)}")
    for n in names:
        if n not in METRICS:
            raise unknown_name("metric", n, METRICS)
        if METRICS[n].conditional and not conditional and METRICS[n].kind == kind:
            raise ConfigError(f"metric {n!r} needs a class-conditional run (model.num_classes > 0)")
        if n not in valid:
            raise ConfigError(f"metric {n!r} does not apply to {kind} data; valid for it: {', '.join(valid)}")
    return names


# ---------------------------------------------------------------------------
# Feature extractors.


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """Images → features, with what identifies the protocol.

    Attributes:
      name: recorded as ``features`` with every score.
      weights_sha256: sha256 of the weights file.
      resize: how images are resized before the network.
      fn: float32 images ``[N, H, W, C]`` in [-1, 1] → ``(features [N, D], probs [N, K])``.
    """

    name: str
    weights_sha256: str
    resize: str
    fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _classifier_extractor(dataset_name: str, options: Mapping[str, Any], example_shape) -> FeatureExtractor:
    from ganjax.metrics import classifier

    if dataset_name not in classifier.DATASETS:
        raise ConfigError(f"eval.features='classifier' has domain classifiers for {', '.join(classifier.DATASETS)}, "
                          f"not {dataset_name!r}; use eval.features='inception'")
    module, variables, info = classifier.load_classifier(dataset_name, data_dir=options.get("data_dir") or None,
                                                         cache_dir=options.get("cache_dir") or None)
    fn = classifier.make_feature_fn(module, variables, batch_size=options.get("batch_size", 500))
    resize = "none" if tuple(example_shape[:2]) == (28, 28) else "bilinear to 28x28"
    return FeatureExtractor(info["name"], info["sha256"], resize, fn)


def _inception_extractor(dataset_name: str, options: Mapping[str, Any], example_shape) -> FeatureExtractor:
    del dataset_name
    from ganjax.metrics import inception

    module, variables, sha = inception.load_inception(options.get("inception_weights") or None,
                                                      cache_dir=options.get("cache_dir") or None)
    fn = inception.make_feature_fn(module, variables, batch_size=options.get("batch_size", 500))

    def features_and_probs(images):
        features, logits = fn(images)
        logits = np.asarray(logits, np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return features, probs / probs.sum(axis=1, keepdims=True)

    return FeatureExtractor("inception_v3_fid", sha, "bilinear to 299x299 (align_corners=False)",
                            features_and_probs)


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {
    "classifier": _classifier_extractor,
    "inception": _inception_extractor,
}


def cache_dir(options: Mapping[str, Any] | None = None) -> str:
    """``eval.cache_dir``, else ``$GANJAX_CACHE``, else ``~/.cache/ganjax`` (a folder or a ``gs://`` URL)."""
    from ganjax.metrics import weights_file

    return (options or {}).get("cache_dir") or weights_file.default_cache_dir()


def images_to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` → float32 in [-1, 1] (float input passes through)."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return np.asarray(images, np.float32)


def real_subset(num_examples: int, num_samples: int) -> np.ndarray:
    """The sorted indices of the seeded subset of real examples scored against (all if not more than needed)."""
    if num_examples <= num_samples:
        return np.arange(num_examples)
    return np.sort(np.random.default_rng(0).choice(num_examples, num_samples, replace=False))


def real_labels(dataset_name: str, split: str, num_samples: int, data_dir: str | None,
                image_options: ImageOptions | None = None) -> np.ndarray:
    """The labels ``[n]`` of the real examples behind :func:`real_features` (the same subset, same order)."""
    from ganjax.data.images import load_images

    _, labels = load_images(dataset_name, split=split, data_dir=data_dir, options=image_options)
    return labels[real_subset(len(labels), num_samples)]


def real_features(dataset_name: str, split: str, num_samples: int, extractor: FeatureExtractor,
                  data_dir: str | None, cache: str, image_options: ImageOptions | None = None) -> np.ndarray:
    """Features ``[n, D]`` of a seeded subset of ``num_samples`` real images, cached on disk.

    ``image_options`` (:class:`ganjax.data.preprocess.ImageOptions`, None = native) is the
    crop/resize the training data got; the real images get the same.
    """
    from ganjax.data import preprocess
    from ganjax.data.images import load_images, source_version

    image_options = image_options or preprocess.ImageOptions()
    key = (f"{dataset_name}{source_version(dataset_name)}{image_options.tag()}|{split}|{extractor.name}|"
           f"{extractor.weights_sha256}|{extractor.resize}|{num_samples}")
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = dataset_name.replace("/", "_").replace(":", "_")
    path = storage.join(cache, "real_stats", f"{safe}_{split}_{extractor.name}_{num_samples}_{digest}.npz")
    if storage.exists(path):
        try:
            with storage.open_binary(path) as raw, np.load(raw) as f:
                return f["features"]
        except Exception as e:  # noqa: BLE001 - any unreadable cache file is recomputed
            log.warning("recomputing damaged real-feature cache %s (%s)", path, type(e).__name__)
    images, _ = load_images(dataset_name, split=split, data_dir=data_dir, options=image_options)
    if len(images) > num_samples:
        images = images[real_subset(len(images), num_samples)]
    elif len(images) < num_samples:
        log.warning("%s split %r has %d images, fewer than eval.num_samples=%d: using all",
                    dataset_name, split, len(images), num_samples)
    features, _ = extractor.fn(images_to_unit(images))
    features = np.asarray(features, np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, features=features, key=np.array(key))
    storage.publish_bytes(path, buffer.getvalue())
    return features


# ---------------------------------------------------------------------------
# The evaluator.


def default_eval_config():
    """The ``eval`` block of every config (see docs/evaluation.md)."""
    import ml_collections

    e = ml_collections.ConfigDict()
    e.metrics = "auto"       # 'auto' or a comma list of METRICS names
    e.num_samples = 0        # 0 = default for the data kind (10,000 images, 2,500 mixture points, 100 1-D vectors)
    e.features = "classifier"  # image features: 'classifier' (28x28 grayscale) or 'inception'
    e.split = "train"        # real split the generated images are compared with
    e.batch_size = 500       # feature-extraction and generation batch
    e.inception_weights = ""  # local .npz/.pth; '' = the cache, downloading when online
    e.cache_dir = ""         # '' = $GANJAX_CACHE or ~/.cache/ganjax
    e.ema = True             # also score the EMA generator
    return e


def validate_eval_config(e, kind: str, conditional: bool = False) -> list[str]:
    """Checks ``config.eval`` (of a class-conditional run if ``conditional``); returns the metric names."""
    names = resolve_metrics(e.metrics, kind, conditional)
    if kind == "image" and e.features != "classifier":
        wrong = [n for n in names if n in CLASSIFIER_METRICS]
        if wrong and e.metrics.strip() != "auto":
            raise ConfigError(f"metric {wrong[0]!r} reads the domain classifier's classes: it needs "
                              f"eval.features='classifier' (MNIST, Fashion-MNIST), got {e.features!r}")
        names = [n for n in names if n not in CLASSIFIER_METRICS]
    if not isinstance(e.num_samples, int) or e.num_samples < 0:
        raise ConfigError(f"eval.num_samples must be an integer >= 0 (0 = default), got {e.num_samples!r}")
    if not isinstance(e.batch_size, int) or e.batch_size <= 0:
        raise ConfigError(f"eval.batch_size must be a positive integer, got {e.batch_size!r}")
    if kind == "image" and e.features not in EXTRACTORS:
        raise unknown_name("eval.features", e.features, EXTRACTORS)
    return names


class Evaluator:
    """Scores generators of one run; built once (extractor and real features loaded lazily once)."""

    def __init__(self, eval_config, dataset, dataset_name: str, data_dir: str | None, seed: int,
                 num_classes: int = 0):
        self.kind = data_kind(dataset)
        self.config = eval_config
        self.num_classes = num_classes
        self.names = validate_eval_config(eval_config, self.kind, num_classes > 0)
        self.num_samples = eval_config.num_samples or DEFAULT_NUM_SAMPLES[self.kind]
        if self.kind == "image" and "kid" in self.names and self.num_samples < 2:
            raise ConfigError(f"eval.num_samples must be >= 2 for KID, got {self.num_samples}")
        self.dataset = dataset
        self.dataset_name = dataset_name
        self.data_dir = data_dir
        self.seed = seed
        self._extractor: FeatureExtractor | None = None
        self._real: tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None = None
        self._real_labels: np.ndarray | None = None
        self._generators: dict[bool, tuple[Any, Callable]] = {}

    def prepare(self) -> None:
        """Loads the extractor and the real features now (errors surface before training)."""
        if self.kind != "image" or self._real is not None:
            return
        options = self.config.to_dict()
        options["data_dir"] = self.data_dir
        self._extractor = EXTRACTORS[self.config.features](self.dataset_name, options, self.dataset.example_shape)
        feats = real_features(self.dataset_name, self.config.split, self.num_samples, self._extractor,
                              self.data_dir, cache_dir(options), self.dataset.image_options)
        self._real = (feats, frechet.feature_statistics(feats))
        if self.num_classes:
            self._real_labels = real_labels(self.dataset_name, self.config.split, self.num_samples, self.data_dir,
                                            self.dataset.image_options)

    def for_seed(self, seed: int) -> "Evaluator":
        """This evaluator with another seed (its evaluation noise), sharing the loaded extractor,
        the real features and the compiled generators."""
        clone = copy.copy(self)
        clone.seed = seed
        return clone

    def protocol(self) -> dict[str, Any]:
        """What identifies how the scores were computed."""
        labels = {"labels": f"balanced over {self.num_classes} classes"} if self.num_classes else {}
        if self.kind != "image":
            return {"num_samples": self.num_samples, "split": "sampler", "features": "none",
                    "weights_sha256": "", "resize": "none", **labels}
        self.prepare()
        return {"num_samples": self.num_samples, "split": self.config.split, "features": self._extractor.name,
                "weights_sha256": self._extractor.weights_sha256, "resize": self._extractor.resize, **labels}

    def labels(self) -> np.ndarray | None:
        """The classes of the generated samples: balanced (``⌊i·C/N⌋``), None for an unconditional run."""
        from ganjax.train import balanced_labels

        return np.asarray(balanced_labels(self.num_samples, self.num_classes)) if self.num_classes else None

    def _samples(self, gan, state, ema: bool, labels: np.ndarray | None) -> np.ndarray:
        """``[num_samples, *example_shape]`` from the eval noise, generated for classes ``labels [num_samples]``
        (conditional runs; batched row for row with the noise, so sample ``i`` is of class ``labels[i]``)."""
        from ganjax.train import generate

        z = np.asarray(gan.sample_noise(jax.random.key(self.seed + EVAL_SEED_OFFSET), self.num_samples))
        bs = self.config.batch_size
        cached = self._generators.get(ema)
        if cached is None or cached[0] is not gan:  # compiled once per run, not at every evaluation
            cached = self._generators[ema] = (gan, jax.jit(lambda s, zz, yy: generate(gan, s, zz, ema=ema, labels=yy)))
        gen = cached[1]
        labels = None if labels is None else np.asarray(labels, np.int32)  # a None leaf is not batched
        return map_batches(lambda batch: gen(state, *batch), (z, labels), bs).astype(np.float32)

    def score(self, samples: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
        """All configured metrics of ``samples [N, *example_shape]`` (generated for classes ``labels [N]``)."""
        if not np.all(np.isfinite(samples)):
            raise DataError("generated samples contain NaN/Inf; cannot score them")
        if self.kind == "image":
            self.prepare()
            feats, probs = self._extractor.fn(np.clip(samples, -1.0, 1.0))
            real, stats = self._real
            data = EvalData(samples, np.asarray(feats, np.float64), np.asarray(probs, np.float64), real, stats,
                            labels=labels, real_labels=self._real_labels)
        else:
            data = EvalData(samples, toy=self.dataset.toy, labels=labels)
        row: dict[str, float] = {}
        for name in self.names:
            row.update(METRICS[name].fn(data))
        return row

    def __call__(self, gan, state) -> list[dict[str, Any]]:
        """One row per generator (``raw``, and ``ema`` if ``eval.ema``) with scores and protocol."""
        protocol = self.protocol()
        rows = []
        labels = self.labels()
        for which in (("raw", False), ("ema", True))[: 2 if self.config.ema else 1]:
            scores = self.score(self._samples(gan, state, which[1], labels), labels)
            rows.append({"generator": which[0], **scores, **protocol})
        return rows
