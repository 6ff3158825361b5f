"""The sandbox itself, with Debian's stock /etc/pam.d/{login,sudo,su} (pam_unix, no CloudLogin):
real login, sudo and su against an account made with useradd + chpasswd."""
from __future__ import annotations

import pathlib

import pytest

from sandbox import (account_files_changed, create_local_user, original_account_files, pwck_grpck_clean,
                     run_login, run_su, run_sudo, snapshot_account_files)

USER = "selfcheck"
PASSWORD = "S3lf check: pässword"
WRONG = "not the password"


@pytest.fixture(scope="module")
def local_user() -> str:
    before = snapshot_account_files()
    create_local_user(USER, PASSWORD, groups=("sudo",))
    assert sorted(account_files_changed(before)) == ["/etc/group", "/etc/gshadow", "/etc/passwd", "/etc/shadow"]
    return USER


def test_sandbox_starts_from_the_real_account_files_and_private_dirs():
    assert original_account_files()["/etc/passwd"].startswith(b"root:")
    mounts = {line.split()[4]: line.split(" - ")[1].split()[0]
              for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines()}
    for path, fstype in {"/etc": "overlay", "/var/lib": "overlay", "/var/cache": "overlay", "/home": "tmpfs",
                         "/run": "tmpfs", "/var/log": "tmpfs", "/var/lib/cloudlogin": "tmpfs",
                         "/var/cache/cloudlogin": "tmpfs"}.items():
        assert mounts.get(path) == fstype, (path, mounts.get(path))


def test_login_right_password_starts_a_shell(local_user):
    r = run_login(local_user, PASSWORD)
    assert r.shell_started, r.transcript
    assert r.output == [local_user, f"HOME=/home/{local_user}"], r.transcript
    assert r.status == 0 and r.login_status == 0
    assert not r.login_incorrect


def test_login_wrong_password_is_login_incorrect(local_user):
    r = run_login(local_user, WRONG)
    assert not r.shell_started and r.output == []
    assert r.login_incorrect, r.transcript


def test_login_reports_the_command_status(local_user):
    r = run_login(local_user, PASSWORD, command="printf 'no newline'; false")
    assert r.shell_started and r.output == ["no newline"] and r.status == 1, r


def test_sudo_right_password(local_user):
    rc, out = run_sudo(local_user, PASSWORD, ["id", "-un"])
    assert rc == 0, out
    assert out.splitlines()[-1].removeprefix("PW:") == "root", out


def test_sudo_wrong_password(local_user):
    rc, out = run_sudo(local_user, WRONG, ["id", "-un"])
    assert rc == 1, out
    assert "incorrect password attempt" in out and "root" not in out.replace("sudo:", ""), out


def test_su_right_password(local_user):
    rc, out = run_su(local_user, PASSWORD)
    assert rc == 0, out
    assert out.splitlines()[-1].removeprefix("Password: ") == local_user, out


def test_su_wrong_password(local_user):
    rc, out = run_su(local_user, WRONG)
    assert rc == 1, out
    assert "Authentication failure" in out, out


def test_pwck_grpck_clean(local_user):
    ok, report = pwck_grpck_clean()
    assert ok, report
