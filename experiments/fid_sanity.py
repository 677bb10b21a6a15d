r"""Sanity check of "FID (domain classifier)" on Fashion-MNIST: does the number order sets as it should?

    python -m experiments.fid_sanity [--num=10000] [--seed=0] [--data_dir=DIR] [--cache_dir=DIR] [--json=OUT]

Reference: ``num`` images drawn (seeded) from the train split. Each candidate
set is scored against it with the cached domain classifier's 128-d features
(trained on first use, about 4 minutes on a CPU):

==========================  ===============================================  ==========
set                         what it is                                        expected
==========================  ===============================================  ==========
``train (disjoint)``        ``num`` other train images                        ≈ 0 (noise floor)
``test``                    the test split (``num`` images at most)           small
``train, classes 0-4``      ``num`` other train images of half the classes    much larger
``noise``                   uniform noise in [-1, 1]                          far larger
==========================  ===============================================  ==========

Prints one line per set and the ratios to the test-split FID. The table in
docs/evaluation.md comes from this script.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import numpy as np

FeatureFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
SETS = ("train (disjoint)", "test", "train, classes 0-4", "noise")


def candidate_sets(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, num: int,
                   seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The reference set and the candidate sets (see the module docstring).

    Args:
      train, test: uint8 images ``[N, 28, 28, 1]``.
      train_labels: int labels ``[N_train]``.
      num: images per set; the train split must hold ``2 * num`` images and
        ``num`` of classes 0-4 outside the reference.

    Returns:
      ``(reference [num, ...], {set name: images})``, uint8 except ``noise``
      (float32 in [-1, 1]).
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    ref_idx, rest = order[:num], order[num:]
    half = rest[train_labels[rest] < 5]
    if len(rest) < num or len(half) < num:
        raise ValueError(f"num={num} is too large for a train split of {len(train)} images")
    sets = {
        "train (disjoint)": train[rest[:num]],
        "test": test[rng.permutation(len(test))[:num]],
        "train, classes 0-4": train[half[:num]],
        "noise": rng.uniform(-1.0, 1.0, size=(num, *train.shape[1:])).astype(np.float32),
    }
    return train[ref_idx], sets


def fid_table(features: FeatureFn, reference: np.ndarray, sets: dict[str, np.ndarray]) -> dict[str, float]:
    """FID (on ``features``) of each set against ``reference`` → ``{set name: fid}``."""
    from ganjax.metrics import frechet

    ref_stats = frechet.feature_statistics(features(reference)[0])
    return {name: frechet.frechet_distance(*ref_stats, *frechet.feature_statistics(features(images)[0]))
            for name, images in sets.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=10_000, help="images per set (at most 10000: the test split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None, help="TFDS data dir")
    parser.add_argument("--cache_dir", default=None, help="classifier cache (default $GANJAX_CACHE or ~/.cache/ganjax)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    from ganjax.data.images import load_images
    from ganjax.metrics import classifier

    module, variables, info = classifier.load_classifier("fashion_mnist", args.data_dir, args.cache_dir)
    features = classifier.make_feature_fn(module, variables)
    train, labels = load_images("fashion_mnist", "train", args.data_dir)
    test, _ = load_images("fashion_mnist", "test", args.data_dir)
    reference, sets = candidate_sets(train, labels, test, args.num, args.seed)
    start = time.time()
    fids = fid_table(features, reference, sets)
    print(f"FID (domain classifier) on Fashion-MNIST: {info['name']} (test accuracy "
          f"{info['test_accuracy']:.4f}, sha256 {info['sha256'][:12]}), {args.num} images per set, "
          f"reference = {args.num} train images")
    for name, value in fids.items():
        print(f"  {name:<20s} {value:10.3f}   ×{value / fids['test']:.1f} the test-split FID")
    print(f"  ({time.time() - start:.1f}s for {len(sets) + 1} feature sets and {len(sets)} distances)")
    result = {"fid": fids, "num": args.num, "seed": args.seed, "features": info["name"],
              "weights_sha256": info["sha256"], "test_accuracy": info["test_accuracy"]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
