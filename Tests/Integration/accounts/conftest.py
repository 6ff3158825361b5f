"""Tests in this directory run real login/sudo/su and change accounts: only inside
run-in-sandbox (private mount namespace, overlay over /etc). Outside it they stop at once.

  Tests/Integration/accounts/run-in-sandbox python3 -m pytest -q -p no:cacheprovider Tests/Integration/accounts
"""
from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from sandbox import NotInSandbox, assert_in_sandbox  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    # Runs when this directory is named on the command line (it is then an initial conftest).
    try:
        assert_in_sandbox()
    except NotInSandbox as e:
        pytest.exit(f"Tests/Integration/accounts: {e}", returncode=4)


@pytest.fixture(scope="session", autouse=True)
def _in_sandbox():
    # Also when collected as part of a larger run (e.g. `pytest Tests/Integration`), where the
    # hook above does not run: every test here errors instead of touching /etc.
    assert_in_sandbox()
