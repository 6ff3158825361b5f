"""The Debian package, the way an admin rolls it out: build the .deb, `dpkg -i` it, write the
config with `cloudlogin setup`, enable it with `pam-auth-update --enable cloudlogin`, sign in at
a real /bin/login with cloud credentials, disable it, purge it — and the PAM stack is exactly
what it was, byte for byte.

Runs inside run-in-sandbox with CLOUDLOGIN_SANDBOX_USR=1 (`make test` sets it): /usr (and so
/lib), /etc and /var/lib (dpkg's and pam-auth-update's databases) are private overlays, so the
machine's own package database and PAM stack are never touched."""
from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess

import pytest

from cltest import ROOT
from sandbox import (SANDBOX_INFO, TOOL_ENV, _mountinfo_top, assert_in_sandbox, create_local_user, run_login, run_su, run_sudo,
                     snapshot_account_files, user_exists)

MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True).stdout.strip() \
    or "x86_64-linux-gnu"
MODULE = pathlib.Path(f"/lib/{MULTIARCH}/security/pam_cloudlogin.so")
CLI = pathlib.Path("/usr/bin/cloudlogin")
PROFILE = pathlib.Path("/usr/share/pam-configs/cloudlogin")
CONFIG = pathlib.Path("/etc/cloudlogin/cloudlogin.conf")
STATE, CACHE = pathlib.Path("/var/lib/cloudlogin"), pathlib.Path("/var/cache/cloudlogin")
PAMD = pathlib.Path("/etc/pam.d")
ENV = dict(TOOL_ENV, DEBIAN_FRONTEND="noninteractive")


def sh(*argv: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, env=ENV, cwd="/", timeout=300)
    if check:
        assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def common_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(PAMD.glob("common-*"))}


def pam_auth_update_state() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path("/var/lib/pam").iterdir())}


def installed() -> bool:
    proc = sh("dpkg-query", "-W", "-f=${Status}", "cloudlogin", check=False)
    return proc.returncode == 0 and "installed" in proc.stdout.split()


def known_to_dpkg() -> bool:
    """Installed, or removed with its config files left (dpkg -r)."""
    proc = sh("dpkg-query", "-W", "-f=${Status}", "cloudlogin", check=False)
    return proc.returncode == 0 and "not-installed" not in proc.stdout.split()


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run([str(ROOT / "scripts" / "build-deb"), str(out)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = pathlib.Path(proc.stdout.strip().splitlines()[-1])
    assert path.exists() and path.suffix == ".deb"
    return path


@pytest.fixture
def fresh_root():
    """This sandbox as a machine that never had CloudLogin: Debian's own /etc/pam.d (as the
    sandbox found it), no /etc/cloudlogin, no state or cache directory. Afterwards the package
    is purged and the sandbox put back as the other tests expect it."""
    assert_in_sandbox()
    for path in ("/usr", "/etc", "/var/lib"):
        top = _mountinfo_top(path)
        assert top is not None and top[0] == "overlay", \
            f"{path} is not a private overlay ({top}): run with CLOUDLOGIN_SANDBOX_USR=1 Tests/Integration/accounts/run-in-sandbox (make test does)"
    saved = pathlib.Path("/run/cloudlogin-admin-saved")
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(PAMD, saved / "pam.d", symlinks=True)
    if CONFIG.parent.exists():
        shutil.copytree(CONFIG.parent, saved / "cloudlogin", symlinks=True)
    # Debian's own stack, as the sandbox found it (earlier tests install their own services).
    shutil.rmtree(PAMD)
    shutil.copytree(SANDBOX_INFO / "orig" / "pam.d", PAMD, symlinks=True)
    shutil.rmtree(CONFIG.parent, ignore_errors=True)
    # The sandbox's tmpfs on the state and cache directories (with what earlier tests left
    # there) are moved aside, in this private mount namespace, and moved back afterwards.
    for d in (STATE, CACHE):
        aside = saved / f"mount-{d.name}-{d.parent.name}"
        aside.mkdir()
        sh("mount", "-n", "--move", str(d), str(aside))
        shutil.rmtree(d, ignore_errors=True)
        assert not d.exists()
    assert not installed() and not MODULE.exists() and not PROFILE.exists()
    yield
    if installed() or known_to_dpkg():
        sh("dpkg", "--purge", "cloudlogin", check=False)
    shutil.rmtree(PAMD)
    shutil.copytree(saved / "pam.d", PAMD, symlinks=True)
    shutil.rmtree(CONFIG.parent, ignore_errors=True)
    if (saved / "cloudlogin").exists():
        shutil.copytree(saved / "cloudlogin", CONFIG.parent, symlinks=True)
    for d in (STATE, CACHE):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        sh("mount", "-n", "--move", str(saved / f"mount-{d.name}-{d.parent.name}"), str(d))
    shutil.rmtree(saved, ignore_errors=True)


def owner_mode(path: pathlib.Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def test_the_package_holds_what_an_admin_needs(deb: pathlib.Path):
    listing = sh("dpkg-deb", "-c", str(deb)).stdout
    for path in (f"./lib/{MULTIARCH}/security/pam_cloudlogin.so", "./usr/bin/cloudlogin",
                 "./usr/share/pam-configs/cloudlogin", "./usr/share/man/man1/cloudlogin.1.gz",
                 "./usr/share/man/man5/cloudlogin.conf.5.gz", "./usr/share/man/man8/pam_cloudlogin.8.gz",
                 "./etc/cloudlogin/cloudlogin.conf.example", "./usr/share/cloudlogin/pam.d/login"):
        assert f" {path}\n" in listing, f"{path} missing from the package:\n{listing}"
    assert "drwx------ root/root" in next(line for line in listing.splitlines() if line.endswith("./var/cache/cloudlogin/"))
    assert "drwxr-xr-x root/root" in next(line for line in listing.splitlines() if line.endswith("./var/lib/cloudlogin/"))
    assert all(" root/root " in line for line in listing.splitlines()), "every file must be root-owned"
    fields = sh("dpkg-deb", "-f", str(deb), "Package", "Depends").stdout
    assert "Package: cloudlogin" in fields and "libcurl4" in fields and "libpam-runtime" in fields
    assert "libqrencode4" in fields  # the module NEEDs libqrencode.so.4 (Support/QRCode.swift)
    assert sh("dpkg-deb", "-f", str(deb), "Architecture").stdout.strip() == sh("dpkg", "--print-architecture").stdout.strip()


def test_install_enable_login_disable_purge_leaves_the_stack_as_before(deb, fresh_root, idp):
    before, before_state = common_files(), pam_auth_update_state()

    # Install: files in place, root-owned, and no PAM stack changed (Default: no).
    sh("dpkg", "-i", str(deb))
    assert installed()
    assert common_files() == before, "installing the package changed /etc/pam.d/common-*"
    assert owner_mode(MODULE) == (0, 0, 0o644) and owner_mode(CLI) == (0, 0, 0o755)
    assert owner_mode(STATE) == (0, 0, 0o755) and owner_mode(CACHE) == (0, 0, 0o700)
    assert "Default: no" in PROFILE.read_text()
    man = sh("man", "--warnings", "-l", "/usr/share/man/man8/pam_cloudlogin.8.gz")
    assert man.stderr == "" and "pam_cloudlogin" in man.stdout

    # Configure with the installed tool: it checks the IdP and a real sign-in first.
    idp.add_user("debra@example.com", "Debra's cloud pw 1", name="Debra Package", email="debra@example.com")
    secret = pathlib.Path("/etc/cloudlogin/client_secret")
    secret.write_text(idp.clients["confidential"][1] + "\n")
    os.chmod(secret, 0o600)
    sh(str(CLI), "setup", "--issuer", idp.issuer, "--client-id", "linux-login", "--client-secret-file", str(secret),
       "--ca-file", str(idp.ca_file), "--username-suffix", "@example.com", "--test-user", "debra", input="Debra's cloud pw 1\n")
    assert owner_mode(CONFIG) == (0, 0, 0o600)
    result = sh(str(CLI), "check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: pam: no service in /etc/pam.d uses pam_cloudlogin yet" in result.stdout

    # Enable: pam_cloudlogin first in common-auth, pam_unix after it; check agrees.
    sh("pam-auth-update", "--enable", "cloudlogin")
    auth = (PAMD / "common-auth").read_text()
    lines = [line for line in auth.splitlines() if line and not line.startswith("#")]
    assert "pam_cloudlogin.so" in lines[0] and "authinfo_unavail=ignore" in lines[0] and "default=die" in lines[0], auth
    assert "module_unknown=ignore" in lines[0], auth
    assert "pam_unix.so" in lines[1], auth
    account = [line for line in (PAMD / "common-account").read_text().splitlines() if "pam_cloudlogin.so" in line]
    assert len(account) == 1 and "module_unknown=ignore" in account[0] and "default=bad" in account[0], account
    result = sh(str(CLI), "check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: pam: pam_cloudlogin in common-account, common-auth (/etc/pam.d)" in result.stdout

    # A real console login with the cloud password, through Debian's own /etc/pam.d/login.
    assert not user_exists("debra")
    login = run_login("debra", "Debra's cloud pw 1")
    assert login.shell_started, login.transcript
    assert login.output == ["debra", "HOME=/home/debra"]
    assert "Created local account debra from your cloud identity." in login.transcript
    status = sh(str(CLI), "status", "debra")
    assert "subject: debra@example.com" in status.stdout
    # root still signs in through pam_unix, whatever the IdP does.
    assert "pam_unix.so" in auth

    # Disable: the stack is byte for byte what it was.
    sh("pam-auth-update", "--disable", "cloudlogin")
    assert common_files() == before

    # Purge: files, config, state and cache gone; stack and pam-auth-update's records as before.
    sh("dpkg", "--purge", "cloudlogin")
    assert not installed()
    assert common_files() == before
    assert pam_auth_update_state() == before_state
    for path in (MODULE, CLI, PROFILE, CONFIG.parent, STATE, CACHE):
        assert not path.exists(), f"{path} is still there after purge"
    assert user_exists("debra"), "purge must not remove people's accounts"


def test_purging_an_enabled_package_takes_it_out_of_the_stack(deb, fresh_root):
    before = common_files()
    sh("dpkg", "-i", str(deb))
    sh("pam-auth-update", "--enable", "cloudlogin")
    assert "pam_cloudlogin.so" in (PAMD / "common-auth").read_text()
    removed = sh("dpkg", "--remove", "cloudlogin")
    assert common_files() == before, "prerm did not take the module out of the stack:\n" + removed.stdout
    assert "pam_cloudlogin.so" not in removed.stderr, "a warning although no /etc/pam.d file names the module:\n" + removed.stderr
    assert not MODULE.exists() and not PROFILE.exists()
    sh("dpkg", "--purge", "cloudlogin")
    assert common_files() == before and not STATE.exists() and not CACHE.exists()


def test_removing_the_package_leaves_the_copied_stacks_working(deb, fresh_root):
    """The README's other way in: copy the shipped login, su, sudo and passwd stacks to /etc/pam.d.
    Removing the package (not purging) takes the module away but leaves those files: root at the
    console, su to root and sudo by a local user must keep working (their pam_cloudlogin lines
    have module_unknown=ignore), and the removal says which files still name the module and what
    to do. Fails with the stacks of 2379c49 (default=die / required / requisite on a missing
    module: PAM_MODULE_UNKNOWN refuses everyone)."""
    accounts = snapshot_account_files()
    copied = ("login", "su", "sudo", "passwd")
    root_pw, local_pw = "Root's local pw 1", "Lou's local pw 1"
    try:
        sh("dpkg", "-i", str(deb))
        for name in copied:
            shutil.copyfile(f"/usr/share/cloudlogin/pam.d/{name}", PAMD / name)
        sh("chpasswd", input=f"root:{root_pw}\n")
        create_local_user("lou", local_pw, groups=("sudo",))

        removed = sh("dpkg", "-r", "cloudlogin")
        assert not installed() and not MODULE.exists()
        for name in copied:
            assert "pam_cloudlogin.so" in (PAMD / name).read_text(), f"{PAMD / name} was changed by the removal"

        # Root at the console, through the copied login stack.
        login = run_login("root", root_pw)
        assert login.shell_started, login.transcript
        assert login.output == ["root", "HOME=/root"]
        assert run_login("root", "not root's password").login_incorrect
        # su to root by a user who is not root (root's own su skips the password: pam_rootok).
        code, out = run_su("root", root_pw)
        assert code == 0 and out.strip().endswith("root"), out
        code, out = run_su("root", "not root's password")
        assert code != 0, out
        # sudo by a local user (member of sudo), through the copied sudo stack.
        code, out = run_sudo("lou", local_pw, ["id", "-un"])
        assert code == 0 and out.strip().endswith("root"), out
        code, out = run_sudo("lou", "not lou's password")
        assert code != 0, out
        # passwd for a local user, through the copied passwd stack (and common-password).
        proc = subprocess.run(["runuser", "-u", "lou", "--", "passwd"], input=f"{local_pw}\nLou's new pw 22!\nLou's new pw 22!\n",
                              capture_output=True, text=True, env=ENV, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        code, out = run_sudo("lou", "Lou's new pw 22!", ["id", "-un"])
        assert code == 0 and out.strip().endswith("root"), out

        # The removal said which files still name the module, that they keep working, and how to
        # put the distribution's file back (common-* are pam-auth-update's: clean, not named).
        for name in copied:
            path = PAMD / name
            assert f"cloudlogin: warning: {path} still names pam_cloudlogin.so, which is now removed" in removed.stderr, removed.stderr
            owner = sh("dpkg-query", "-S", str(path)).stdout.split(":")[0]
            assert f"mv {path} {path}.cloudlogin-removed && apt-get install --reinstall -o Dpkg::Options::=--force-confmiss {owner}" \
                in removed.stderr, removed.stderr
        assert "FAILS" not in removed.stderr, removed.stderr
        assert not any(f"/etc/pam.d/{p.name} " in removed.stderr for p in PAMD.glob("common-*")), removed.stderr
    finally:
        for path, data in accounts.items():
            pathlib.Path(path).write_bytes(data)


def test_removal_says_which_hand_made_stack_now_fails(deb, fresh_root):
    """A stack with an old-style pam_cloudlogin line (no module_unknown=ignore) fails without the
    module: the removal says so, louder, and still completes."""
    sh("dpkg", "-i", str(deb))
    (PAMD / "cloudlogin-old").write_text("auth required pam_cloudlogin.so\nauth required pam_unix.so\n")
    (PAMD / "cloudlogin-commented").write_text("# auth required pam_cloudlogin.so\nauth required pam_unix.so\n")
    removed = sh("dpkg", "-r", "cloudlogin")
    assert not installed()
    assert f"cloudlogin: WARNING: {PAMD}/cloudlogin-old still names pam_cloudlogin.so, which is now removed, without " \
           "module_unknown=ignore: every sign-in through this service now FAILS" in removed.stderr, removed.stderr
    assert f"no package ships it: delete it, or delete its pam_cloudlogin lines: sed -i '/pam_cloudlogin\\.so/d' {PAMD}/cloudlogin-old" \
        in removed.stderr, removed.stderr
    assert "cloudlogin-commented" not in removed.stderr, removed.stderr
