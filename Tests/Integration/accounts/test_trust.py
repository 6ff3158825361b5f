"""Trust: no way in and no lockout that a fault, a hostile caller or a lost file can open.

Real parts throughout: the shipped login/sudo/su stacks with the built pam_cloudlogin.so, real
/bin/login in a pseudo-terminal, real sudo and su started by non-root users, real useradd,
chpasswd and gpasswd, a real LemonLDAP::NG IdP over HTTPS — inside run-in-sandbox, so the
machine's /etc is untouched. A failing account tool is made by bind-mounting a script over the
tool inside the sandbox's private mount namespace.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
import subprocess
from typing import Iterator

import pytest

from cltest import DRIVER, MODULE, ROOT
from sandbox import TOOL_ENV, create_local_user, ensure_invoker, pam_service, run_login, run_su, run_sudo, user_exists
from test_accounts import CONFIG, STATE, SUFFIX, Cloud, cloud, groups_of, local_password_is, pam, token_requests  # noqa: F401 (fixture)

STATE_DIR = STATE.parent
ROOT_PASSWORD = "Root's local pw 1"


def set_root_password() -> None:
    subprocess.run(["chpasswd"], input=f"root:{ROOT_PASSWORD}\n", text=True, check=True, env=TOOL_ENV)


def sudo_from_process_with_groups(user: str, password: str, extra_groups: list[str]) -> tuple[int, str]:
    """`sudo -S -k true` run by USER from a process that carries EXTRA_GROUPS as well as the
    user's own group: a shell opened while the user was still in those groups."""
    uid = int(subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout)
    gid = int(subprocess.run(["id", "-g", user], capture_output=True, text=True, check=True).stdout)
    gids = [gid] + [int(subprocess.run(["getent", "group", g], capture_output=True, text=True, check=True).stdout.split(":")[2])
                    for g in extra_groups]
    proc = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={','.join(map(str, gids))}", "--",
                           "sudo", "-S", "-k", "-p", "PW:", "--", "true"],
                          input=password + "\n", capture_output=True, text=True, env=TOOL_ENV, timeout=60, cwd="/")
    return proc.returncode, proc.stdout + proc.stderr


@contextlib.contextmanager
def failing_tool(path: str, fail_when: str = "") -> Iterator[None]:
    """Bind-mounts a script over PATH (in this mount namespace only) that fails like a locked
    /etc/group when its arguments contain FAIL_WHEN (always, when empty) and runs the real tool
    otherwise."""
    real = pathlib.Path("/run") / ("real-" + pathlib.Path(path).name)
    shutil.copy2(path, real)
    script = pathlib.Path("/run") / ("failing-" + pathlib.Path(path).name)
    script.write_text(f"""#!/bin/sh
case " $* " in
  *"{fail_when}"*) echo "{pathlib.Path(path).name}: cannot lock /etc/group; try again later." >&2; exit 1;;
esac
exec {real} "$@"
""")
    os.chmod(script, 0o755)
    subprocess.run(["mount", "--bind", str(script), path], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", path], check=True)


@contextlib.contextmanager
def idp_stopped(cloud: Cloud) -> Iterator[None]:
    cloud.idp.stop()
    try:
        yield
    finally:
        cloud.idp.start()


@contextlib.contextmanager
def config_replaced(text: str | None, mode: int = 0o600) -> Iterator[None]:
    """The config as TEXT with MODE (None: no config at all), then the test config again."""
    saved = CONFIG.read_bytes()
    try:
        if text is None:
            CONFIG.unlink()
        else:
            CONFIG.write_text(text)
            os.chmod(CONFIG, mode)
        yield
    finally:
        CONFIG.write_bytes(saved)
        os.chown(CONFIG, 0, 0)
        os.chmod(CONFIG, 0o600)


def acct_phase(user: str) -> str:
    """The account phase of a stack with pam_cloudlogin then pam_unix (as root's cron uses)."""
    with pam_service("acct-only", f"auth required pam_permit.so\naccount required {MODULE}\naccount required pam_unix.so\n"):
        proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "acct-only", "--user", user, "--phase", "all"],
                              input=b"x\n", capture_output=True, timeout=60)
    results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT acct")]
    assert results, proc.stdout.decode() + proc.stderr.decode()
    return results[-1]


# --- 1. group changes inside sudo and su ------------------------------------------------------

def test_a_user_made_admin_at_the_idp_gets_the_group_at_sudo(cloud: Cloud):
    cloud.user("tadm", "Tadm pw 1")
    assert pam("login", "tadm", "Tadm pw 1") == "PAM_SUCCESS"
    assert "sudo" not in groups_of("tadm")
    cloud.user("tadm", "Tadm pw 1", groups=("g-admins",))
    code, out = run_sudo("tadm", "Tadm pw 1", ["id", "-un"])  # gpasswd runs under sudo, as the caller's uid
    assert code == 0 and out.strip().endswith("root"), out
    assert "sudo" in groups_of("tadm")
    assert cloud.state("tadm")["granted_groups"] == ["sudo"]


def test_a_user_removed_from_the_admin_group_signs_in_at_su_and_is_out_of_it(cloud: Cloud):
    cloud.user("tdem", "Tdem pw 1", groups=("g-admins", "g-dev"))
    assert pam("login", "tdem", "Tdem pw 1") == "PAM_SUCCESS"
    assert {"sudo", "developers"} <= groups_of("tdem")
    cloud.user("tdem", "Tdem pw 1", groups=())
    code, out = run_su("tdem", "Tdem pw 1")  # su started by another user: its groups are not tdem's
    assert code == 0 and out.strip().endswith("tdem"), out
    assert not {"sudo", "developers"} & groups_of("tdem")
    assert cloud.state("tdem")["granted_groups"] == []


# --- 2. a demotion ends admin rights now ------------------------------------------------------

def test_a_shell_that_still_holds_the_admin_group_gets_no_root_after_a_demotion(cloud: Cloud):
    cloud.user("tsh", "Tsh pw 1", groups=("g-admins",))
    assert pam("login", "tsh", "Tsh pw 1") == "PAM_SUCCESS"
    code, out = sudo_from_process_with_groups("tsh", "Tsh pw 1", ["sudo"])
    assert code == 0, out
    cloud.user("tsh", "Tsh pw 1", groups=())
    # The sign-in that performs the demotion does not complete the sudo it is part of...
    code, out = sudo_from_process_with_groups("tsh", "Tsh pw 1", ["sudo"])
    assert code != 0, "a demoted admin's old shell got root"
    assert "sudo" not in groups_of("tsh")
    # ...and the old shell gets no root on its next sudo either, online or offline.
    code, out = sudo_from_process_with_groups("tsh", "Tsh pw 1", ["sudo"])
    assert code != 0, "a demoted admin's old shell got root on the next sudo"
    with idp_stopped(cloud):
        code, out = sudo_from_process_with_groups("tsh", "Tsh pw 1", ["sudo"])
        assert code != 0, "a demoted admin's old shell got root offline"
    # A new session has the groups the account has now: sudo as an ordinary user works.
    code, out = run_sudo("tsh", "Tsh pw 1")
    assert code == 0, out


# --- 3. root, system accounts and local users are never locked out ---------------------------

@pytest.mark.parametrize("breakage", ["world-writable config", "no config", "invalid config", "group-writable state dir"])
def test_root_and_local_users_sign_in_whatever_happened_to_cloudlogins_files(cloud: Cloud, breakage: str):
    set_root_password()
    if not user_exists("tlocal"):
        create_local_user("tlocal", "Tlocal pw 1")
    cloud.user("tman", "Tman pw 1")
    assert pam("login", "tman", "Tman pw 1") == "PAM_SUCCESS"
    ensure_invoker()
    state_mode = STATE_DIR.stat().st_mode & 0o777
    text = CONFIG.read_text()
    configs = {"world-writable config": (text, 0o666), "no config": (None, 0o600),
               "invalid config": (text + "\n[users]\nmin_uid = lots\n", 0o600), "group-writable state dir": (text, 0o600)}
    mark = cloud.idp.mark()
    with config_replaced(*configs[breakage]):
        if breakage == "group-writable state dir":
            os.chmod(STATE_DIR, 0o775)
        try:
            result = run_login("root", ROOT_PASSWORD, command="id -un")
            assert result.shell_started and result.output == ["root"], result.transcript
            assert acct_phase("root") == "PAM_SUCCESS"  # root's cron jobs
            code, out = run_su("root", ROOT_PASSWORD)
            assert code == 0 and out.strip().endswith("root"), out
            code, out = run_sudo("tlocal", "Tlocal pw 1", ["id", "-un"])
            assert code == 0 and out.strip().endswith("root"), out
            assert acct_phase("tlocal") == "PAM_SUCCESS"
            # A managed user gets no yes from an untrusted config or state; nothing is sent.
            assert pam("sudo", "tman", "not tman's password") != "PAM_SUCCESS"
            if breakage == "group-writable state dir":
                code, _ = run_sudo("tman", "Tman pw 1")
                assert code != 0, "a managed user signed in although the state directory cannot be trusted"
            else:
                # The built-in offline rule: pam_unix checks the synced password (14 days).
                code, out = run_sudo("tman", "Tman pw 1")
                assert code == 0, out
        finally:
            os.chmod(STATE_DIR, state_mode)
    assert token_requests(cloud.idp, mark) == [] or breakage == "group-writable state dir"


def test_a_revoked_managed_user_gets_nothing_from_a_broken_config(cloud: Cloud):
    cloud.user("trev", "Trev pw 1")
    assert pam("login", "trev", "Trev pw 1") == "PAM_SUCCESS"
    cloud.idp.set_disabled("trev" + SUFFIX, True)
    code, _ = run_sudo("trev", "Trev pw 1")
    assert code != 0 and cloud.state("trev")["last_verdict"] == "revoked"
    with config_replaced(CONFIG.read_text(), 0o666):
        code, _ = run_sudo("trev", "Trev pw 1")
        assert code != 0, "a revoked user signed in offline because the config was broken"
        assert acct_phase("trev") == "PAM_PERM_DENIED"
    cloud.idp.set_disabled("trev" + SUFFIX, False)


# --- 4. a half-done sync or lost state never outlives the IdP --------------------------------

def _assert_closed(cloud: Cloud, user: str, password: str) -> None:
    """The synced password opens nothing (sudo, su, login, offline) and no granted group remains."""
    code, out = run_sudo(user, password)
    assert code != 0, f"sudo let {user} in after the IdP disabled them: {out}"
    code, out = run_su(user, password)
    assert code != 0, f"su let {user} in after the IdP disabled them: {out}"
    assert not run_login(user, password).shell_started
    with idp_stopped(cloud):
        code, out = run_sudo(user, password)
        assert code != 0, f"offline sudo let {user} in after the IdP disabled them: {out}"
    assert not {"sudo", "developers"} & groups_of(user), groups_of(user)
    assert acct_phase(user) == "PAM_PERM_DENIED"


def test_a_sync_that_fails_after_useradd_never_outlives_the_idp(cloud: Cloud):
    cloud.user("tfail", "Tfail pw 1", groups=("g-admins",))
    with failing_tool("/usr/bin/gpasswd"):
        assert pam("login", "tfail", "Tfail pw 1") == "PAM_SYSTEM_ERR"
    assert user_exists("tfail") and local_password_is("tfail", "Tfail pw 1")  # the half-done account
    assert "cloudlogin" in groups_of("tfail")  # it carries the mark
    assert cloud.state("tfail")["granted_groups"] == ["sudo"]  # recorded before the grant was tried
    cloud.idp.set_disabled("tfail" + SUFFIX, True)
    _assert_closed(cloud, "tfail", "Tfail pw 1")
    cloud.idp.set_disabled("tfail" + SUFFIX, False)


def test_a_sync_that_fails_after_a_group_grant_takes_the_grant_back_when_the_idp_says_no(cloud: Cloud):
    cloud.user("tgrant", "Tgrant pw 1", groups=("g-admins", "g-dev"))
    with failing_tool("/usr/bin/gpasswd", fail_when="developers"):
        assert pam("login", "tgrant", "Tgrant pw 1") == "PAM_SYSTEM_ERR"
    assert "sudo" in groups_of("tgrant")  # the first grant was made
    assert cloud.state("tgrant")["granted_groups"] == ["sudo", "developers"]
    cloud.idp.set_disabled("tgrant" + SUFFIX, True)
    _assert_closed(cloud, "tgrant", "Tgrant pw 1")
    cloud.idp.set_disabled("tgrant" + SUFFIX, False)


def test_a_deleted_record_never_makes_an_account_unmanaged(cloud: Cloud):
    cloud.user("tlost", "Tlost pw 1", groups=("g-admins", "g-dev"))
    assert pam("login", "tlost", "Tlost pw 1") == "PAM_SUCCESS"
    assert {"sudo", "developers"} <= groups_of("tlost")
    (STATE / "tlost").unlink()
    mark = cloud.idp.mark()
    cloud.idp.set_disabled("tlost" + SUFFIX, True)
    code, _ = run_sudo("tlost", "Tlost pw 1")
    assert code != 0
    assert token_requests(cloud.idp, mark), "the IdP was not asked about an account whose record is lost"
    _assert_closed(cloud, "tlost", "Tlost pw 1")
    # Enabled again: the next online sign-in binds the account again and restores it.
    cloud.idp.set_disabled("tlost" + SUFFIX, False)
    code, out = run_sudo("tlost", "Tlost pw 1")
    assert code == 0, out
    assert cloud.state("tlost")["last_verdict"] == "accepted" and cloud.state("tlost")["subject"] == "tlost@example.com"


# --- 8. smaller holes -------------------------------------------------------------------------

def test_setcred_is_left_to_the_module_that_authenticated(cloud: Cloud, tmp_path):
    """pam_cloudlogin answers pam_setcred only after its own sign-in, so that the setcred of the
    module that did authenticate the user (Kerberos tickets, say) still runs."""
    if not user_exists("tlocal"):
        create_local_user("tlocal", "Tlocal pw 1")
    cloud.user("tcred", "Tcred pw 1")
    assert pam("login", "tcred", "Tcred pw 1") == "PAM_SUCCESS"
    probe = tmp_path / "pam_setcred_probe.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(probe), str(ROOT / "Tests/Integration/support/pam_setcred_probe.c")],
                   check=True)
    marker = tmp_path / "setcred-ran"
    stack = (f"auth [success=done ignore=ignore authinfo_unavail=ignore default=die] {MODULE}\n"
             f"auth required {probe} {marker}\n"
             "account required pam_permit.so\n")

    def sign_in(user: str, password: str) -> tuple[str, str, bool]:
        marker.unlink(missing_ok=True)
        with pam_service("setcred-test", stack):
            proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "setcred-test", "--user", user,
                                   "--phase", "all"], input=(password + "\n").encode(), capture_output=True, timeout=60)
        results = {line.split()[1]: line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")}
        return results.get("auth", "none"), results.get("setcred", "none"), marker.exists()

    # A local user, signed in by the other module: its setcred runs.
    auth, setcred, ran = sign_in("tlocal", "any password")
    assert (auth, setcred, ran) == ("PAM_SUCCESS", "PAM_SUCCESS", True)
    # A cloud user, signed in by CloudLogin: CloudLogin's setcred answers and ends the stack.
    auth, setcred, ran = sign_in("tcred", "Tcred pw 1")
    assert (auth, setcred, ran) == ("PAM_SUCCESS", "PAM_SUCCESS", False)

    # The module's own answer (libpam picks the stack's path from the frozen auth results, so
    # the answer itself is seen where setcred runs without a sign-in of ours in the handle):
    # PAM_IGNORE, which libpam reports for a stack of ignores as PAM_PERM_DENIED.
    def module_only(user: str, password: str, phase: str) -> dict[str, str]:
        with pam_service("cl-setcred-only", f"auth required {MODULE}\naccount required pam_permit.so\n"):
            proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "cl-setcred-only", "--user", user,
                                   "--phase", phase], input=(password + "\n").encode(), capture_output=True, timeout=60)
        return {line.split()[1]: line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")}

    assert module_only("tcred", "Tcred pw 1", "setcred") == {"setcred": "PAM_PERM_DENIED"}
    assert module_only("tlocal", "Tlocal pw 1", "setcred") == {"setcred": "PAM_PERM_DENIED"}
    assert module_only("tcred", "Tcred pw 1", "all") == {"auth": "PAM_SUCCESS", "acct": "PAM_SUCCESS", "setcred": "PAM_SUCCESS"}


def test_a_typed_upn_whose_local_part_is_a_local_account_is_never_sent(cloud: Cloud):
    if not user_exists("tlocal"):
        create_local_user("tlocal", "Tlocal pw 1")
    mark = cloud.idp.mark()
    for typed in ("tlocal@example.com", "TLocal@example.com", "daemon@example.com", "root@example.com"):
        assert pam("login", typed, "some password") != "PAM_SUCCESS"
    assert token_requests(cloud.idp, mark) == [], "a local account's name went to the IdP"


def test_a_held_state_lock_never_locks_out_a_local_user(cloud: Cloud):
    if not user_exists("tlocal"):
        create_local_user("tlocal", "Tlocal pw 1")
    lock = os.open(STATE_DIR / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        code, out = run_sudo("tlocal", "Tlocal pw 1", timeout=20)
        assert code == 0, out
    finally:
        os.close(lock)


def test_gecos_from_the_idp_loses_bidi_and_format_characters(cloud: Cloud):
    cloud.idp.add_user("tbidi" + SUFFIX, "Tbidi pw 1", name="Eve \u202enimda\u202c \u2066x\u2069\u200b", email="", groups=[])
    assert pam("login", "tbidi", "Tbidi pw 1") == "PAM_SUCCESS"
    entry = subprocess.run(["getent", "passwd", "tbidi"], capture_output=True, text=True).stdout.strip().split(":")
    assert entry[4] == "Eve nimda x", entry
