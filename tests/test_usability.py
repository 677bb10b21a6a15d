"""What a new user meets first: the start-up line, progress and ETA, the installed package."""

import os
import subprocess
import sys

from tests.conftest import ROOT

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"}


def test_startup_line_names_config_variants_overrides_backend_devices_and_parallel_mode():
    from ganjax.main import config_overrides, startup_line

    argv = ["--config=configs/ring_2d.py:quick", "--workdir=w", "--config.loss=hinge", "--config.parallel=pmap"]
    line = startup_line("configs/ring_2d.py:quick", config_overrides(argv), "cpu", 8, "pmap", 8)
    assert line == ("config=configs/ring_2d.py variants=quick overrides=loss=hinge parallel=pmap backend=cpu "
                    "devices=8 parallel=pmap on 8 devices")
    assert startup_line("configs/gaussian_1d.py", [], "gpu", 1, "none", 1) == (
        "config=configs/gaussian_1d.py variants=none overrides=none backend=gpu devices=1 parallel=none on 1 device")


def test_eta_counts_from_the_end_of_the_compiling_step():
    from ganjax.progress import EtaClock

    clock = EtaClock(num_steps=101)
    assert clock.eta(1, 5.0) == "after the first step"  # nothing timed yet
    clock.start(1, now=5.0)  # the first step took 5 s: compilation
    assert clock.eta(1, 5.0) == "after the first step"
    # 10 steps in 1 s after compilation: 90 steps left take 9 s, not (5 + 1) s / 11 steps * 90 = 49 s.
    assert clock.eta(11, 6.0) == "0m09s"


def test_done_counts_only_the_steps_run_now():
    from ganjax.progress import describe_done

    assert describe_done(0, 20) == "20 steps"
    assert describe_done(553, 563) == "10 steps (554-563; resumed at step 553)"
    assert describe_done(40, 40) == "0 steps"


def test_a_run_and_its_resume_log_the_startup_line_and_the_steps_of_this_run(tmp_path):
    workdir = str(tmp_path / "w")
    train = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py:quick", f"--workdir={workdir}",
             "--config.eval_every=0", "--config.sample_every=0"]
    r = subprocess.run(train + ["--config.loss=hinge"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert ("config=configs/gaussian_1d.py variants=quick overrides=eval_every=0 sample_every=0 loss=hinge "
            "backend=cpu devices=1 parallel=none on 1 device") in r.stderr
    assert "done: 40 steps in" in r.stderr
    r = subprocess.run(train + ["--config.loss=hinge", "--config.num_steps=50"], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming from step 40 (changed config keys: num_steps 40 -> 50)" in r.stderr
    assert "done: 10 steps (41-50; resumed at step 40) in" in r.stderr


def test_console_scripts_in_pyproject_run_the_same_commands_as_python_m():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert set(scripts) == {"ganjax-train", "ganjax-sample", "ganjax-evaluate", "ganjax-sweep"}

    def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
        """Runs entry point ``name`` as an installed script does: its function, called with the script's argv
        (each in its own process: the four CLIs define overlapping absl flags)."""
        module, function = scripts[name].split(":")
        code = (f"import sys; from {module} import {function} as f; assert callable(f); "
                f"sys.argv = {[name, *args]!r}; f()")
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                              timeout=120)

    # Without arguments each one is its command line: one clear error about the missing flags, status 2.
    for name, missing in (("ganjax-train", "--config"), ("ganjax-sample", "--workdir"),
                          ("ganjax-evaluate", "--workdir"), ("ganjax-sweep", "--config")):
        r = run_script(name)
        errors = [line for line in r.stderr.splitlines() if line.startswith("ganjax: error:")]
        assert r.returncode == 2 and len(errors) == 1 and missing in errors[0], (name, r.stderr)
    r = run_script("ganjax-train", "--config=configs/gaussian_1d.py:quick", "--print_config")
    assert r.returncode == 0 and '"dataset": "gaussian_1d"' in r.stdout, r.stderr


def test_version_comes_from_the_package_metadata_or_pyproject():
    import tomllib

    import ganjax

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        assert ganjax.__version__ == tomllib.load(f)["project"]["version"]


def test_sweep_base_resolves_relative_to_the_sweep_file_from_any_working_directory(tmp_path, monkeypatch):
    from ganjax.sweep import spec

    sweep_file = os.path.join(ROOT, "configs", "sweeps", "ring_losses.py")
    monkeypatch.chdir(tmp_path)  # configs/ring_2d.py does not exist from here
    s = spec.load_sweep_file(sweep_file, "quick")
    assert s.base == os.path.join(ROOT, "configs", "ring_2d.py") + ":quick"
    assert spec.trial_configs(s, spec.expand(s)[:1])[0].dataset == "ring_2d"
    # A sweep file next to its base config, as a user writes one in their own folder.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "base.py").write_text(
        "from ganjax.config import mixture_config\n\ndef get_config(arg=None):\n"
        "    return mixture_config('grid_2d', arg)\n")
    (tmp_path / "mine" / "sweep.py").write_text(
        "from ganjax.sweep.spec import axis, sweep_config\n\ndef get_config(arg=None):\n"
        "    return sweep_config(base='base.py:quick', axes=[axis('loss', grid=('hinge',))])\n")
    monkeypatch.chdir(ROOT)
    s = spec.load_sweep_file(str(tmp_path / "mine" / "sweep.py"))
    assert spec.trial_configs(s, spec.expand(s))[0].dataset == "grid_2d"
    # The working directory still comes first (the old behaviour, unchanged strings).
    assert spec.resolve_base("configs/ring_2d.py:quick", sweep_file) == "configs/ring_2d.py:quick"


def test_tensorboard_reads_the_event_files_a_run_writes(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ganjax.writers import MetricWriter

    writer = MetricWriter(str(tmp_path))
    for step, loss in ((10, 1.5), (20, 1.25)):
        writer.write(step, {"d_loss": loss, "g_loss": 0.5})
    writer.write_eval(20, {"generator": "ema", "fid": 12.5})
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert {"d_loss", "g_loss", "eval/ema/fid"} <= set(events.Tags()["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("d_loss")] == [(10, 1.5), (20, 1.25)]


def test_a_run_writes_tensorboard_events_without_importing_torch_which_stays_importable(tmp_path):
    """tensorboardX would import PyTorch (2 s of each process's start-up) for nothing; a fresh process
    writes its events without it, and can import torch afterwards."""
    code = ("import sys, numpy as np\n"
            "from ganjax.writers import MetricWriter\n"
            f"w = MetricWriter({str(tmp_path)!r})\n"
            "w.write(1, {'d_loss': 1.0}); w.write_image(1, 'samples', np.zeros((4, 4, 3), np.uint8)); w.close()\n"
            "print('torch' in sys.modules)\n"
            "import torch\n"
            "print(callable(torch.zeros))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]
    assert [f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents.")]


def test_first_evaluation_announces_the_one_time_classifier_training_with_eta_and_cache_path(
        fashion_data_dir, tmp_path, caplog):
    from ganjax.metrics import classifier

    with caplog.at_level("INFO", logger="ganjax"):
        classifier.load_classifier("fashion_mnist", fashion_data_dir, str(tmp_path), num_steps=3)
    path = classifier.cache_path("fashion_mnist", str(tmp_path))
    assert os.path.exists(path)
    assert f"one-time setup: training the fashion_mnist domain classifier" in caplog.text
    assert f"it is cached at {path} and every later evaluation reuses it" in caplog.text
    assert "step 3/3" in caplog.text and ", ETA 0m00s" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="ganjax"):
        classifier.load_classifier("fashion_mnist", fashion_data_dir, str(tmp_path))  # cached: no notice
    assert "one-time" not in caplog.text
