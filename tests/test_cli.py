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


def snapshot(folder):
    """Every file (its bytes) and folder (``None``) under ``folder``, keyed by path relative to it."""
    from tests.test_reliability import tree_contents

    return tree_contents(folder)


G1D = "--config=configs/gaussian_1d.py:quick"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("cli") / "g1d")
    r = run("ganjax.main", G1D, f"--workdir={workdir}")
    assert r.returncode == 0, r.stderr
    return workdir


MAIN, SAMPLE, EVALUATE = "ganjax.main", "ganjax.sample", "ganjax.evaluate"
FM_QUICK = "--config=configs/fashion_mnist_mlp.py:quick"

# (module, arguments, regex the single error line must match). Every case must
# exit non-zero with exactly one stderr line, "ganjax: error: ...", no
# traceback, and create, change or remove nothing under the trained workdir's
# parent, the bad-files folder or the sample output folder (files and folders).
BAD_INVOCATIONS = [
    # unknown names
    (MAIN, [G1D, "--config.loss=wgan"], r"unknown loss 'wgan'; valid choices: hinge, least_squares, minimax, non_saturating, ragan, ralsgan, rsgan, wasserstein"),
    (MAIN, [G1D, "--config.penalty=gp"], r"unknown penalty 'gp'; valid choices: dragan, none, r1, r2, wgan_gp"),
    (MAIN, [G1D, "--config.model.generator=resnet"], r"unknown generator 'resnet'; valid choices: ae_decoder, biggan, dcgan, dcgan_upsample, infogan, mlp, sngan_cnn, sngan_resnet"),
    (MAIN, [G1D, "--config.model.discriminator=big"], r"unknown discriminator 'big'; valid choices: biggan, dcgan, dcgan_upsample, infogan, keras_conv, mlp, "
     r"sngan_cnn, sngan_resnet"),
    (MAIN, [G1D, "--config.parallel=tpu"], r"unknown parallel mode 'tpu'; valid choices: none, pmap, shard_map"),
    (MAIN, [G1D, "--config.compute_dtype=float16"], r"unknown compute_dtype 'float16'; valid choices: bfloat16, float32"),
    (MAIN, [G1D, "--config.model.noise=cauchy"], r"unknown model.noise 'cauchy'; valid choices: normal, uniform, uniform_signed"),
    (MAIN, [G1D, "--config.optimizer_g.name=lion"], r"unknown optimizer_g.name 'lion'; valid choices: adam, rmsprop, sgd"),
    (MAIN, [G1D, "--config.update_rule=async"], r"unknown update_rule 'async'; valid choices: alternating, simultaneous"),
    (MAIN, [G1D, "--config.on_nonfinite=ignore"], r"unknown on_nonfinite 'ignore'; valid choices: skip_step, stop"),
    (MAIN, [G1D, "--config.eval.metrics=fdi"], r"unknown metric 'fdi'; valid choices: .*fid"),
    (MAIN, [G1D, "--config.eval.metrics=fid"], r"metric 'fid' does not apply to gaussian_1d data; valid for it: gaussian_1d"),
    (MAIN, [G1D, "--config.model.g.activation=swish"], r"model.g.activation = \('swish',\) is invalid; it must be one of leaky_relu, leaky_relu_0.1, linear"),
    (MAIN, [G1D, "--config.model.d.features=median"], r"model.d.features = 'median' is invalid; it must be one of raw, moments"),
    (MAIN, [G1D, "--config.dataset=imagenot"], r"imagenot"),
    (MAIN, [G1D, "--config.lossy=hinge"], r"no such config key lossy; Did you mean \"loss\".*--print_config"),
    (MAIN, [G1D, "--config.dataset=nonsense_data"], r"unknown dataset 'nonsense_data'; valid choices: gaussian_1d, "
     r"ring_2d, grid_2d, mnist, fashion_mnist, cifar10, celeb_a, cats_vs_dogs, another TFDS"),
    (MAIN, [G1D, "--config.data.radius=3.0"], r"no such config key radius"),
    (MAIN, ["--config=configs/gaussian_1d.py:fast"], r"unknown config variant\(s\) \['fast'\]; valid variants: quick, rounds200"),
    (MAIN, ["--config=configs/nosuch.py"], r"cannot load --config=configs/nosuch.py: .*No such file"),
    (MAIN, [G1D, "--nosuchflag"], r"Unknown command line flag 'nosuchflag'"),
    # wrong types
    (MAIN, [G1D, "--config.batch_size=abc"], r"--config.batch_size=abc: invalid literal for int"),
    (MAIN, [G1D, "--config.seed=1.5"], r"--config.seed=1.5: invalid literal for int"),
    (MAIN, [G1D, "--config.sync_batch_norm=maybe"], r"Non-boolean argument to boolean flag"),
    (MAIN, [G1D, "--config.model.g.hidden=(0,4)"], r"model.g.hidden = \(0, 4\) is invalid; it must be a non-empty list of positive integers"),
    # negative, zero or out-of-range sizes and values
    (MAIN, [G1D, "--config.batch_size=0"], r"batch_size must be > 0, got 0"),
    (MAIN, [G1D, "--config.batch_size=-3"], r"batch_size must be > 0, got -3"),
    (MAIN, [G1D, "--config.num_steps=-5"], r"num_steps must be >= 0, got -5"),
    (MAIN, [G1D, "--config.n_disc=0"], r"n_disc must be >= 1, got 0"),
    (MAIN, [G1D, "--config.keep_checkpoints=0"], r"keep_checkpoints must be >= 1, got 0"),
    (MAIN, [G1D, "--config.log_every=-1"], r"log_every must be >= 0 \(0 = never\), got -1"),
    (MAIN, [G1D, "--config.model.z_dim=0"], r"model.z_dim must be a positive integer, got 0"),
    (MAIN, [G1D, "--config.ema_decay=1.5"], r"ema_decay must be in \[0, 1\), got 1.5"),
    (MAIN, [G1D, "--config.penalty_weight=-1.0"], r"penalty_weight must be >= 0, got -1.0"),
    (MAIN, [G1D, "--config.optimizer_d.learning_rate=-1.0"], r"optimizer_d.learning_rate must be > 0"),
    (MAIN, [G1D, "--config.optimizer_g.b1=1.5"], r"optimizer_g.b1 must be in \[0, 1\), got 1.5"),
    (MAIN, [G1D, "--config.optimizer_d.clip_value=-0.1"], r"optimizer_d.clip_value must be >= 0"),
    (MAIN, [G1D, "--config.model.d.dropout=1.5"], r"model.d.dropout = 1.5 is invalid; it must be a rate in \[0, 1\)"),
    (MAIN, [G1D, "--config.eval.num_samples=-1"], r"eval.num_samples must be an integer >= 0"),
    (MAIN, [G1D, "--config.update_rule=simultaneous", "--config.n_disc=2"], r"update_rule='simultaneous' needs n_disc=1"),
    # architectures that cannot take the data; configs that do not fit the checkpoint
    (MAIN, [G1D, "--config.model.discriminator=keras_conv", "--config.model.d={}"],
     r"discriminator 'keras_conv' needs examples of rank 3 .* gives shape \(100,\)"),
    (MAIN, [G1D, "--config.model.g.hidden=(32,16)"], r"does not fit this config .* config keys that differ from .*: model.g.hidden"),
    (MAIN, [G1D, "--config.data.length=50"], r"does not fit this config .*data.length"),
    # missing or corrupt data
    (MAIN, [FM_QUICK, "--config.dataset=idx:/nonexistent-idx-folder"], r"/nonexistent-idx-folder"),
    (MAIN, [FM_QUICK, "--config.dataset=idx:{corrupt_idx}"], r"train-images-idx3-ubyte is truncated"),
    # unusable workdirs and bad sample/evaluate requests
    (MAIN, [G1D, "--workdir={a_file}"], r"--workdir=.*a_file is a file, not a folder"),
    (MAIN, [G1D, "--workdir={a_file}/run"], r"--workdir=.*a_file/run lies under .*a_file, which is a file"),
    # resuming with another experiment
    (MAIN, [G1D, "--config.loss=hinge"], r"at step 40 would change experiment-defining config keys: loss "
     r"'non_saturating' -> 'hinge'; .*--allow_config_change"),
    (MAIN, [G1D, "--print_config", "--config.ema_decay=2.0"], r"ema_decay must be in \[0, 1\), got 2.0"),
    (SAMPLE, ["--num=4", "--out=x.jpg"], r"extension '.jpg'; valid: .npy, .png"),
    (SAMPLE, ["--num=0", "--out=x.npy"], r"--num must be > 0"),
    (SAMPLE, ["--num=4", "--out=x.npy", "--step=7"], r"no checkpoint at step 7.*available steps"),
    (EVALUATE, ["--metrics=mode_coverage"], r"metric 'mode_coverage' does not apply to gaussian_1d data"),
    (EVALUATE, ["--all", "--step=20"], r"--all and --step exclude each other"),
    (EVALUATE, ["--workdir=/nonexistent-ganjax-workdir"], r"--workdir='/nonexistent-ganjax-workdir' does not exist"),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    corrupt = folder / "idx"
    corrupt.mkdir()
    (corrupt / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    (corrupt / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    a_file = folder / "a_file"
    a_file.write_text("not a folder")
    return {"corrupt_idx": str(corrupt), "a_file": str(a_file)}


def test_at_least_30_bad_invocations_are_tabled():
    assert len(BAD_INVOCATIONS) >= 30


@pytest.mark.parametrize("module,args,message", BAD_INVOCATIONS,
                         ids=[f"{m.split('.')[-1]}:{' '.join(a)[-60:]}" for m, a, _ in BAD_INVOCATIONS])
def test_bad_invocation_is_one_clear_line_and_touches_nothing(trained, bad_files, tmp_path, module, args, message):
    import re

    watched = [os.path.dirname(trained), os.path.dirname(bad_files["a_file"])]  # every workdir's parent here
    before = [snapshot(folder) for folder in watched]
    for name, value in bad_files.items():
        args = [a.replace("{" + name + "}", value) for a in args]
    if not any(a.startswith("--workdir=") for a in args):
        args.append(f"--workdir={trained}")
    workdir = next(a.split("=", 1)[1] for a in args if a.startswith("--workdir="))
    existed = os.path.exists(workdir)
    if module == SAMPLE:
        args = [a.replace("--out=", f"--out={tmp_path}/") for a in args]
    r = run(module, *args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganjax: error:"), r.stderr
    assert re.search(message, lines[0]), lines[0]
    assert [snapshot(folder) for folder in watched] == before
    assert os.path.exists(workdir) == existed
    assert not os.listdir(tmp_path)


def test_verbose_shows_the_traceback(trained):
    r = run(MAIN, G1D, f"--workdir={trained}", "--config.loss=wgan", "--verbose")
    assert r.returncode == 2 and "Traceback (most recent call last)" in r.stderr
    assert "ganjax: error: unknown loss 'wgan'" in r.stderr


def test_missing_dataset_says_how_to_get_it(tmp_path):
    workdir = str(tmp_path / "fm")
    r = run("ganjax.main", "--config=configs/fashion_mnist_mlp.py:quick", f"--workdir={workdir}",
            f"--config.data_dir={tmp_path / 'empty_tfds'}", "--config.dataset=idx:/nonexistent-idx-folder")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "/nonexistent-idx-folder" in r.stderr
    assert not os.path.exists(workdir)  # a failed start leaves no empty workdir behind


def test_print_config_shows_the_resolved_config_and_creates_nothing(tmp_path):
    workdir = tmp_path / "never"
    r = run(MAIN, G1D, "--config.loss=hinge", "--config.model.g.hidden=(8,8)", "--print_config",
            f"--workdir={workdir}")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["loss"] == "hinge" and printed["model"]["g"]["hidden"] == [8, 8]
    assert printed["num_steps"] == 40  # the quick variant applied
    assert not workdir.exists()
    r = run(MAIN, G1D)
    assert r.returncode == 2 and "ganjax: error: --workdir is missing" in r.stderr, r.stderr


def test_sample_writes_npy_and_png(trained, tmp_path):
    npy, png = str(tmp_path / "s.npy"), str(tmp_path / "s.png")
    r = run("ganjax.sample", f"--workdir={trained}", "--num=16", f"--out={npy}", "--ema")
    assert r.returncode == 0, r.stderr
    assert np.load(npy).shape == (16, 100)
    r = run("ganjax.sample", f"--workdir={trained}", "--num=500", f"--out={png}")
    assert r.returncode == 0, r.stderr
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_sample_from_non_workdir(tmp_path):
    r = run("ganjax.sample", f"--workdir={tmp_path}", "--out=x.npy")
    assert r.returncode != 0 and "not a ganjax workdir" in r.stderr


# SIGINT (Ctrl-C) takes the same handler as SIGTERM: -m slow, for CI time.
@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
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
    sent = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - sent < 20, "a preempted run must save and exit within a bounded time"
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
