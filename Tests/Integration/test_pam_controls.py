"""The controls of the shipped pam_cloudlogin lines, checked with real libpam (no CloudLogin code
involved): a fake module returns every PAM code in turn, in a dozen stack contexts, and the
result of the whole stack is compared with the control the line had before (item 3 of the
trust issue: a removed module must not lock anyone out).

- With the module present, every code gives the same result as before: the auth control without
  module_unknown=ignore, `required` for account (PAM_PERM_DENIED still denies, PAM_IGNORE is
  ignored), `requisite` for password (PAM_AUTHTOK_ERR still stops the change).
- With the module missing (libpam: PAM_MODULE_UNKNOWN, the only code the module itself never
  returns), the stack gives the same result as without the line: pam_unix decides.
"""
from __future__ import annotations

import itertools
import pathlib
import re
import subprocess

import pytest

from cltest import DRIVER, ROOT

PHASE = {"auth": "auth", "account": "acct", "password": "chauthtok"}
FAKE_ARG = {"auth": "auth", "account": "acct", "password": "password"}
# What the lines were before module_unknown=ignore (2379c49).
BEFORE = {"auth": "[success=done ignore=ignore authinfo_unavail=ignore default=die]",
          "account": "required",
          "password": "requisite"}
PAM_MODULE_UNKNOWN = 28
CODES = [code for code in range(32) if code != PAM_MODULE_UNKNOWN]  # PAM_SUCCESS .. PAM_INCOMPLETE
PREFIXES = ["", "{t} required pam_permit.so\n", "{t} optional pam_deny.so\n", "{t} required pam_deny.so\n"]
SUFFIXES = ["", "{t} required pam_permit.so\n", "{t} required pam_deny.so\n"]
STACKS = ("login", "sudo", "su", "sshd", "passwd", "cloudlogin-service", "cloudlogin-auth")


def shipped_controls() -> dict[tuple[str, str], str]:
    """(file, type) -> the control of its pam_cloudlogin line, for every shipped stack."""
    found = {}
    for name in STACKS:
        for line in (ROOT / "pam.d" / name).read_text().splitlines():
            m = re.match(r"^\s*-?(auth|account|password|session)\s+(\[[^]]*\]|\S+)\s+pam_cloudlogin\.so\b", line)
            if m:
                found[(name, m.group(1))] = m.group(2)
    return found


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("fake") / "fake_pam_module.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out),
                    str(ROOT / "Tests" / "Integration" / "fake_pam_module.c")], check=True)
    return out


class Stack:
    def __init__(self, confdir: pathlib.Path):
        self.confdir = confdir
        confdir.mkdir(exist_ok=True)
        (confdir / "other").write_text("auth required pam_deny.so\naccount required pam_deny.so\n"
                                       "password required pam_deny.so\nsession required pam_deny.so\n")

    def result(self, type_: str, text: str) -> str:
        (self.confdir / "svc").write_text(text)
        proc = subprocess.run([str(DRIVER), "--confdir", str(self.confdir), "--service", "svc", "--user", "nobody",
                               "--phase", PHASE[type_]], input=b"pw\n", capture_output=True, timeout=30)
        results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")]
        assert results, proc.stdout.decode() + proc.stderr.decode()
        return results[-1]


def test_every_shipped_stack_has_the_three_controls():
    controls = shipped_controls()
    assert {key for key in controls if key[1] == "auth"} == {(n, "auth") for n in STACKS if n != "passwd"}
    assert {n for n, t in controls if t == "account"} == {"login", "sudo", "su", "sshd"}
    assert {n for n, t in controls if t == "password"} == {"login", "su", "sshd", "passwd"}
    for (name, type_), control in controls.items():
        assert "module_unknown=ignore" in control, f"pam.d/{name}: the {type_} line fails the stack when the module is missing"
    # The pam-auth-update profile: the same controls (pam-auth-update turns success=end into a jump).
    profile = (ROOT / "pam.d" / "pam-configs-cloudlogin").read_text()
    lines = [line.strip() for line in profile.splitlines() if "pam_cloudlogin.so" in line]
    assert lines and all("module_unknown=ignore" in line for line in lines), profile
    auth = controls[("login", "auth")].replace("success=done", "success=end")
    account = controls[("login", "account")]
    assert profile.count(auth) == 2 and profile.count(account) == 2, profile


@pytest.mark.parametrize("type_", ["auth", "account", "password"])
def test_the_present_module_is_handled_as_before(fake: pathlib.Path, tmp_path: pathlib.Path, type_: str):
    stack = Stack(tmp_path / "pam.d")
    controls = sorted({c for (_, t), c in shipped_controls().items() if t == type_})
    assert controls
    differences = []
    for control, pre, suf, code in itertools.product(controls, PREFIXES, SUFFIXES, CODES):
        module = f"{fake} {FAKE_ARG[type_]}={code}"
        before = stack.result(type_, pre.format(t=type_) + f"{type_} {BEFORE[type_]} {module}\n" + suf.format(t=type_))
        now = stack.result(type_, pre.format(t=type_) + f"{type_} {control} {module}\n" + suf.format(t=type_))
        if before != now:
            differences.append(f"{control} code {code} after {pre.strip()!r} before {suf.strip()!r}: {before} -> {now}")
    assert differences == []


def test_the_decisions_that_matter(fake: pathlib.Path, tmp_path: pathlib.Path):
    """Spelled out: the codes the module returns, with pam_unix's stand-in (pam_permit) after it."""
    stack = Stack(tmp_path / "pam.d")
    c = shipped_controls()
    auth, account, password = c[("login", "auth")], c[("login", "account")], c[("login", "password")]

    def run(type_, control, code, after="pam_permit.so"):
        return stack.result(type_, f"{type_} {control} {fake} {FAKE_ARG[type_]}={code}\n{type_} required {after}\n")
    assert run("auth", auth, 0, "pam_deny.so") == "PAM_SUCCESS"          # success=done
    assert run("auth", auth, 25) == "PAM_SUCCESS"                        # PAM_IGNORE: pam_unix decides
    assert run("auth", auth, 25, "pam_deny.so") == "PAM_AUTH_ERR"
    assert run("auth", auth, 9) == "PAM_SUCCESS"                         # PAM_AUTHINFO_UNAVAIL: offline
    assert run("auth", auth, 7) == "PAM_AUTH_ERR"                        # the IdP's no is final
    assert run("account", account, 6) == "PAM_PERM_DENIED"               # revoked: denied
    assert run("account", account, 25, "pam_deny.so") == "PAM_AUTH_ERR"  # PAM_IGNORE: pam_unix decides
    assert run("account", account, 25) == "PAM_SUCCESS"
    assert run("account", account, 0, "pam_deny.so") == "PAM_AUTH_ERR"  # never a bare success
    assert stack.result("account", f"account {account} {fake} acct=25\n") == "PAM_PERM_DENIED"
    assert run("password", password, 20) == "PAM_AUTHTOK_ERR"            # managed user: refused
    assert run("password", password, 25) == "PAM_SUCCESS"


@pytest.mark.parametrize("type_", ["auth", "account", "password"])
def test_a_missing_module_is_as_if_the_line_were_not_there(tmp_path: pathlib.Path, type_: str):
    stack = Stack(tmp_path / "pam.d")
    missing = "pam_cloudlogin_not_installed.so"
    controls = sorted({c for (_, t), c in shipped_controls().items() if t == type_})
    # What libpam says for a module it cannot load, and what the old control made of it.
    assert stack.result(type_, f"{type_} required {missing}\n") == "PAM_MODULE_UNKNOWN"
    assert stack.result(type_, f"{type_} {BEFORE[type_]} {missing}\n{type_} required pam_permit.so\n") == "PAM_MODULE_UNKNOWN"
    for control, pre, suf in itertools.product(controls, PREFIXES, SUFFIXES):
        if not pre and not suf:
            continue
        text = pre.format(t=type_) + suf.format(t=type_)
        without = stack.result(type_, text)
        with_line = stack.result(type_, pre.format(t=type_) + f"{type_} {control} {missing}\n" + suf.format(t=type_))
        assert with_line == without, f"{control} after {pre!r} before {suf!r}"
