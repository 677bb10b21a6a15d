"""``gs://`` workdirs against a real Cloud Storage API server (fake-gcs-server on 127.0.0.1, see
tests/gcs_emulator.py): every file kind in the bucket, SIGTERM and ``kill -9`` resumed bitwise by fresh
processes with empty caches, the generation-match lease lock, chunked metrics, bad URLs.

Nothing here mocks ganjax: the clients (gcsfs, the Cloud Storage client, TensorStore) talk HTTP to the
server through ``STORAGE_EMULATOR_HOST`` and ``TENSORSTORE_GCS_HTTP_URL``.
"""

import functools
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import lease as lease_lib
from ganjax import storage, writers
from ganjax.checkpoint import Checkpointer
from ganjax.errors import ConfigError
from ganjax.evaluate import evaluate_workdir
from ganjax.train import generate
from ganjax.trainer import train_and_evaluate
from ganjax.sweep import results as results_lib
from ganjax.sweep import workers as workers_lib
from ganjax.workdir import WorkdirBusy
from tests.conftest import ROOT, assert_trees_close, load_config, restore_checkpoint
from tests.conftest import wait_for as wait_for_condition
from tests.gcs_emulator import Emulator, client_env

LEASE = "3"  # seconds: GANJAX_LEASE_SECONDS of the trainer processes here
CONFIG = os.path.join(ROOT, "configs", "gaussian_1d.py")
STEPS, EVERY = 96, 8
TRAIN = [sys.executable, "-m", "ganjax.main", f"--config={CONFIG}", f"--config.num_steps={STEPS}",
         f"--config.checkpoint_every={EVERY}", f"--config.log_every={EVERY}", f"--config.sample_every={STEPS // 2}",
         "--config.eval_every=0", "--config.keep_checkpoints=2"]


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """The server, bucket ``ganjax-test``, and this process's clients pointed at it (restored after)."""
    with Emulator(str(tmp_path_factory.mktemp("gcs") / "server.log")) as server:
        server.create_bucket("ganjax-test")
        saved = {k: os.environ.get(k) for k in client_env(server.url)}
        os.environ.update(client_env(server.url))
        try:
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def fresh_env(server, home) -> dict:
    """A process environment as on a new VM: empty $HOME and caches (the suite's JAX compilation cache
    too), the emulator's variables."""
    os.makedirs(home, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GANJAX_", "XDG_", "TFDS_", "JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    return {**env, **client_env(server.url), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
            "GANJAX_CACHE": str(home / "ganjax-cache"), "GANJAX_LEASE_SECONDS": LEASE, "PYTHONPATH": ROOT,
            "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def storage_client():
    from google.cloud import storage as gcs

    return gcs.Client()


wait_for = functools.partial(wait_for_condition, timeout=180.0, poll=0.05)


def steps_in(workdir: str) -> list[int]:
    return Checkpointer.existing_steps(workdir)


def test_gs_workdir_survives_sigterm_and_kill_9_on_fresh_machines_bitwise(gcs, tmp_path):
    """The essential end-to-end check of issue 15: one toy run, three trainer processes with empty $HOMEs."""
    ref = str(tmp_path / "ref")
    r = subprocess.run(TRAIN + [f"--workdir={ref}"], cwd=tmp_path, env=fresh_env(gcs, tmp_path / "h0"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr

    run = "gs://ganjax-test/runs/g1d"
    # Machine 1: trains until a checkpoint is in the bucket; a second trainer is refused; SIGTERM.
    first = subprocess.Popen(TRAIN + [f"--workdir={run}"], cwd=tmp_path, env=fresh_env(gcs, tmp_path / "h1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: steps_in(run) or first.poll() is not None)
    with pytest.raises(WorkdirBusy, match=rf"^{run} is in use by host .*, process {first.pid}, lease until"):
        train_and_evaluate(load_config("gaussian_1d"), run)
    assert first.poll() is None, "the first trainer finished before the race: make the run longer"
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, err
    stopped = max(steps_in(run))
    assert f"stopped by signal 15 at step {stopped}; checkpoint saved in {run}/checkpoints" in err
    assert not storage.exists(f"{run}/.lock"), "a stopped trainer releases its lease"

    # Machine 2: resumes from the bucket, is killed -9 after a newer checkpoint (its lease stays behind).
    killed = subprocess.Popen(TRAIN + [f"--workdir={run}"], cwd=tmp_path, env=fresh_env(gcs, tmp_path / "h2"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: max(steps_in(run)) > stopped or killed.poll() is not None)
    assert killed.poll() is None, "the second trainer finished before the kill: make the run longer"
    killed.kill()
    _, err = killed.communicate(timeout=60)
    assert f"resuming from step {stopped}" in err
    assert lease_lib.holder(f"{run}/.lock") is not None, "kill -9 leaves a live lease"

    # Machine 3: once the dead trainer's lease expired, takes it over and finishes.
    time.sleep(float(LEASE) + 0.5)
    r = subprocess.run(TRAIN + [f"--workdir={run}"], cwd=tmp_path, env=fresh_env(gcs, tmp_path / "h3"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "took over the expired lease" in r.stderr

    final = restore_checkpoint(run, STEPS)
    assert_trees_close(restore_checkpoint(ref, STEPS), final)
    logged = [row["step"] for row in writers.read_jsonl(f"{run}/metrics.jsonl") if "d_loss" in row]
    assert logged == list(range(EVERY, STEPS + 1, EVERY)), "each logged step appears once, in order"
    names = {f[len(run) + 1:] for f in storage.walk_files(run)}
    for name in ("config.json", "config_history.jsonl", "metrics.jsonl", "loss_curve.png",
                 f"samples/step_{STEPS // 2}.png", f"samples/step_{STEPS}.png",
                 f"checkpoints/{STEPS}/commit_success.txt"):
        assert name in names, sorted(names)
    assert any(n.startswith("events.out.tfevents.") for n in names), sorted(names)
    assert ".lock" not in names

    # ganjax.sample reads the run from the bucket and writes there; ganjax.evaluate appends there.
    out = "gs://ganjax-test/out/samples.npy"
    r = subprocess.run([sys.executable, "-m", "ganjax.sample", f"--workdir={run}", f"--out={out}", "--num=50",
                        "--seed=3"], cwd=tmp_path, env=fresh_env(gcs, tmp_path / "h4"), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    c = load_config("gaussian_1d")
    _, gan = config_lib.build(c)
    expected = generate(gan, final, gan.sample_noise(jax.random.key(3), 50))
    np.testing.assert_array_equal(np.load(io.BytesIO(storage.read_bytes(out))), np.asarray(expected))
    rows = evaluate_workdir(run)
    assert [row["step"] for row in writers.read_jsonl(f"{run}/eval.jsonl")] == [row["step"] for row in rows] == \
        [STEPS] * len(rows) and rows


def objects_under(prefix: str) -> dict[str, int]:
    """Every object of bucket ganjax-test under ``prefix``: name → generation (a new upload changes it)."""
    return {b.name: b.generation for b in storage_client().list_blobs("ganjax-test", prefix=prefix)}


def test_a_trainer_whose_lease_was_taken_over_stops_without_writing_anything_more(gcs, tmp_path):
    """SIGSTOP a trainer past its lease, take the lease over, SIGCONT it: it stops with one line, writes nothing.

    Left alone, it would train its 1000 steps to the end within seconds and write the final checkpoint,
    metrics row, samples and loss curve (it exits 0 and says "done" then).
    """
    run = "gs://ganjax-test/runs/stalled"
    first = subprocess.Popen([sys.executable, "-m", "ganjax.main", f"--config={CONFIG}", f"--workdir={run}",
                              "--config.num_steps=1000", "--config.checkpoint_every=0", "--config.eval_every=0"],
                             cwd=tmp_path, env=fresh_env(gcs, tmp_path / "h1"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(first.stderr), daemon=True)
    reader.start()
    assert wait_for(lambda: any("per compiled call" in line for line in lines) or first.poll() is not None)
    first.send_signal(signal.SIGSTOP)  # about to train: every setup write is done
    try:
        time.sleep(float(LEASE) + 0.5)  # no heartbeat while stopped: the lease expires
        taker = lease_lib.Lease(f"{run}/.lock", seconds=60)
        assert taker.acquire() is None and taker.taken_over["pid"] == first.pid
        before = objects_under("runs/stalled/")
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 2, "".join(lines)
    reader.join(timeout=10)
    assert "done:" not in "".join(lines)
    assert lines[-1].startswith(f"ganjax: error: {run}: this trainer's lease was taken over by host "
                                f"{socket.gethostname()}, process {os.getpid()}, lease until "), lines[-1]
    assert lines[-1].endswith(f"after this process stalled past its {LEASE} s lease (paused, partitioned or "
                              "suspended); stopped without writing anything more into the workdir\n")
    after = objects_under("runs/stalled/")
    own_events = {n for n in after if "events.out.tfevents." in n}  # its TensorBoard file: see RELIABILITY.md
    assert {"runs/stalled/config.json", "runs/stalled/.lock"} <= set(before) and len(own_events) == 1
    assert {n: g for n, g in after.items() if n not in own_events} == \
        {n: g for n, g in before.items() if n not in own_events}, "nothing written, nothing deleted"
    assert lease_lib.holder(f"{run}/.lock")["owner"] == taker.owner
    taker.release()


def test_lease_race_has_one_winner_and_an_expired_lease_is_taken_over(gcs):
    where = "gs://ganjax-test/leases/race"
    leases = [lease_lib.Lease(where, seconds=30) for _ in range(6)]
    results = [None] * len(leases)
    barrier = threading.Barrier(len(leases))

    def take(i):
        barrier.wait()
        results[i] = leases[i].acquire()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(leases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    assert all(r["pid"] == os.getpid() for r in results if r is not None)
    holder = leases[winners[0]]
    assert holder.renew() and lease_lib.holder(where)["owner"] == holder.owner
    holder.release()
    assert lease_lib.holder(where) is None and not storage.exists(where)

    # A holder that stops renewing (a dead machine) loses the lease once it expires, to one of two takers.
    dead = lease_lib.Lease(where, seconds=1)
    assert dead.acquire() is None
    assert lease_lib.Lease(where, seconds=30).acquire() is not None, "refused while the lease lasts"
    time.sleep(1.2)
    takers = [lease_lib.Lease(where, seconds=30) for _ in range(2)]
    outcomes = [t.acquire() for t in takers]
    assert outcomes.count(None) == 1 and takers[outcomes.index(None)].taken_over["owner"] == dead.owner
    assert not dead.renew() and dead.lost, "the dead holder's renewal fails after a takeover"
    dead.release()  # does not delete the new holder's lease
    assert lease_lib.holder(where)["owner"] == takers[outcomes.index(None)].owner
    takers[outcomes.index(None)].release()


def test_local_leases_use_the_same_logic(tmp_path):
    where = str(tmp_path / "claim")
    a, b = lease_lib.Lease(where, seconds=1), lease_lib.Lease(where, seconds=30)
    assert a.acquire() is None and b.acquire() is not None
    time.sleep(1.2)
    assert b.acquire() is None and b.taken_over["owner"] == a.owner
    assert b.confirm() is None and b.expires > time.time() + 29, "a fresh lease is confirmed"
    assert a.confirm() == f"was taken over by {lease_lib.describe(json.loads(open(where).read()))}"
    assert a.lost and not a.renew()
    b.seconds = 100  # more than half of its lease is gone: confirm() renews it (no other holder)
    assert b.confirm() is None and b.expires > time.time() + 99
    b.release()
    assert not os.path.exists(where)


def test_metrics_on_gs_are_chunked_objects_merged_in_order(gcs, monkeypatch):
    monkeypatch.setattr(writers, "CHUNK_ROWS", 3)
    path = "gs://ganjax-test/chunks/metrics.jsonl"
    rows = [{"step": s, "d_loss": s / 10} for s in range(1, 9)]
    for row in rows:
        writers.append_jsonl(path, row)
    assert writers.chunk_paths(path) == [path, "gs://ganjax-test/chunks/metrics.00001.jsonl",
                                         "gs://ganjax-test/chunks/metrics.00002.jsonl"]
    assert [storage.read_text(p).count("\n") for p in writers.chunk_paths(path)] == [3, 3, 2]
    assert writers.read_jsonl(path) == rows
    writers.drop_rows_after(path, 4)  # a resumed run drops what it will log again
    assert writers.read_jsonl(path) == rows[:4]
    assert len(writers.chunk_paths(path)) == 2
    writers.append_jsonl(path, {"step": 5, "d_loss": 9.0})
    assert [r["step"] for r in writers.read_jsonl(path)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("url, message", [
    ("ftp://host/run", "ftp://host/run: unknown URL scheme 'ftp'; supported: a local path or gs://, s3://"),
    ("gs://no-such-bucket/run", "cannot reach gs://no-such-bucket/run: bucket gs://no-such-bucket does not exist; "
                                "create it or fix the URL (credentials: GOOGLE_APPLICATION_CREDENTIALS"),
])
def test_bad_workdir_urls_are_clear_errors_and_nothing_is_written(gcs, tmp_path, monkeypatch, url, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        train_and_evaluate(load_config("gaussian_1d", "quick"), url)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert os.listdir(tmp_path) == []
    assert [b.name for b in storage_client().list_buckets()] == ["ganjax-test"]


def test_unreachable_server_names_the_url_and_the_credential_variables(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"cannot reach gs://b/run: ConnectionError: .*; check the URL and the "
                                          r"credentials \(GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST\)"):
        storage.check_reachable("gs://b/run")


# Caches and experiment outputs on gs:// ---------------------------------------------------------------------

def test_real_feature_cache_on_gs_is_written_once_and_read_back(gcs, fashion_data_dir, tmp_path, monkeypatch):
    """eval.cache_dir=gs://…: the first evaluation computes the real features and uploads them; the second reads
    that object (no image loading, no upload); both equal features computed with a local cache."""
    from ganjax.data import images as images_lib
    from ganjax.metrics.evaluator import Evaluator

    c = load_config("fashion_mnist_mlp", "quick")
    c.data_dir, c.eval.features, c.eval.num_samples = fashion_data_dir, "classifier", 200
    dataset, _ = config_lib.build(c)
    loads = []
    load_images = images_lib.load_images
    monkeypatch.setattr(images_lib, "load_images", lambda *a, **k: loads.append(a) or load_images(*a, **k))

    def real_features(cache: str) -> np.ndarray:
        c.eval.cache_dir = cache
        evaluator = Evaluator(c.eval, dataset, c.dataset, c.data_dir, c.seed)
        evaluator.prepare()
        return evaluator._real[0]

    first = real_features("gs://ganjax-test/cache")
    written = objects_under("cache/")
    assert len(loads) == 1 and len(written) == 1, written
    [name] = written
    assert name.startswith("cache/real_stats/fashion_mnist_train_classifier_fashion_mnist_v1_200_")
    with np.load(io.BytesIO(storage.read_bytes(f"gs://ganjax-test/{name}"))) as f:
        np.testing.assert_array_equal(f["features"], first)
    second = real_features("gs://ganjax-test/cache")
    assert len(loads) == 1, "the second evaluation read the cached features, it did not recompute them"
    assert objects_under("cache/") == written, "and did not upload them again"
    np.testing.assert_array_equal(second, first)
    local = real_features(str(tmp_path / "cache"))
    assert len(loads) == 2 and first.shape == (200, local.shape[1])
    np.testing.assert_array_equal(local, first)
    assert os.listdir(tmp_path / "cache" / "real_stats") == [name.rsplit("/", 1)[1]]


@pytest.mark.slow
def test_an_experiment_writes_its_report_to_gs(gcs, monkeypatch, tmp_path):
    """``experiments.gaussian_1d --quick --out=gs://…``: the report, figures and its runs are objects there."""
    from experiments import gaussian_1d

    monkeypatch.chdir(tmp_path)
    out = "gs://ganjax-test/experiments/g1d"
    stale = f"{out}/runs/gaussian_1d/seed_0/stale.txt"
    storage.write_text_atomic(stale, "from an older run")  # the script trains its scratch runs afresh
    result = gaussian_1d.main([f"--out={out}", "--quick"])
    assert result["report"] == f"{out}/gaussian_1d.md"
    names = {n[len("experiments/g1d/"):] for n in objects_under("experiments/g1d/")}
    assert {"gaussian_1d.md", "gaussian_1d_hist.png", "gaussian_1d_curves.png",
            "runs/gaussian_1d/seed_0/config.json"} <= names and "runs/gaussian_1d/seed_0/stale.txt" not in names
    report = storage.read_text(result["report"])
    assert report.startswith("# Seed 003: 1-D Gaussian GAN") and "![gaussian_1d_hist](gaussian_1d_hist.png)" in report
    rows = writers.read_jsonl(f"{out}/runs/gaussian_1d/seed_0/metrics.jsonl")
    last = [r for r in rows if r.get("kind") == "eval" and r["step"] == gaussian_1d.QUICK["steps"]]
    assert last and f"{last[0]['gen_mean']:.3f}" in report, "the report's numbers are the run's in the bucket"
    assert all(storage.read_bytes(f"{out}/{n}")[:8] == b"\x89PNG\r\n\x1a\n" for n in names if n.endswith(".png"))
    assert os.listdir(tmp_path) == [], "nothing written locally"


def test_a_gs_data_dir_goes_to_tfds_as_is_and_its_arrays_are_cached_locally(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    from ganjax.data import images as images_lib
    from ganjax.errors import DataError

    seen = []

    def builder(name, data_dir):
        seen.append((name, data_dir))
        raise RuntimeError("stopped here")

    monkeypatch.setattr(tfds, "builder", builder)
    with pytest.raises(DataError, match="cannot open TFDS dataset 'fashion_mnist': stopped here"):
        images_lib.load_images("fashion_mnist", data_dir="gs://ganjax-test/tfds")
    assert seen == [("fashion_mnist", "gs://ganjax-test/tfds")]
    monkeypatch.setenv("GANJAX_CACHE", str(tmp_path))
    assert images_lib.array_cache_dir("gs://b/tfds") == str(tmp_path / "ganjax_cache" / "gs" / "b" / "tfds")
    monkeypatch.setenv("GANJAX_CACHE", "gs://b/cache")  # memory-mapped arrays need a local folder
    assert images_lib.array_cache_dir("gs://b/tfds") == os.path.expanduser("~/.cache/ganjax/ganjax_cache/gs/b/tfds")
    assert images_lib.array_cache_dir("/data/tfds") == "/data/tfds/ganjax_cache"


# Sweeps over many machines ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, env, expected", [
    ((None, None), {}, (0, 1)),
    ((2, 4), {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "9"}, (2, 4)),  # flags win
    ((None, None), {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, (2, 4)),
    ((None, None), {"JOB_COMPLETION_INDEX": "1", "GANJAX_NUM_WORKERS": "3"}, (1, 3)),
])
def test_worker_flags_default_from_the_scheduler(flags, env, expected):
    assert workers_lib.resolve(*flags, env=env) == expected


@pytest.mark.parametrize("flags, env, message", [
    ((3, 3), {}, "--worker=3 must be < --num_workers=3 (workers are numbered 0 to 2)"),
    ((None, None), {"JOB_COMPLETION_INDEX": "4", "GANJAX_NUM_WORKERS": "2"}, "--worker=4 must be < --num_workers=2"),
    ((0, 0), {}, "--num_workers=0 must be >= 1"),
])
def test_impossible_workers_are_refused(flags, env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        workers_lib.resolve(*flags, env=env)


def test_shares_are_deterministic_disjoint_and_complete():
    units = [f"u{i}" for i in range(11)]
    shares = [workers_lib.share(units, w, 3) for w in range(3)]
    assert shares[1] == ["u1", "u4", "u7", "u10"]
    assert sorted(sum(shares, []), key=units.index) == units


def test_a_sweep_folder_of_another_sweep_config_is_refused(gcs):
    where = "gs://ganjax-test/sweeps/manifest"
    first = {"sweep": {"seeds": 2, "base": "configs/ring_2d.py:quick"}, "trials": []}
    workers_lib.check_manifest(where, first)
    workers_lib.check_manifest(where, first)  # the same config: accepted
    with pytest.raises(ConfigError, match=re.escape(f"{where}/sweep.json was written by a different sweep config "
                                                    "(seeds: 2 there, 3 here); every worker must run the same")):
        workers_lib.check_manifest(where, {"sweep": {**first["sweep"], "seeds": 3}, "trials": []})


def test_claims_run_each_unit_once_and_retake_a_dead_workers_unit(gcs, monkeypatch):
    monkeypatch.setattr(workers_lib, "WAIT_SECONDS", 0.2)
    sweep_dir = "gs://ganjax-test/sweeps/claims"
    units = {f"u{i}": f"u{i}" for i in range(6)}
    ran: list[tuple[int, str]] = []
    dead = lease_lib.Lease(workers_lib.claim_path(sweep_dir, "u1"), seconds=1.5)  # worker 1's, then it died
    assert dead.acquire() is None

    def finished(unit):
        return unit in {r["trial"] for r in results_lib.read_results(sweep_dir).values()}

    def worker(index):
        def run_unit(unit):
            ran.append((index, unit))
            return [{"trial": unit, "status": "ok", "worker": index}]
        workers_lib.run_share(units, sweep_dir, index, 2, run_unit, finished)

    threads = [threading.Thread(target=worker, args=(w,)) for w in (0, 1, 0)]  # worker 0 started twice
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(u for _, u in ran) == sorted(units), "every unit ran exactly once"
    assert {u for w, u in ran if w == 1} == {"u1", "u3", "u5"}
    rows = results_lib.read_results(sweep_dir)
    assert sorted(rows) == sorted(units) and all(rows[u]["worker"] == int(u[1]) % 2 for u in units)
    assert storage.listdir(f"{sweep_dir}/results") == [f"{u}.jsonl" for u in sorted(units)]
    assert storage.listdir(f"{sweep_dir}/claims") == [], "every claim is released"


def _sweep(args, env, cwd):
    return subprocess.Popen([sys.executable, "-m", "ganjax.sweep", f"--config={ROOT}/configs/sweeps/ring_losses.py:quick",
                             *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _numbers(rows: dict) -> dict:
    return {t: (r["status"], r["final"], r["best"], r["params"]) for t, r in rows.items()}


@pytest.mark.slow
def test_a_sweep_split_over_three_workers_on_gs_with_one_killed_equals_a_one_machine_sweep(gcs, tmp_path):
    ref = tmp_path / "one-machine"
    one = _sweep([f"--workdir={ref}"], fresh_env(gcs, tmp_path / "h"), tmp_path)
    assert one.wait(timeout=1200) == 0, one.stderr.read()
    expected = _numbers(results_lib.read_results(str(ref)))

    where = "gs://ganjax-test/sweeps/ring"
    base = fresh_env(gcs, tmp_path / "h")
    envs = [{**base, "JOB_COMPLETION_INDEX": "0", "GANJAX_NUM_WORKERS": "3"},  # a Kubernetes Indexed Job pod
            base,                                                              # flags
            {**base, "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}]
    args = [[], ["--worker=1", "--num_workers=3"], []]
    procs = [_sweep([f"--workdir={where}", *a], e, tmp_path) for a, e in zip(args, envs)]
    claims = lambda: storage.listdir(f"{where}/claims")  # noqa: E731
    assert wait_for(lambda: len(claims()) == 3 or procs[1].poll() is not None, timeout=600)
    mine = set(claims())
    procs[1].kill()  # worker 1 dies mid-group, its claim stays behind
    procs[1].wait()
    procs[1] = _sweep([f"--workdir={where}", *args[1]], envs[1], tmp_path)  # the scheduler reruns it
    for p in procs:
        assert p.wait(timeout=1200) == 0, p.stderr.read()
    assert len(mine) == 3
    r = subprocess.run([sys.executable, "-m", "ganjax.sweep", f"--summarize={where}"], cwd=tmp_path, env=base,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = results_lib.read_results(where)
    assert sorted(rows) == sorted(expected) and _numbers(rows) == expected
    per_file = [writers.read_jsonl(f"{where}/results/{n}") for n in storage.listdir(f"{where}/results")]
    assert sorted(r["trial"] for f in per_file for r in f) == sorted(expected), "no trial twice, none lost"
    assert storage.read_text(f"{where}/summary.md") == (ref / "summary.md").read_text()


@pytest.mark.slow
def test_a_process_mode_sweep_split_over_two_workers_on_gs(gcs, tmp_path, monkeypatch):
    from ganjax.sweep.run import run_sweep
    from ganjax.sweep.spec import axis, expand, sweep_config

    monkeypatch.setenv("GANJAX_CACHE", str(tmp_path / "cache"))
    sweep = sweep_config(base=f"{ROOT}/configs/ring_2d.py:quick", axes=[axis("num_steps", grid=(20, 30))], seeds=1,
                         mode="process", workers=1, metric="modes",
                         fixed={"log_every": 10, "checkpoint_every": 10, "sample_every": 0, "eval_every": 0})
    where = "gs://ganjax-test/sweeps/process"
    trials = [t.id for t in expand(sweep)]
    first = run_sweep(sweep.copy_and_resolve_references(), where, worker=0, num_workers=2)
    assert list(first) == trials[:1] and not storage.exists(f"{where}/summary.md"), "worker 0 ran its trial only"
    both = run_sweep(sweep.copy_and_resolve_references(), where, worker=1, num_workers=2)
    assert sorted(both) == sorted(trials) and all(r["status"] == "ok" for r in both.values())
    assert [both[t]["steps"] for t in trials] == [20, 30]
    assert storage.listdir(f"{where}/results") == sorted(f"{t}.jsonl" for t in trials)
    for t in trials:  # each trial trained in the bucket, its log uploaded there
        assert storage.exists(f"{where}/trials/{t}/checkpoints/{both[t]['steps']}/commit_success.txt")
        assert "ganjax.main" in storage.read_text(f"{where}/trials/{t}.log").splitlines()[0]
    assert storage.exists(f"{where}/summary.md"), "the last worker writes the summary"


# jax.distributed on gs:// ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_share_one_gs_workdir_and_resume_bitwise(gcs, tmp_path):
    """ring_2d:quick on 2 processes x 2 devices (jax.distributed, tests/test_multihost.py's Job) in the bucket:
    10 steps, then the same job to 20 (a resume), equals an uninterrupted 2-process local run bitwise; the
    bucket holds each metrics row once and one TensorBoard file per job (process 0 writes them), and the
    checkpoints Orbax wrote collectively."""
    from tests.test_multihost import RING, Job

    run = "gs://ganjax-test/mh/ring"
    for steps in (10, 20):
        job = Job(tmp_path, RING, run, {"num_steps": steps})
        job.check(job.wait(timeout=300))
        assert " I " not in job.output(1), "process 1 logs warnings and errors only"
    assert "resuming from step 10" in job.output(0)
    ref = str(tmp_path / "ref")
    job = Job(tmp_path, RING, ref)
    job.check(job.wait(timeout=300))
    assert_trees_close(restore_checkpoint(ref, 20), restore_checkpoint(run, 20))

    rows = writers.read_jsonl(f"{run}/metrics.jsonl")
    assert [r["step"] for r in rows if "d_loss" in r] == [5, 10, 15, 20], "each row once: one writer"
    assert [(r["step"], r["generator"]) for r in rows if r.get("kind") == "eval"] == \
        [(10, "raw"), (10, "ema"), (20, "raw"), (20, "ema")]  # each job evaluates at its last step
    assert [r["step"] for r in writers.read_jsonl(f"{run}/config_history.jsonl")] == [10]
    names = {n[len("mh/ring/"):] for n in objects_under("mh/ring/")}
    assert len([n for n in names if n.startswith("events.out.tfevents.")]) == 2, sorted(names)
    assert {"config.json", "loss_curve.png", "samples/step_10.png", "samples/step_20.png",
            "checkpoints/10/commit_success.txt", "checkpoints/20/commit_success.txt"} <= names, sorted(names)
    assert ".lock" not in names, "process 0 released the lease"


@pytest.mark.slow
def test_inception_weights_are_downloaded_converted_and_reused_in_a_gs_cache(gcs, tmp_path, monkeypatch):
    """$GANJAX_CACHE=gs://…: the .pth download and its converted .npz are objects there, the .npz is read back
    (no second download) and has the bytes a local cache gets."""
    import hashlib
    import urllib.request

    from ganjax.metrics import inception
    from tests.test_inception import _import_torch, _random_state_dict

    torch = _import_torch()
    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in _random_state_dict().items()}, buffer)
    urls = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: urls.append(url) or
                        io.BytesIO(buffer.getvalue()))  # the network: pytorch-fid's release replaced by random weights
    monkeypatch.setattr(inception, "PTH_SHA256_PREFIX", hashlib.sha256(buffer.getvalue()).hexdigest()[:8])
    monkeypatch.setenv("GANJAX_CACHE", "gs://ganjax-test/inception-cache")
    _, variables, sha = inception.load_inception()
    assert urls == [inception.WEIGHTS_URL]
    assert sorted(objects_under("inception-cache/")) == [f"inception-cache/{inception.NPZ_NAME}",
                                                          f"inception-cache/{inception.PTH_NAME}"]
    written = objects_under("inception-cache/")
    _, again, sha_again = inception.load_inception()
    assert len(urls) == 1 and objects_under("inception-cache/") == written and sha_again == sha
    assert_trees_close(again, variables)
    monkeypatch.setenv("GANJAX_CACHE", str(tmp_path))
    assert inception.load_inception()[2] == sha and len(urls) == 2
    assert storage.read_bytes(f"gs://ganjax-test/inception-cache/{inception.NPZ_NAME}") == \
        (tmp_path / inception.NPZ_NAME).read_bytes()
