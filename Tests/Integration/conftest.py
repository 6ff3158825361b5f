"""Integration tests: the release pam_cloudlogin.so loaded by real libpam (Tests/Integration/
pamdriver.c, pam_start_confdir) against a real LemonLDAP::NG OpenID provider on 127.0.0.1 over
HTTPS with a CA made for the run. `make test` runs them as root inside
Tests/Integration/accounts/run-in-sandbox: the module creates local accounts, and the sandbox's
overlay over /etc keeps the machine's own untouched."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "support"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "accounts"))
from cltest import CLI, DRIVER, MODULE, ROOT, Site, add_users  # noqa: E402
from llng import LemonLDAP  # noqa: E402
from sandbox import NotInSandbox, assert_in_sandbox  # noqa: E402


def pytest_sessionstart(session):
    try:
        assert_in_sandbox()
    except NotInSandbox as e:
        pytest.exit(f"the integration tests change local accounts; run them with "
                    f"Tests/Integration/accounts/run-in-sandbox (make test does): {e}", returncode=4)
    assert os.geteuid() == 0, "the integration tests run as root (CloudLogin trusts only root-owned config files)"
    for path in (MODULE, DRIVER, CLI):
        assert path.exists(), f"{path} is missing: run `make build` first"


@pytest.fixture(scope="session")
def idp(tmp_path_factory):
    server = LemonLDAP(tmp_path_factory.mktemp("llng"))
    server.start()
    add_users(server)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def syslog_shim(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("shim") / "syslog_capture.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(out),
                    str(ROOT / "Tests" / "Integration" / "syslog_capture.c")], check=True)
    return out


@pytest.fixture
def site(tmp_path, syslog_shim, idp) -> Site:
    s = Site(tmp_path, syslog_shim, idp)
    s.write_config()
    return s
