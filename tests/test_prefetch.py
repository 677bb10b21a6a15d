"""The input pipeline (issue 16, item 2): the prefetch thread and ``data.on_device`` serve exactly the batches of
``BatchStream``, in order; a run with them equals one without, bitwise, also across a resume; a failing producer
surfaces in the trainer and leaves no thread behind; ``data.on_device`` with a toy dataset is refused."""

import signal
import threading

import jax
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.checkpoint import Checkpointer
from ganjax.data import Dataset
from ganjax.data import pipeline
from ganjax.data.batches import BatchStream
from ganjax.data.prefetch import Prefetcher
from ganjax.errors import ConfigError
from ganjax.parallel import make_runner
from ganjax import trainer
from ganjax.trainer import _meta_only, train_and_evaluate
from tests.conftest import assert_trees_close, load_config

N, B = 48, 8  # 6 batches per epoch: the plans below cross an epoch boundary
PLAN = [1, 3, 2, 1]  # call lengths k, as steps_per_call and the log/checkpoint boundaries make them
SCHEDULE = {"num_steps": 6, "log_every": 3, "checkpoint_every": 0, "sample_every": 0, "eval_every": 0}
SHAPE = (8, 8, 1)


def _config():
    """A tiny MLP GAN (one hidden layer of 16 units each, no dropout) on 8×8×1 images."""
    c = load_config("fashion_mnist_mlp", "quick")
    c.model.z_dim, c.model.g.hidden, c.model.d.hidden, c.model.d.dropout = 8, (16,), (16,), 0.0
    return c


def _images(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)


def _reference_calls(images, labels, n_disc: int, plan: list[int]) -> list:
    """The calls' batches written out by hand from ``BatchStream.next``: ``[n_disc, B, ...]`` for k = 1,
    ``[k, n_disc, B, ...]`` otherwise, images and labels alike."""
    stream = BatchStream(images, seed=5, batch_size=B, labels=labels)
    out = []
    for k in plan:
        steps = [[stream.next() for _ in range(n_disc)] for _ in range(k)]
        pair = tuple(np.array([[b[leaf] for b in step] for step in steps]) for leaf in (0, 1))
        out.append(tuple(x[0] for x in pair) if k == 1 else pair)
    return out


def _source(data: dict, mode: str, n_disc: int, plan: list[int], labels=True):
    images, label_array = _images()
    stream = BatchStream(images, seed=5, batch_size=B, labels=label_array if labels else None)
    _, gan = config_lib.build(_config(), Dataset("fashion_mnist", SHAPE))
    devices = jax.devices()[:1 if mode == "none" else 4]
    runner = make_runner(gan, mode, B, devices)
    return pipeline.batch_source(data, runner, stream, n_disc, iter(plan))


@pytest.mark.parametrize("data,mode", [
    ({"prefetch": 2}, "none"), ({"prefetch": 1}, "shard_map"), ({"prefetch": 0}, "none"),
    ({"prefetch": 2, "on_device": True}, "none"), ({"prefetch": 0, "on_device": True}, "shard_map")])
def test_served_batches_equal_batch_stream_bitwise(data, mode):
    n_disc = 2
    images, labels = _images()
    expected = _reference_calls(images, labels, n_disc, PLAN)
    source = _source(data, mode, n_disc, PLAN)
    try:
        assert source.position == 0
        consumed = 0
        for k, want in zip(PLAN, expected):
            got = source.next(k)
            assert isinstance(got[0], jax.Array) == (data["prefetch"] > 0 or data.get("on_device", False))
            assert_trees_close(jax.tree.map(np.asarray, got), want)
            consumed += k * n_disc
            assert source.position == consumed  # the batches taken, not those made ahead
    finally:
        source.close()


@pytest.mark.parametrize("data", [{"prefetch": 1}, {"prefetch": 0, "on_device": True},
                                  {"prefetch": 2, "on_device": True}])
@pytest.mark.parametrize("labels", [False, True])
def test_pmap_placed_batch_has_the_device_axis_pmap_takes(data, labels):
    """pmap's batches (host-gathered or gathered on the devices from the placed images) are the
    reference batches split along pmap's leading device axis, labels row for row with the images."""
    images, label_array = _images()
    plan = [2, 1]
    source = _source(data, "pmap", 1, plan, labels=labels)
    try:
        for k, want in zip(plan, _reference_calls(images, label_array, 1, plan)):
            got = source.next(k)  # [devices, (k,) n_disc, B / devices, ...] per leaf
            want = want if labels else want[0]
            axis = 2 if k > 1 else 1  # the batch axis of [(k,) n_disc, B, ...]
            unsplit = jax.tree.map(lambda g, w: np.moveaxis(np.asarray(g), 0, axis).reshape(w.shape), got, want)
            assert_trees_close(unsplit, want)
    finally:
        source.close()


def test_producer_exception_reraises_in_the_consumer_and_the_thread_ends():
    before = threading.active_count()

    def produce(k):
        if k == 3:
            raise ValueError("disk vanished at the third call")
        return k

    prefetcher = Prefetcher(produce, lambda: 0, iter([1, 2, 3, 4]), depth=2)
    assert prefetcher.next(1) == 1 and prefetcher.next(2) == 2
    with pytest.raises(ValueError, match="disk vanished at the third call"):
        prefetcher.next(3)
    prefetcher.close()
    assert threading.active_count() == before, [t.name for t in threading.enumerate()]


def test_close_stops_a_producer_blocked_on_a_full_queue():
    before = threading.active_count()
    prefetcher = Prefetcher(lambda k: k, lambda: 0, iter([1] * 1000), depth=2)
    assert prefetcher.next(1) == 1
    prefetcher.close()
    assert threading.active_count() == before, [t.name for t in threading.enumerate()]
    with pytest.raises(RuntimeError, match="plan has a call of 1 step"):  # negative control: k must match
        Prefetcher(lambda k: k, lambda: 0, iter([1]), depth=1).next(2)


def test_bad_pipeline_options_are_refused_naming_the_value():
    c = load_config("ring_2d", "quick")
    c.data.on_device = True
    with pytest.raises(ConfigError, match="'ring_2d' is a toy distribution"):
        config_lib.validate(c)
    c = _config()
    c.data.prefetch = -1
    with pytest.raises(ConfigError, match="data.prefetch must be an integer >= 0.*-1"):
        config_lib.validate(c)


class _Device:
    def __init__(self, stats):
        self.stats = stats

    def memory_stats(self):
        return self.stats

    def __str__(self):
        return "fake device"


def test_on_device_refuses_a_dataset_larger_than_the_device_allows():
    images, labels = _images()
    dataset = Dataset("fashion_mnist", SHAPE, images=images, labels=labels)
    nbytes = images.nbytes + labels.nbytes
    on = {"on_device": True}
    pipeline.check_data_fits(on, dataset, _Device({"bytes_limit": 2 * nbytes}))  # exactly half: fits
    pipeline.check_data_fits(on, dataset, _Device(None))  # XLA:CPU reports nothing: any size
    pipeline.check_data_fits({"on_device": False}, dataset, _Device({"bytes_limit": 1}))
    with pytest.raises(ConfigError, match="data.on_device=True: the dataset takes .* of fake device"):
        pipeline.check_data_fits(on, dataset, _Device({"bytes_limit": 2 * nbytes - 1}))


# --- end to end: the trainer with and without the pipeline -------------------------------------------------

def _dataset() -> Dataset:
    images, _ = _images(64)
    return Dataset("fashion_mnist", SHAPE, images=images)


def _train(workdir, parallel="none", num_steps=6, **data):
    c = _config()
    for key, value in SCHEDULE.items():
        c[key] = value
    c.num_steps, c.batch_size, c.n_disc, c.parallel = num_steps, 16, 2, parallel
    for key, value in data.items():
        c.data[key] = value
    return jax.device_get(train_and_evaluate(c, str(workdir), _dataset()))


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """Final states without the pipeline (prefetch 0, on_device False), by parallel mode."""
    cache = {}

    def get(parallel):
        if parallel not in cache:
            cache[parallel] = _train(tmp_path_factory.mktemp(f"plain_{parallel}"), parallel, prefetch=0)
        return cache[parallel]

    return get


# Each case trains twice (~7 s on the 2-core CI machine): the default suite runs the single-device prefetch
# and the most placed layouts (shard_map and pmap over 8 devices, images on the devices, prefetched); the rest
# is -m slow.
@pytest.mark.parametrize("parallel,data", [
    ("none", {"prefetch": 2}), ("shard_map", {"on_device": True, "prefetch": 2}),
    ("pmap", {"on_device": True, "prefetch": 2}),
    pytest.param("shard_map", {"prefetch": 2}, marks=pytest.mark.slow),
    pytest.param("none", {"on_device": True, "prefetch": 0}, marks=pytest.mark.slow)])
def test_pipeline_run_equals_plain_run_bitwise(tmp_path, plain, parallel, data):
    assert_trees_close(_train(tmp_path, parallel, **data), plain(parallel))


def test_resume_after_sigterm_with_prefetch_sees_the_batches_of_an_uninterrupted_run(tmp_path, plain, monkeypatch):
    def sigterm_at_step_3(self, step):  # as the handler does on SIGTERM, while the thread is 2 calls ahead
        if step == 3:
            self.signum = signal.SIGTERM
        return self.signum is not None

    with monkeypatch.context() as m:
        m.setattr(trainer.StopFlag, "requested", sigterm_at_step_3)
        with pytest.raises(trainer.Interrupted, match="at step 3"):
            _train(tmp_path, prefetch=2)
    ckpt = Checkpointer(str(tmp_path), async_save=False)
    try:
        meta = ckpt.manager.restore(3, args=_meta_only())["meta"]
    finally:
        ckpt.close()
    assert meta["data_position"] == 3 * 2  # consumed: 3 steps of n_disc = 2 batches, none of those made ahead
    assert_trees_close(_train(tmp_path, prefetch=2), plain("none"))


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ganjax-prefetch"]


def test_a_failing_producer_stops_the_trainer_with_its_message(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(Prefetcher, "__init__", _recording(Prefetcher.__init__, started))

    def broken(*args):
        raise ValueError("the image store went away")

    monkeypatch.setattr(pipeline, "call_batches", broken)
    with pytest.raises(ValueError, match="the image store went away"):
        _train(tmp_path, prefetch=2)
    assert len(started) == 1 and not _prefetch_threads()  # the run had a thread, and it is gone


def _recording(init, started: list):
    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        started.append(self)

    return record
