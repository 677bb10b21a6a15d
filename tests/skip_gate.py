"""A pytest plugin: in CI (``CI=true``) a skipped test fails the run unless it is allow-listed.

A skip in CI usually means a claim went unchecked because a test reference
(torch, pytorch-fid, the Fashion-MNIST files, git history) was not installed.
Only skips that depend on the machine CI runs on, and that CI cannot fix by
installing something, are allowed: :data:`ALLOWED_SKIPS` maps each such test
(its node id; a parametrised test by its id without ``[...]``) to a text its
skip reason must contain. Any other skip, or an allow-listed test skipped for
another reason, is listed at the end of the run and turns a passing exit
status into 1 (tests failed).

``tests/conftest.py`` imports the hooks below, so the suite uses the gate;
``python -m pytest -p tests.skip_gate`` loads it on any other folder (that is
how ``tests/test_skip_gate.py`` checks it).
"""

from __future__ import annotations

import os

import pytest

# Test node id (parametrised: without the "[...]" suffix) → text the skip reason must contain.
ALLOWED_SKIPS: dict[str, str] = {
    # Needs an unprivileged user namespace to bind-mount the workdir read-only; many containers and
    # hardened kernels (kernel.unprivileged_userns_clone=0, seccomp) forbid it, and no package fixes that.
    "tests/test_reliability.py::test_read_only_workdir_is_a_clear_error_and_nothing_changes":
        "needs unshare and a bind mount (user namespaces)",
}


def in_ci() -> bool:
    """Whether the gate applies: ``$CI`` is ``true`` (as GitHub Actions, GitLab CI and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped test's report (``"Skipped: "`` removed)."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def disallowed(nodeid: str, reason: str) -> bool:
    """Whether a skip of ``nodeid`` with ``reason`` is not covered by :data:`ALLOWED_SKIPS`."""
    expected = ALLOWED_SKIPS.get(nodeid.split("[", 1)[0])
    return expected is None or expected not in reason


_STASH = pytest.StashKey[list]()
_CONFIG: list[pytest.Config] = []  # the running session's config (test reports do not carry it)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STASH] = []
    _CONFIG[:] = [config]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Records every skip (not xfail) that the allow-list does not cover, when in CI."""
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    reason = skip_reason(report)
    if disallowed(report.nodeid, reason):
        _CONFIG[0].stash[_STASH].append((report.nodeid, reason))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Lists the skips that fail the run."""
    bad = config.stash.get(_STASH, [])
    if bad:
        terminalreporter.section("skips not allowed in CI (tests/skip_gate.py ALLOWED_SKIPS)", red=True)
        for nodeid, reason in bad:
            terminalreporter.line(f"SKIP NOT ALLOWED {nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turns a passing (or empty) run with a disallowed skip into exit status 1."""
    if session.config.stash.get(_STASH, []) and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
