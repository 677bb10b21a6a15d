r"""Feature-extraction throughput and 10k-sample FID wall time at 28×28, side by side.

    python -m experiments.bench_features [--num=10000] [--inception_num=10000] [--batch=500]

Measures, in one process on this machine's CPUs (or accelerator):

* the domain classifier (``ganjax.metrics.classifier``): images/s on
  28×28×1 images, and the wall time of a 10k-sample FID: features of
  ``num`` generated images, their statistics and the Fréchet distance against
  cached real statistics, plus the one-off cost of the real statistics;
* the FID Inception-v3 port (``ganjax.metrics.inception``): the wall time of
  an ``inception_num``-sample FID on 28×28×1 images (resized inside the
  network to 299×299), after compiling on one batch, and the images/s of its
  feature extraction;
* pytorch-fid's ``InceptionV3`` on the same images and threads, when torch,
  torchvision and pytorch-fid are installed, and the ratio ganjax / pytorch-fid.

Weights are random (throughput does not depend on their values, and no
download is needed); images are uniform noise in [-1, 1]. Compilation is
excluded from throughput (one warm-up batch); it is included in the
domain classifier's FID wall time and printed separately for Inception.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import numpy as np


def _throughput(fn: Callable[[np.ndarray], object], images: np.ndarray, batch: int) -> float:
    """Images/s of ``fn`` on ``images`` after one warm-up batch."""
    fn(images[:batch])
    start = time.perf_counter()
    fn(images)
    return len(images) / (time.perf_counter() - start)


def _fid_wall(fn, images: np.ndarray, real_stats) -> tuple[float, float]:
    """``(seconds, fid)`` for features of ``images`` → statistics → Fréchet distance vs ``real_stats``."""
    from ganjax.metrics import frechet

    start = time.perf_counter()
    fid = frechet.frechet_distance(*real_stats, *frechet.feature_statistics(fn(images)[0]))
    return time.perf_counter() - start, fid


def bench_classifier(images: np.ndarray, batch: int) -> dict:
    import jax
    import jax.numpy as jnp

    from ganjax.metrics import classifier, frechet

    module = classifier.ClassifierCNN()
    variables = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    start = time.perf_counter()
    fn = classifier.make_feature_fn(module, variables, batch)
    real_stats = frechet.feature_statistics(fn(images[::-1])[0])
    real_seconds = time.perf_counter() - start
    fid_seconds, _ = _fid_wall(classifier.make_feature_fn(module, variables, batch), images, real_stats)
    return {"images_per_s": _throughput(fn, images, batch), "fid_seconds": fid_seconds,
            "real_stats_seconds": real_seconds}


def bench_inception(images: np.ndarray, batch: int) -> dict:
    """Compiles on one batch, then times an FID on ``images``; images/s from that same run."""
    import jax
    import jax.numpy as jnp

    from ganjax.metrics import frechet, inception

    module = inception.FIDInceptionV3()
    variables = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    fn = inception.make_feature_fn(module, variables, batch)
    start = time.perf_counter()
    fn(images[:batch])
    compile_seconds = time.perf_counter() - start
    rng = np.random.default_rng(1)
    real = rng.standard_normal((64, inception.FEATURE_DIM))  # statistics only shape the final linear algebra
    real_stats = (real.mean(0), np.cov(real, rowvar=False))
    start = time.perf_counter()
    features = fn(images)[0]
    feature_seconds = time.perf_counter() - start
    frechet.frechet_distance(*real_stats, *frechet.feature_statistics(features))
    fid_seconds = time.perf_counter() - start
    return {"images_per_s": len(images) / feature_seconds, "fid_seconds": fid_seconds,
            "compile_seconds": compile_seconds}


def bench_pytorch_fid(images: np.ndarray, batch: int) -> dict | None:
    """pytorch-fid's FID InceptionV3 (pool3) with random weights, or None when it cannot be imported."""
    try:
        from experiments.pytorch_fid_ref import random_fid_inception

        torch, _, wrapper = random_fid_inception()
    except ImportError as e:
        print(f"pytorch-fid comparison skipped ({e}); pip install torch torchvision pytorch-fid")
        return None
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2).repeat(3, axis=1))) * 0.5 + 0.5

    def fn(chunk):
        with torch.no_grad():
            for i in range(0, len(chunk), batch):
                wrapper(chunk[i:i + batch])

    return {"images_per_s": _throughput(fn, x, batch), "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=10_000, help="images for the domain-classifier FID")
    parser.add_argument("--inception_num", type=int, default=10_000,
                        help="images for the Inception FID (10000 takes about half an hour on 2 CPU cores)")
    parser.add_argument("--torch_num", type=int, default=200, help="images for the pytorch-fid throughput")
    parser.add_argument("--batch", type=int, default=500, help="domain-classifier batch")
    parser.add_argument("--inception_batch", type=int, default=100)
    args = parser.parse_args(argv)

    import jax

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (max(args.num, args.inception_num), 28, 28, 1)).astype(np.float32)
    print(f"28x28x1 images, batch {args.batch}, {jax.devices()[0].platform} backend, {os.cpu_count()} CPUs")
    c = bench_classifier(images[:args.num], args.batch)
    print(f"domain classifier:  {c['images_per_s']:9.0f} images/s; {args.num}-sample FID "
          f"{c['fid_seconds']:.1f}s with cached real statistics (+{c['real_stats_seconds']:.1f}s for the real "
          f"statistics, once)")
    inc = bench_inception(images[:args.inception_num], min(args.inception_batch, args.inception_num))
    print(f"Inception (ganjax): {inc['images_per_s']:9.1f} images/s; {args.inception_num}-sample FID "
          f"{inc['fid_seconds']:.1f}s (+{inc['compile_seconds']:.1f}s to compile, once)")
    ref = bench_pytorch_fid(images[:args.torch_num], min(args.batch, 50))
    if ref:
        print(f"Inception (pytorch-fid, {ref['threads']} threads): {ref['images_per_s']:9.1f} images/s")
        print(f"ratio ganjax/pytorch-fid images/s: {inc['images_per_s'] / ref['images_per_s']:.2f}x")
    print(f"ratio domain classifier/Inception images/s: {c['images_per_s'] / inc['images_per_s']:.0f}x")


if __name__ == "__main__":
    main()
