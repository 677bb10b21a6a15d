"""The CI skip gate (tests/skip_gate.py), run for real: pytest on tiny test files in a temporary folder."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.skip_gate import ALLOWED_SKIPS

ALLOWED_ID = next(iter(ALLOWED_SKIPS))
ALLOWED_FILE, ALLOWED_TEST = ALLOWED_ID.split("::")


def run_pytest(folder, ci: str | None) -> subprocess.CompletedProcess:
    """``python -m pytest -rs -p tests.skip_gate`` on ``folder`` (its own rootdir and ini file)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = ROOT
    if ci is not None:
        env["CI"] = ci
    (folder / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "-p", "tests.skip_gate", f"--rootdir={folder}", "-c", str(folder / "pytest.ini"),
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def write_test(folder, relpath: str, body: str) -> None:
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("import pytest\n\n\n" + body)


@pytest.fixture
def unlisted_skip(tmp_path):
    """A folder with one passing test and one skipped test that no allow-list entry names."""
    write_test(tmp_path, "tests/test_gate_probe.py",
               "def test_passes():\n    assert 1 + 1 == 2\n\n\n"
               "def test_skips():\n    pytest.skip('the reference is not installed')\n")
    return tmp_path


def test_an_unlisted_skip_fails_a_ci_run_and_is_named(unlisted_skip):
    r = run_pytest(unlisted_skip, "true")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 passed, 1 skipped" in r.stdout, r.stdout
    assert ("SKIP NOT ALLOWED tests/test_gate_probe.py::test_skips: the reference is not installed"
            in r.stdout), r.stdout


@pytest.mark.parametrize("ci", [None, "false"])
def test_outside_ci_a_skip_is_only_reported(unlisted_skip, ci):
    r = run_pytest(unlisted_skip, ci)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 1 skipped" in r.stdout and "SKIP NOT ALLOWED" not in r.stdout, r.stdout


def test_an_allow_listed_skip_passes_ci_only_with_its_reason(tmp_path):
    write_test(tmp_path, ALLOWED_FILE,
               f"@pytest.mark.skipif(True, reason={ALLOWED_SKIPS[ALLOWED_ID]!r})\n"
               f"def {ALLOWED_TEST}():\n    pass\n")
    r = run_pytest(tmp_path, "true")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped" in r.stdout and "SKIP NOT ALLOWED" not in r.stdout, r.stdout

    write_test(tmp_path, ALLOWED_FILE, f"def {ALLOWED_TEST}():\n    pytest.skip('torch is not installed')\n")
    r = run_pytest(tmp_path, "true")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"SKIP NOT ALLOWED {ALLOWED_ID}: torch is not installed" in r.stdout, r.stdout

