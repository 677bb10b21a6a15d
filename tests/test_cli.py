"""The command line as a user meets it: clear one-line errors, untouched workdirs, signals."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1",
       "GANJAX_FASHION_MNIST_DIR": "/nonexistent-ganjax-test"}


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(workdir):
    out = {}
    for dirpath, _, files in os.walk(workdir):
        for f in files:
            p = os.path.join(dirpath, f)
            out[p] = open(p, "rb").read()
    return out


G1D = "--config=configs/gaussian_1d.py:quick"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("cli") / "g1d")
    r = run("ganjax.main", G1D, f"--workdir={workdir}")
    assert r.returncode == 0, r.stderr
    return workdir


BAD_TRAIN = [
    ("--config.loss=wgan", r"unknown loss 'wgan'; valid choices: hinge, least_squares, minimax, non_saturating, wasserstein"),
    ("--config.penalty=gp", r"unknown penalty 'gp'; valid choices: dragan, none, r1, r2, wgan_gp"),
    ("--config.model.generator=resnet", r"unknown generator 'resnet'; valid choices: mlp"),
    ("--config.model.discriminator=big", r"unknown discriminator 'big'; valid choices: keras_conv, mlp"),
    ("--config.dataset=imagenot", r"imagenot"),
    ("--config.batch_size=0", r"batch_size must be > 0, got 0"),
    ("--config.batch_size=-3", r"batch_size must be > 0, got -3"),
    ("--config.parallel=tpu", r"unknown parallel mode 'tpu'; valid choices: none, pmap, shard_map"),
    ("--config.optimizer_d.learning_rate=-1.0", r"optimizer_d.learning_rate must be > 0"),
    ("--config.compute_dtype=float16", r"unknown compute_dtype 'float16'; valid choices: bfloat16, float32"),
    ("--config.model.noise=cauchy", r"unknown model.noise 'cauchy'; valid choices: normal, uniform, uniform_signed"),
    ("--config.n_disc=0", r"n_disc must be >= 1, got 0"),
    ("--config.ema_decay=1.5", r"ema_decay must be in \[0, 1\), got 1.5"),
]


@pytest.mark.parametrize("override,message", BAD_TRAIN)
def test_bad_training_input_is_one_clear_line(trained, override, message):
    before = snapshot(trained)
    r = run("ganjax.main", G1D, f"--workdir={trained}", override)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("ganjax: error:")]
    assert len(errors) == 1, r.stderr
    import re

    assert re.search(message, errors[0]), errors[0]
    assert snapshot(trained) == before


def test_missing_dataset_says_how_to_get_it(tmp_path):
    workdir = str(tmp_path / "fm")
    r = run("ganjax.main", "--config=configs/fashion_mnist_mlp.py:quick", f"--workdir={workdir}",
            f"--config.data_dir={tmp_path / 'empty_tfds'}", "--config.dataset=idx:/nonexistent-idx-folder")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "/nonexistent-idx-folder" in r.stderr
    assert not os.path.exists(os.path.join(workdir, "config.json"))


def test_unknown_config_key_is_rejected(trained):
    r = run("ganjax.main", G1D, f"--workdir={trained}", "--config.lossy=hinge")
    assert r.returncode != 0 and "lossy" in r.stderr


def test_sample_writes_npy_and_png(trained, tmp_path):
    npy, png = str(tmp_path / "s.npy"), str(tmp_path / "s.png")
    r = run("ganjax.sample", f"--workdir={trained}", "--num=16", f"--out={npy}", "--ema")
    assert r.returncode == 0, r.stderr
    assert np.load(npy).shape == (16, 100)
    r = run("ganjax.sample", f"--workdir={trained}", "--num=500", f"--out={png}")
    assert r.returncode == 0, r.stderr
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (("--num=4", "--out=x.jpg"), r"extension '.jpg'; valid: .npy, .png"),
    (("--num=0", "--out=x.npy"), r"--num must be > 0"),
    (("--num=4", "--out=x.npy", "--step=7"), r"no checkpoint at step 7.*available steps"),
])
def test_sample_bad_input(trained, tmp_path, args, message):
    import re

    r = run("ganjax.sample", f"--workdir={trained}", *args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert re.search(message, r.stderr), r.stderr


def test_sample_from_non_workdir(tmp_path):
    r = run("ganjax.sample", f"--workdir={tmp_path}", "--out=x.npy")
    assert r.returncode != 0 and "not a ganjax workdir" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_rerun_resumes(tmp_path, sig):
    workdir = str(tmp_path / "w")
    cmd = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py", f"--workdir={workdir}",
           "--config.num_steps=1000000", "--config.checkpoint_every=0", "--config.log_every=50"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    metrics = os.path.join(workdir, "metrics.jsonl")
    while time.time() < deadline and not (os.path.exists(metrics) and os.path.getsize(metrics) > 0):
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "checkpoint saved" in err
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
    assert steps and steps[-1] > 0
    r = run("ganjax.main", "--config=configs/gaussian_1d.py", f"--workdir={workdir}",
            f"--config.num_steps={steps[-1] + 5}", "--config.checkpoint_every=0")
    assert r.returncode == 0, r.stderr
    assert f"resuming from step {steps[-1]}" in r.stderr
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert config["num_steps"] == steps[-1] + 5


def test_kill_9_then_rerun_continues_from_last_checkpoint(tmp_path):
    workdir = str(tmp_path / "w")
    cmd = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py", f"--workdir={workdir}",
           "--config.num_steps=1000000", "--config.checkpoint_every=100", "--config.log_every=100"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stderr=subprocess.DEVNULL)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    deadline = time.time() + 90
    while time.time() < deadline:
        done = [s for s in (os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else []) if s.isdigit()]
        if len(done) >= 2:
            break
        time.sleep(0.1)
    proc.kill()  # SIGKILL: no handler runs, the lock file stays behind
    proc.wait(timeout=30)
    assert os.path.exists(os.path.join(workdir, ".lock"))
    complete = sorted(int(s) for s in os.listdir(ckpt_dir) if s.isdigit())
    r = run("ganjax.main", "--config=configs/gaussian_1d.py", f"--workdir={workdir}",
            f"--config.num_steps={complete[-1] + 10}", "--config.checkpoint_every=100")
    assert r.returncode == 0, r.stderr
    assert f"resuming from step {complete[-1]}" in r.stderr
    assert "stale lock" in r.stderr


def test_second_process_on_a_busy_workdir_is_refused(tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / ".lock").write_text(str(os.getppid()))  # a live process holds it
    r = run("ganjax.main", G1D, f"--workdir={workdir}")
    assert r.returncode == 2 and "is in use by process" in r.stderr
    assert not (workdir / "config.json").exists()
