"""The public registration API (ganjax.register_*) and the config key ``imports``.

Registration as a call and as a decorator, the same checks as the built-ins
(signatures refused with the expected one in the message, taken names refused
unless ``override=True``), unknown names listing built-in and registered
names, and ``imports``: files and module names, resolved paths, one error
line for a missing or raising module, and a tiny training run whose loss,
penalty, generator, discriminator, dataset and metric all come from a user file.
"""

import json
import os
import sys
import textwrap

import flax.linen as nn
import jax.numpy as jnp
import pytest

import ganjax
from ganjax import config as config_lib
from ganjax import losses, penalties, user_modules
from ganjax.data import toy
from ganjax.errors import ConfigError
from ganjax.metrics import evaluator
from ganjax.models import DISCRIMINATORS, GENERATORS
from tests.conftest import load_config

REGISTRIES = (losses.LOSSES, penalties.PENALTIES, GENERATORS, DISCRIMINATORS, evaluator.METRICS, toy.TOY_DATASETS)


@pytest.fixture(autouse=True)
def clean_registries():
    """Each test starts and ends with the built-ins only, and nothing imported through ``imports`` (tests in
    other files, run before in the same process, may have registered a user module's names)."""
    def clean() -> None:
        for registry in REGISTRIES:
            for name in registry.user_names:
                registry.unregister(name)
        user_modules._IMPORTED.clear()

    clean()
    yield
    clean()


def d_hinge(real_logits, fake_logits):
    return jnp.mean(jnp.maximum(0.0, 1.0 - real_logits)) + jnp.mean(jnp.maximum(0.0, 1.0 + fake_logits))


def g_mean(fake_logits):
    return -jnp.mean(fake_logits)


class TinyG(nn.Module):
    out_shape: tuple = (2,)
    width: int = 8

    @nn.compact
    def __call__(self, z, train: bool = False):
        return nn.Dense(self.out_shape[-1])(nn.relu(nn.Dense(self.width)(z)))


class TinyD(nn.Module):
    width: int = 8

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(1)(nn.relu(nn.Dense(self.width)(x)))[:, 0]


# --- registration -----------------------------------------------------------------------------------------

def test_every_kind_registers_as_a_call_and_is_looked_up_like_a_built_in():
    loss = ganjax.register_loss("my_hinge", d_hinge, g_mean)
    assert losses.get_loss("my_hinge") is loss and not loss.g_uses_real
    assert ganjax.register_penalty("my_zero", lambda d_fn, real, fake, key, shard=None: jnp.zeros(())) is not None
    assert ganjax.register_generator("tiny", TinyG) is TinyG and ganjax.register_discriminator("tiny", TinyD) is TinyD
    fn = ganjax.register_metric("mean_x", lambda data: {"mean_x": float(data.samples[:, 0].mean())}, kind="mixture")
    builder = ganjax.register_dataset("line", lambda n=4: toy.mixture("line", jnp.arange(2 * n).reshape(n, 2) * 1.0,
                                                                      0.1), kind="mixture")
    assert callable(fn) and callable(builder)
    assert penalties.get_penalty("my_zero") is penalties.PENALTIES["my_zero"]
    assert toy.make_toy("line", n=3).modes.shape == (3, 2)
    for registry, name in zip(REGISTRIES, ("my_hinge", "my_zero", "tiny", "tiny", "mean_x", "line")):
        assert registry.user_names == [name] and name not in registry.builtin_names


def test_every_kind_registers_as_a_decorator():
    @ganjax.register_loss("rel")
    class Rel:
        def d_loss(real_logits, fake_logits):
            return jnp.mean(fake_logits - real_logits)

        def g_loss(real_logits, fake_logits):
            return jnp.mean(real_logits - fake_logits)

    @ganjax.register_penalty("zero")
    def zero(d_fn, real, fake, key, shard=None):
        return jnp.zeros(())

    @ganjax.register_metric("count", kind="gaussian_1d")
    def count(data):
        return {"count": len(data.samples)}

    @ganjax.register_dataset("const", kind="gaussian_1d")
    def const(length=3):
        return toy.ToyDistribution("const", (length,), lambda key, n: jnp.ones((n, length)), mean=1.0, std=0.0)

    assert isinstance(Rel, type) and losses.get_loss("rel").g_uses_real
    assert penalties.get_penalty("zero") is zero and evaluator.METRICS["count"].fn is count
    assert ganjax.register_generator("tiny_g")(TinyG) is TinyG and GENERATORS["tiny_g"] is TinyG
    assert ganjax.register_discriminator("tiny_d")(TinyD) is TinyD and DISCRIMINATORS["tiny_d"] is TinyD
    assert config_lib.data_kind_of("const") == "gaussian_1d"


@pytest.mark.parametrize("register,name", [
    (lambda o: ganjax.register_loss("hinge", d_hinge, g_mean, override=o), "loss 'hinge' is built-in"),
    (lambda o: ganjax.register_penalty("r1", lambda d, r, f, k, s=None: 0.0, override=o), "penalty 'r1' is built-in"),
    (lambda o: ganjax.register_generator("mlp", TinyG, override=o), "generator 'mlp' is built-in"),
    (lambda o: ganjax.register_discriminator("dcgan", TinyD, override=o), "discriminator 'dcgan' is built-in"),
    (lambda o: ganjax.register_metric("fid", lambda d: {}, kind="image", override=o), "metric 'fid' is built-in"),
    (lambda o: ganjax.register_dataset("ring_2d", lambda: None, kind="mixture", override=o),
     "toy dataset 'ring_2d' is built-in"),
])
def test_a_taken_name_is_refused_unless_override(register, name):
    with pytest.raises(ganjax.RegistrationError, match=f"^{name}; pass override=True"):
        register(False)


def test_override_replaces_and_a_second_registration_is_refused():
    ganjax.register_loss("mine", d_hinge, g_mean)
    with pytest.raises(ConfigError, match="loss 'mine' is already registered; pass override=True"):
        ganjax.register_loss("mine", d_hinge, lambda fake_logits: jnp.mean(fake_logits))
    replaced = ganjax.register_loss("mine", d_hinge, lambda fake_logits: jnp.mean(fake_logits), override=True)
    assert losses.get_loss("mine") is replaced
    ganjax.register_loss("mine", replaced.d_loss, replaced.g_loss)  # the same definition again: accepted
    # Overriding a built-in makes it a registered name; the fixture's cleanup cannot remove built-ins.
    assert "hinge" in losses.LOSSES.builtin_names


@pytest.mark.parametrize("register,expected", [
    (lambda: ganjax.register_loss("x", lambda real_logits: 0.0, g_mean),
     r"loss 'x': d_loss .*<lambda>\(real_logits\) has the wrong signature; expected d_loss\(real_logits \[B\], "
     r"fake_logits \[B\]\) -> scalar"),
    (lambda: ganjax.register_loss("x", d_hinge, lambda a, b, c: 0.0),
     r"loss 'x': g_loss .*<lambda>\(a, b, c\) has the wrong signature; expected g_loss\(fake_logits \[B\]\) -> "
     r"scalar, or g_loss\(real_logits \[B\], fake_logits \[B\]\) -> scalar"),
    (lambda: ganjax.register_loss("x")(object()), r"loss 'x': register a GANLoss.*d_loss"),
    (lambda: ganjax.register_penalty("x", lambda d_fn, real: 0.0),
     r"penalty 'x': .*<lambda>\(d_fn, real\) has the wrong signature; expected penalty\(d_fn, real \[B, \.\.\.\], "
     r"fake \[B, \.\.\.\], key, shard=None\) -> scalar"),
    (lambda: ganjax.register_generator("x", TinyD),
     r"generator 'x': TinyD lacks the field\(s\) out_shape; expected a flax.linen.Module class with a field "
     r"out_shape"),
    (lambda: ganjax.register_discriminator("x", d_hinge), r"discriminator 'x': .* is not a flax.linen.Module class"),
    (lambda: ganjax.register_metric("x", lambda a, b: {}, kind="mixture"),
     r"metric 'x': .*<lambda>\(a, b\) has the wrong signature; expected fn\(data: EvalData\)"),
    (lambda: ganjax.register_metric("x", lambda d: {}, kind="text"),
     r"metric 'x': unknown data kind 'text'; valid choices: image, mixture, gaussian_1d"),
    (lambda: ganjax.register_dataset("x", lambda n: None, kind="mixture"),
     r"dataset 'x': .*<lambda>\(n\) needs positional arguments"),
    (lambda: ganjax.register_loss("a,b", d_hinge, g_mean), r"a loss name must be a non-empty string"),
])
def test_a_wrong_signature_is_refused_at_registration_with_the_expected_one(register, expected):
    with pytest.raises(ganjax.RegistrationError, match=expected):
        register()
    assert all(not r.user_names for r in REGISTRIES)


def test_a_module_class_with_a_wrong_call_is_refused():
    class NoTrain(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x[:, 0]

    with pytest.raises(ganjax.RegistrationError, match=r"NoTrain.__call__\(self, x\) has the wrong signature; "
                                                      r"expected .*__call__\(self, x \[B, \*example_shape\], "
                                                      r"train: bool\) -> logits \[B\]"):
        ganjax.register_discriminator("no_train", NoTrain)


def test_unknown_names_list_built_in_then_registered_names():
    ganjax.register_loss("my_hinge", d_hinge, g_mean)
    ganjax.register_penalty("my_zero", lambda d_fn, real, fake, key, shard=None: jnp.zeros(()))
    c = load_config("ring_2d", "quick")
    c.loss = "my_hinj"
    with pytest.raises(ConfigError, match=r"^unknown loss 'my_hinj'; valid choices: hinge, least_squares, minimax, "
                                          r"non_saturating, ragan, ralsgan, rsgan, wasserstein; registered: my_hinge$"):
        config_lib.validate(c)
    c.loss, c.penalty = "my_hinge", "zero"
    with pytest.raises(ConfigError, match=r"unknown penalty 'zero'; valid choices: dragan, none, r1, r2, wgan_gp; "
                                          r"registered: my_zero$"):
        config_lib.validate(c)
    c.penalty = "my_zero"
    config_lib.validate(c)


# --- imports ----------------------------------------------------------------------------------------------

USER_FILE = textwrap.dedent('''
    """Every kind of component, as a researcher's file registers them."""
    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np

    import ganjax
    from ganjax.data.toy import mixture

    @ganjax.register_loss("user_ls")
    class UserLS:
        def d_loss(real_logits, fake_logits):
            return jnp.mean((real_logits - 1) ** 2) + jnp.mean(fake_logits ** 2)

        def g_loss(real_logits, fake_logits):
            return jnp.mean((fake_logits - jnp.mean(real_logits)) ** 2)

    @ganjax.register_penalty("user_r1")
    def user_r1(d_fn, real, fake, key, shard=None):
        import jax
        g = jax.grad(lambda x: jnp.sum(d_fn(x)))(real)
        return jnp.mean(jnp.sum(g ** 2, axis=1))

    @ganjax.register_generator("user_g")
    class UserG(nn.Module):
        out_shape: tuple = (2,)
        width: int = 8

        @nn.compact
        def __call__(self, z, train: bool = False):
            return nn.Dense(self.out_shape[-1])(nn.tanh(nn.Dense(self.width)(z)))

    @ganjax.register_discriminator("user_d")
    class UserD(nn.Module):
        width: int = 8

        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(1)(nn.tanh(nn.Dense(self.width)(x)))[:, 0]

    @ganjax.register_dataset("square", kind="mixture")
    def square(side=2.0, std=0.05):
        return mixture("square", np.array([[0, 0], [0, side], [side, 0], [side, side]], np.float32), std)

    @ganjax.register_metric("spread", kind="mixture")
    def spread(data):
        return {"spread": float(np.std(data.samples))}
''')


def user_config(path: str):
    c = load_config("ring_2d", "quick")
    c.imports = (path,)
    c.update(loss="user_ls", penalty="user_r1", penalty_weight=0.1, dataset="square", num_steps=2, log_every=1,
             eval_every=2, checkpoint_every=2, sample_every=0, batch_size=16)
    c.data = {"side": 3.0}
    c.model.generator, c.model.discriminator = "user_g", "user_d"
    c.model.g, c.model.d = {"width": 4}, {"width": 6}
    c.eval.metrics, c.eval.num_samples = "mode_coverage,spread", 64
    return c


def test_a_user_file_provides_every_kind_and_trains_evaluates_and_samples(tmp_path, monkeypatch):
    from ganjax.trainer import load_for_inference, train_and_evaluate

    (tmp_path / "parts.py").write_text(USER_FILE)
    monkeypatch.chdir(tmp_path)
    c = user_config("parts.py")  # relative to the current directory
    train_and_evaluate(c, str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["imports"] == [str(tmp_path / "parts.py")]  # recorded absolute
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("kind") == "eval"]
    assert evals and all("spread" in r and r["num_modes"] == 4 for r in evals)
    # A fresh process state (nothing registered, nothing imported), from another directory:
    for registry in REGISTRIES:
        for name in registry.user_names:
            registry.unregister(name)
    user_modules._IMPORTED.clear()
    monkeypatch.chdir(os.path.dirname(tmp_path))
    config, gan, _, step = load_for_inference(str(tmp_path / "run"))
    assert step == 2 and gan.loss.name == "user_ls" and gan.toy.name == "square"
    assert type(gan.generator).__name__ == "UserG" and gan.generator.width == 4


def test_a_module_name_entry_is_imported_from_sys_path(tmp_path, monkeypatch):
    pkg = tmp_path / "my_gan_parts"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "losses.py").write_text("import ganjax, jax.numpy as jnp\n"
                                   "ganjax.register_loss('pkg_loss', lambda real_logits, fake_logits: jnp.mean(real_logits),"
                                   " lambda fake_logits: jnp.mean(fake_logits))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert user_modules.import_modules(["my_gan_parts.losses"]) == ("my_gan_parts.losses",)
    assert "pkg_loss" in losses.LOSSES
    sys.modules.pop("my_gan_parts.losses", None)
    sys.modules.pop("my_gan_parts", None)


def test_a_file_imported_twice_or_also_loaded_as_the_config_registers_once(tmp_path):
    (tmp_path / "parts.py").write_text(USER_FILE)
    path = str(tmp_path / "parts.py")
    user_modules.import_modules((path,))
    user_modules._IMPORTED.clear()  # a second execution of the same file (as --config and as imports)
    user_modules.import_modules((path,))
    assert losses.LOSSES.user_names == ["user_ls"]


@pytest.mark.parametrize("entries,expected", [
    (("no_such_module_xyz",), r"^imports entry 'no_such_module_xyz': no module named 'no_such_module_xyz'"),
    (("missing.py",), r"^imports entry 'missing.py' \(/.*/missing.py\): no such file$"),
    (("boom.py",), r"^imports entry 'boom.py' \(/.*/boom.py\) raised ZeroDivisionError \(boom.py, line 3\): "
                   r"division by zero$"),
    (("clash.py",), r"^imports entry 'clash.py' \(/.*/clash.py\) \(clash.py, line 2\): loss 'hinge' is built-in; "
                    r"pass override=True"),
])
def test_a_bad_imports_entry_is_one_clear_error(tmp_path, monkeypatch, entries, expected):
    (tmp_path / "boom.py").write_text("import ganjax\n\nx = 1 / 0\n")
    (tmp_path / "clash.py").write_text("import ganjax\nganjax.register_loss('hinge', lambda r, f: 0, lambda f: 0)\n")
    monkeypatch.chdir(tmp_path)
    c = load_config("ring_2d", "quick")
    c.imports = entries
    with pytest.raises(ConfigError, match=expected):
        config_lib.validate(c)


def test_imports_must_be_a_tuple_of_strings():
    for bad in ("parts.py", ("ok.py", 3), ("",)):
        with pytest.raises(ConfigError, match=r"^imports must be a tuple of module names or paths to .py files, got "):
            user_modules.import_modules(bad)


def test_a_config_saved_before_imports_existed_still_validates():
    c = load_config("ring_2d", "quick")
    del c["imports"]
    config_lib.validate(c)


def test_a_process_sweep_passes_imports_as_a_tuple_override_that_parses_back():
    """``fixed={'imports': (...)}`` reaches a trial process as ``--config.imports=('a.py','b c.py')``."""
    from ml_collections.config_flags import tuple_parser

    from ganjax.sweep import spec

    entries = ("/p/a.py", "/p/b c.py", "my_pkg.parts")
    (flag,) = spec.override_flags({"imports": entries})
    assert flag.startswith("--config.imports=")
    assert tuple_parser.TupleParser().parse(flag.split("=", 1)[1]) == entries


def test_an_unknown_dataset_lists_the_registered_toy_datasets(tmp_path):
    from ganjax.data.images import load_images

    ganjax.register_dataset("line", lambda n=4: toy.mixture("line", jnp.zeros((n, 2)), 0.1), kind="mixture")
    with pytest.raises(ConfigError, match=r"^unknown dataset 'no_such_data'; valid choices: gaussian_1d, ring_2d, "
                                          r"grid_2d, .*folder:PATH; registered: line$"):
        load_images("no_such_data", "train", str(tmp_path))


def test_two_module_classes_of_one_name_from_different_files_are_different_definitions(tmp_path):
    """Flax wraps __call__; the registry looks through the wrapper to the user's file."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "g.py").write_text(
            "import flax.linen as nn\nimport ganjax\n\n"
            "@ganjax.register_generator('same_name')\nclass G(nn.Module):\n    out_shape: tuple = (2,)\n\n"
            "    @nn.compact\n    def __call__(self, z, train: bool = False):\n        return nn.Dense(2)(z)\n")
    user_modules.import_modules((str(tmp_path / "a" / "g.py"),))
    with pytest.raises(ConfigError, match=r"generator 'same_name' is already registered; pass override=True"):
        user_modules.import_modules((str(tmp_path / "b" / "g.py"),))
