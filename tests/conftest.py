"""Test setup: 8 fake CPU devices so multi-device code is exercised.

XLA_FLAGS must be set before jax is imported anywhere.
"""

import contextlib
import os
import sys
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One persistent JAX compilation cache for the whole suite: its xdist workers and the trainer, sweep and
# sample processes that tests start (they inherit the environment) compile the same small programs again
# and again. Programs are cached whatever their compile time; the size cap turns on the cache's eviction
# and its file lock, so concurrent processes never read a half-written entry. A test that counts
# compilations turns it off (the ``no_compilation_cache`` fixture).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"ganjax-tests-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

# In CI a skip fails the run unless tests/skip_gate.py allow-lists it (pytest registers the hooks it finds here).
from tests.skip_gate import (pytest_runtest_logreport, pytest_sessionfinish,  # noqa: E402,F401
                             pytest_terminal_summary)
from tests import skip_gate  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests, excluded by default (run with -m slow)")
    skip_gate.pytest_configure(config)


@pytest.fixture(scope="session")
def repo_root() -> str:
    return ROOT


# The Fashion-MNIST IDX files, where ganjax itself looks for them (ganjax.data.images.LOCAL_DIRS).
FASHION_DIR = os.environ.get("GANJAX_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz")


def shared_tmp_dir(tmp_path_factory, name: str) -> str:
    """``name`` under the session's temporary root, shared by all pytest-xdist workers of one run
    (each worker's own basetemp is a subfolder of that root)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / name
    path.mkdir(exist_ok=True)
    return str(path)


@contextlib.contextmanager
def exclusive(lock_path: str):
    """Holds an exclusive ``flock`` on ``lock_path`` (created if needed): one xdist worker at a time
    prepares a shared fixture, the others then find it ready."""
    import fcntl

    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def fashion_data_dir(tmp_path_factory) -> str:
    """A TFDS data dir with Fashion-MNIST prepared offline from the IDX files in :data:`FASHION_DIR`
    (``$GANJAX_FASHION_MNIST_DIR``, else Debian's ``dataset-fashion-mnist`` folder).

    Uses $TFDS_DATA_DIR when set (CI sets a fresh one), else a temporary dir. Skips (which fails a CI
    run, see tests/skip_gate.py) when the four files are missing.
    """
    missing = [f for f in FASHION_FILES
               if not any(os.path.exists(os.path.join(FASHION_DIR, name)) for name in (f, f.removesuffix(".gz")))]
    if missing:
        pytest.skip(f"Fashion-MNIST files {', '.join(missing)} are missing from {FASHION_DIR}: "
                    f"apt-get install dataset-fashion-mnist, or set GANJAX_FASHION_MNIST_DIR to a folder with them")
    data_dir = os.environ.get("TFDS_DATA_DIR") or shared_tmp_dir(tmp_path_factory, "tfds")
    os.makedirs(data_dir, exist_ok=True)
    from ganjax.data.images import load_images

    with exclusive(os.path.join(shared_tmp_dir(tmp_path_factory, "locks"), "fashion_data_dir.lock")):
        load_images("fashion_mnist", "train", data_dir)
    return data_dir


QUICK_CLASSIFIER_STEPS = 150


@pytest.fixture(scope="session")
def quick_classifier(fashion_data_dir, tmp_path_factory):
    """``(cache_dir, module, variables, info)``: a Fashion-MNIST domain classifier trained for
    QUICK_CLASSIFIER_STEPS steps (well above chance, far from the real one) in a fresh cache dir."""
    from ganjax.metrics import classifier

    cache_dir = shared_tmp_dir(tmp_path_factory, "classifier_cache")  # trained by the first xdist worker
    with exclusive(os.path.join(shared_tmp_dir(tmp_path_factory, "locks"), "quick_classifier.lock")):
        module, variables, info = classifier.load_classifier("fashion_mnist", fashion_data_dir, cache_dir,
                                                             num_steps=QUICK_CLASSIFIER_STEPS)
    return cache_dir, module, variables, info


@pytest.fixture
def classifier_cache(tmp_path, quick_classifier) -> str:
    """A fresh cache dir for one test holding a copy of the ``quick_classifier``, so real-feature
    caches a test writes never reach another test."""
    import shutil

    from ganjax.metrics import classifier

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(classifier.cache_path("fashion_mnist", quick_classifier[0]), cache)
    return str(cache)


def _tree_leaves_checked(a, b) -> list[tuple[str, "object", "object"]]:
    """``[(path, leaf_a, leaf_b)]`` after asserting that ``a`` and ``b`` have the same tree structure
    (treedef, so container types and keys) and, leaf by leaf, the same shape and dtype."""
    import jax
    import numpy as np

    assert jax.tree.structure(a) == jax.tree.structure(b), \
        f"different tree structures:\n{jax.tree.structure(a)}\n{jax.tree.structure(b)}"
    pairs = []
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        where = jax.tree_util.keystr(path) or "<root>"
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape, f"{where}: shape {x.shape} != {y.shape}"
        assert x.dtype == y.dtype, f"{where}: dtype {x.dtype} != {y.dtype}"
        pairs.append((where, x, y))
    return pairs


def assert_trees_close(a, b, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Asserts that pytrees ``a`` and ``b`` have the same treedef, leaf shapes and leaf dtypes, then that
    every leaf is equal (``rtol = atol = 0``: bitwise, NaNs equal) or ``allclose`` within ``rtol``/``atol``.

    The one tree comparison of the tests: zipping the leaves of two trees alone would pass on trees of
    different structure (a missing leaf is never compared).
    """
    import numpy as np

    for where, x, y in _tree_leaves_checked(a, b):
        if rtol == 0 and atol == 0:
            np.testing.assert_array_equal(x, y, err_msg=where)
        else:
            np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=where)


def trees_equal(a, b) -> bool:
    """Whether pytrees ``a`` and ``b`` hold bitwise-equal leaves; asserts first that they have the same
    treedef, leaf shapes and dtypes, so ``not trees_equal(a, b)`` cannot pass on mismatched trees."""
    import numpy as np

    return all(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc") for _, x, y in _tree_leaves_checked(a, b))


def load_config(name: str, arg: str | None = None):
    """Loads ``configs/<name>.py`` the way ``--config=configs/<name>.py:arg`` does."""
    from ganjax.config import load_config_file

    return load_config_file(name, arg)


def override(c, overrides: dict):
    """Sets dotted keys (``{"model.d.width": 4}``) on config ``c`` in place; returns ``c``."""
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = c
        for part in parents:
            node = node[part]
        node[leaf] = value
    return c


def assert_refused_before_writing(module: str, out_parent, argv: list[str], match: str) -> None:
    """``python -m experiments.<module> --out=<out_parent>/never ARGV`` raises a ConfigError matching ``match``
    (a regex) and leaves no ``never`` folder behind."""
    import importlib

    from ganjax.errors import ConfigError

    out = out_parent / "never"
    with pytest.raises(ConfigError, match=match):
        importlib.import_module(f"experiments.{module}").main([f"--out={out}", *argv])
    assert not out.exists()


def restore_checkpoint(workdir: str, step: int):
    """The train state checkpointed at ``step`` in ``workdir`` (a local path or a ``gs://`` URL), restored
    with the workdir's own ``config.json``; asserts that exactly that step was restored."""
    from ganjax import config as config_lib
    from ganjax import storage
    from ganjax.checkpoint import Checkpointer
    from ganjax.trainer import abstract_state

    c = config_lib.from_json(storage.read_text(storage.join(workdir, "config.json")))
    _, gan = config_lib.build(c)
    ckpt = Checkpointer(workdir, async_save=False)
    try:
        state, _, restored = ckpt.restore(abstract_state(gan, c), lambda: "", step=step)
    finally:
        ckpt.close()
    assert restored == step
    return state


def wait_for(condition, timeout: float = 120.0, poll: float = 0.01) -> bool:
    """Polls ``condition()`` every ``poll`` seconds until it is true (→ True) or ``timeout`` passes (→ False)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


@pytest.fixture
def no_compilation_cache():
    """Turns the suite's persistent compilation cache off for one test (a cache hit is no XLA compilation,
    so a test that counts compilations would see fewer), and back on after it."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", True)
        compilation_cache.reset_cache()
