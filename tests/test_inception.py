"""The FID Inception-v3 port: parity with pytorch-fid, weight files, errors.

The parity test builds pytorch-fid's network with random weights (every conv,
BatchNorm scale/shift/running statistics and the fc layer), so no download is
needed and a wrong conversion cannot hide behind identity BatchNorms. It is
skipped, with the reason, when torch / torchvision / pytorch-fid are missing.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest

from experiments.pytorch_fid_ref import import_pytorch_fid, random_fid_inception
from ganjax.errors import DataError
from ganjax.metrics import inception

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------
# Helpers.


def _import_torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install torch)")


def _import_pytorch_fid():
    """``(torch, pytorch_fid.inception)``, or skip with the reason."""
    _import_torch()
    try:
        return import_pytorch_fid()
    except ImportError as e:
        pytest.skip(f"pytorch-fid's reference network is not importable ({e}); "
                    f"pip install torchvision pytorch-fid")


def _torch_name(path: tuple[str, ...]) -> str:
    """Flax variable path → pytorch-fid state-dict key (the inverse of the conversion, for tests)."""
    coll, *mods, leaf = path
    leaf = {("params", "kernel"): "weight", ("params", "scale"): "weight", ("params", "bias"): "bias",
            ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}[(coll, leaf)]
    return ".".join([*mods, leaf])


def _random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """A random float32 state dict with pytorch-fid's keys and shapes (torch layouts)."""
    rng = np.random.default_rng(seed)
    out = {}
    for path, shape in inception.variable_shapes().items():
        if path[-1] == "kernel":
            shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape[::-1]
        value = rng.standard_normal(shape, dtype=np.float32)
        out[_torch_name(path)] = np.abs(value) + 0.5 if path[-1] == "var" else value
        if path[-1] == "var":
            out[_torch_name(path).replace("running_var", "num_batches_tracked")] = np.array(0, np.int64)
    return out


def _assert_one_line_naming(err: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, (part, message)


def _leaves_equal(a, b) -> None:
    import jax

    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        np.testing.assert_array_equal(x, y, err_msg=str(path))


# ---------------------------------------------------------------------------
# Parity with pytorch-fid.


@pytest.fixture(scope="module")
def torch_fid():
    """pytorch-fid's FID Inception with random weights: ``(torch, fid_inception_v3 net, InceptionV3 wrapper)``."""
    _import_pytorch_fid()
    return random_fid_inception(seed=0)


def _torch_outputs(torch_fid, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pytorch-fid on NHWC images in [-1, 1] (the wrapper takes [0, 1] NCHW; gray is repeated)."""
    torch, net, wrapper = torch_fid
    x = torch.from_numpy(np.ascontiguousarray(((images + 1) / 2).transpose(0, 3, 1, 2)))
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    with torch.no_grad():
        pool3 = wrapper(x)[0].flatten(1)
        logits = net.fc(pool3)
    return pool3.numpy(), logits.numpy()


def test_resize_matches_torch_interpolate():
    torch = _import_torch()
    import jax
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    for h, w in [(28, 28), (64, 48), (299, 299), (300, 299), (512, 400), (1000, 37)]:
        x = rng.uniform(-1, 1, (2, h, w, 3)).astype(np.float32)
        ours = np.asarray(inception.resize_bilinear(x))
        ref = F.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=(299, 299), mode="bilinear",
                            align_corners=False).numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0, err_msg=f"{h}x{w}")
    # jax.image.resize antialiases when shrinking: pytorch-fid does not.
    x = rng.uniform(-1, 1, (1, 512, 400, 3)).astype(np.float32)
    assert np.abs(np.asarray(jax.image.resize(x, (1, 299, 299, 3), "bilinear")
                             - inception.resize_bilinear(x))).max() > 1e-2


def test_parity_with_pytorch_fid(torch_fid):
    """pool3 features and logits equal pytorch-fid's, for inputs at 299, upsampled, downsampled and gray."""
    _, net, _ = torch_fid
    variables = inception.torch_state_dict_to_variables({k: v.numpy() for k, v in net.state_dict().items()})
    module = inception.FIDInceptionV3()
    rng = np.random.default_rng(0)
    groups = {
        "299x299 RGB": rng.uniform(-1, 1, (2, 299, 299, 3)),
        "64x64 RGB (upsampled)": rng.uniform(-1, 1, (2, 64, 64, 3)),
        "340x320 RGB (downsampled)": rng.uniform(-1, 1, (1, 340, 320, 3)),
        "28x28 gray, 3 images in batches of 2": rng.uniform(-1, 1, (3, 28, 28, 1)),
    }
    fn = inception.make_feature_fn(module, variables, batch_size=2)
    for name, images in groups.items():
        images = images.astype(np.float32)
        ref_features, ref_logits = _torch_outputs(torch_fid, images)
        assert ref_features.std() > 0.3 and np.abs(ref_features).max() < 20, "activations should be O(1)"
        features, logits = fn(images)
        assert features.shape == (len(images), 2048) and logits.shape == (len(images), 1008), name
        assert features.dtype == np.float64, name
        np.testing.assert_allclose(features, ref_features, atol=1e-4, rtol=0, err_msg=name)
        np.testing.assert_allclose(logits, ref_logits, atol=1e-4, rtol=0, err_msg=name)


# ---------------------------------------------------------------------------
# Conversion and files.


def test_conversion_layouts_and_errors():
    state = _random_state_dict()
    variables = inception.torch_state_dict_to_variables(state)
    conv = "Mixed_6b.branch7x7_2.conv.weight"  # a (1, 7) kernel: OIHW [160, 160, 1, 7]
    np.testing.assert_array_equal(variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"],
                                  state[conv].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(variables["params"]["fc"]["kernel"], state["fc.weight"].T)
    np.testing.assert_array_equal(variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                  state["Mixed_7c.branch_pool.bn.running_var"])
    assert variables["params"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (3, 3, 3, 32)

    with pytest.raises(DataError) as err:
        inception.torch_state_dict_to_variables({k: v for k, v in state.items() if k != "fc.bias"})
    _assert_one_line_naming(err, "missing", "fc/bias")
    with pytest.raises(DataError) as err:
        inception.torch_state_dict_to_variables({**state, "AuxLogits.fc.weight": np.zeros((1008, 768))})
    _assert_one_line_naming(err, "unexpected", "AuxLogits.fc.weight")
    with pytest.raises(DataError) as err:
        inception.torch_state_dict_to_variables({**state, "Mixed_5b.branch1x1.bn.running_mean": np.zeros(3)})
    _assert_one_line_naming(err, "wrong shape", "Mixed_5b/branch1x1/bn/mean")


def test_npz_round_trip_is_deterministic(tmp_path):
    variables = inception.torch_state_dict_to_variables(_random_state_dict())
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    inception.save_variables(a, variables)
    inception.save_variables(b, variables)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read(), "the same variables must give the same bytes (and sha256)"
    module, loaded, sha = inception.load_inception(a)
    assert isinstance(module, inception.FIDInceptionV3)
    assert sha == inception.sha256_file(a) and len(sha) == 64
    _leaves_equal(loaded, variables)
    assert inception.load_inception(a, expected_sha256=sha.upper())[2] == sha
    with pytest.raises(DataError) as err:
        inception.load_inception(a, expected_sha256="0" * 64)
    _assert_one_line_naming(err, a, sha, "0" * 64)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pth_reads_without_torch_and_converts(tmp_path, zip_format, monkeypatch):
    torch = _import_torch()
    state = _random_state_dict()
    pth = str(tmp_path / inception.PTH_NAME)
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth, _use_new_zipfile_serialization=zip_format)
    read = inception.read_pth(pth)  # no torch involved
    assert read.keys() == state.keys()
    for k in state:
        np.testing.assert_array_equal(read[k], state[k], err_msg=k)
    # The cache: a .pth placed there is converted to the .npz on first use; the .npz is used after.
    # (A stand-in for the release file: its own sha256 prefix takes the place of 6726825d.)
    monkeypatch.setattr(inception, "PTH_SHA256_PREFIX", inception.sha256_file(pth)[:8])
    _, variables, sha = inception.load_inception(cache_dir=str(tmp_path), download=False)
    npz = str(tmp_path / inception.NPZ_NAME)
    assert os.path.exists(npz) and sha == inception.sha256_file(npz)
    _leaves_equal(variables, inception.torch_state_dict_to_variables(state))
    os.remove(pth)
    assert inception.load_inception(cache_dir=str(tmp_path), download=False)[2] == sha


def test_refuses_pickled_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    pth = str(tmp_path / "evil.pth")
    with zipfile.ZipFile(pth, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"fc.weight": Evil()}))
    with pytest.raises(pickle.UnpicklingError):
        inception.read_pth(pth)
    with pytest.raises(DataError) as err:
        inception.read_weights(pth)
    _assert_one_line_naming(err, pth)
    assert not marker.exists()


def test_missing_weights_offline(tmp_path):
    cache = str(tmp_path / "cache")
    with pytest.raises(DataError) as err:
        inception.load_inception(cache_dir=cache, download=False)
    _assert_one_line_naming(err, inception.PTH_NAME, cache, inception.WEIGHTS_URL)
    with pytest.raises(DataError) as err:
        inception.load_inception(str(tmp_path / "nowhere.npz"))
    _assert_one_line_naming(err, str(tmp_path / "nowhere.npz"), "does not exist")


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    cache = str(tmp_path / "cache")
    with pytest.raises(DataError) as err:
        inception.load_inception(cache_dir=cache)
    _assert_one_line_naming(err, "cannot download", "name resolution", inception.PTH_NAME, cache,
                            inception.WEIGHTS_URL)
    assert not os.path.exists(cache) or not os.listdir(cache), "no partial files are left"


def test_download_converts_into_cache(tmp_path, monkeypatch):
    torch = _import_torch()
    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in _random_state_dict().items()}, buffer)
    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setenv("GANJAX_CACHE", str(tmp_path))
    # The release file's sha256 starts with 6726825d; these stand-in bytes are refused...
    with pytest.raises(DataError) as err:
        inception.load_inception()
    _assert_one_line_naming(err, inception.PTH_NAME, "not pytorch-fid's release file")
    assert not os.path.exists(tmp_path / inception.NPZ_NAME)
    os.remove(tmp_path / inception.PTH_NAME)
    # ...and accepted when their own hash is the expected one.
    import hashlib

    monkeypatch.setattr(inception, "PTH_SHA256_PREFIX", hashlib.sha256(buffer.getvalue()).hexdigest()[:8])
    urls.clear()
    _, _, sha = inception.load_inception()
    assert urls == [inception.WEIGHTS_URL]
    assert sorted(os.listdir(tmp_path)) == [inception.NPZ_NAME, inception.PTH_NAME]
    assert sha == inception.sha256_file(str(tmp_path / inception.NPZ_NAME))
    assert inception.load_inception()[2] == sha and len(urls) == 1, "the cached .npz is reused"


@pytest.mark.parametrize("name", ["weights.npz", "weights.pth"])
def test_corrupt_file_is_one_line(tmp_path, name):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(b"not weights at all" * 100)
    with pytest.raises(DataError) as err:
        inception.load_inception(path)
    _assert_one_line_naming(err, path, "cannot read")


def test_truncated_cached_npz_is_one_line(tmp_path):
    good = str(tmp_path / "good.npz")
    inception.save_variables(good, inception.torch_state_dict_to_variables(_random_state_dict()))
    cached = str(tmp_path / inception.NPZ_NAME)
    with open(good, "rb") as src, open(cached, "wb") as dst:
        dst.write(src.read()[: os.path.getsize(good) // 2])
    with pytest.raises(DataError) as err:
        inception.load_inception(cache_dir=str(tmp_path), download=False)
    _assert_one_line_naming(err, cached)


def test_wrong_network_npz(tmp_path):
    path = str(tmp_path / "other.npz")
    np.savez(path, **{"params/Dense_0/kernel": np.zeros((3, 3), np.float32)})
    with pytest.raises(DataError) as err:
        inception.load_inception(path)
    _assert_one_line_naming(err, path, "not the FID Inception-v3")


# ---------------------------------------------------------------------------
# Batching (a stand-in network, so nothing big compiles).


def test_feature_fn_batches_pads_and_rescales_uint8():
    import jax.numpy as jnp
    from flax import linen as nn

    class Probe(nn.Module):
        @nn.compact
        def __call__(self, x):
            first = x[:, 0, 0, :1]
            return jnp.broadcast_to(first, (len(x), 2048)), jnp.broadcast_to(-first, (len(x), 1008))

    fn = inception.make_feature_fn(Probe(), {}, batch_size=4)
    images = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((7, 5, 6, 1), np.uint8)
    features, logits = fn(images)
    assert features.shape == (7, 2048) and logits.shape == (7, 1008) and features.dtype == np.float64
    np.testing.assert_allclose(features[:, 0], np.arange(7) / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(logits[:, 5], -(np.arange(7) / 127.5 - 1), atol=1e-6)
    assert fn(np.zeros((0, 5, 6, 1), np.float32))[0].shape == (0, 2048)
    with pytest.raises(DataError):
        fn(np.zeros((2, 5, 6, 4), np.float32))
    with pytest.raises(DataError):
        fn(np.zeros((5, 6, 3), np.float32))


# ---------------------------------------------------------------------------
# Command line.


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "ganjax.metrics.inception", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_cli_convert(tmp_path):
    torch = _import_torch()
    pth, out = str(tmp_path / "w.pth"), str(tmp_path / "sub" / "w.npz")
    torch.save({k: torch.from_numpy(v) for k, v in _random_state_dict().items()}, pth)
    result = _cli(f"--convert={pth}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and out in lines[0] and inception.sha256_file(out) in lines[0]
    assert inception.load_inception(out)[2] == inception.sha256_file(out)


def test_cli_errors_are_one_line(tmp_path):
    bad = str(tmp_path / "bad.pth")
    with open(bad, "wb") as f:
        f.write(b"\x00" * 64)
    for args, expected in [((f"--convert={bad}", f"--out={tmp_path / 'x.npz'}"), bad),
                           ((f"--convert={tmp_path / 'missing.pth'}",), "does not exist")]:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ganjax: error:") and expected in lines[0], result.stderr
