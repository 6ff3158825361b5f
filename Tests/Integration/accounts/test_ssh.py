"""Sign-in over SSH, for real: Debian's OpenSSH server (`sshd -D -e`, support/sshd.py) on
127.0.0.1 with UsePAM and keyboard-interactive only, PAM service `sshd` = the shipped
pam.d/sshd with the built module, the real `ssh` client answering the prompts on a
pseudo-terminal, against the real LemonLDAP::NG IdP — inside run-in-sandbox.

sshd looks the user up before PAM (and feeds PAM junk for an unknown user), so a cloud user signs
in over SSH only after a first console sign-in created the account.

What the user sees of PAM's messages over SSH (facts.md, "PAM hosts") is asserted as observed
with OpenSSH 9.2 (Debian 12): if sshd or ssh change it, test_what_the_user_sees_of_pam_messages
fails and facts.md must be checked again."""
from __future__ import annotations

import pathlib
import re
import subprocess

import pexpect
import pytest

from cltest import MODULE, ROOT
from sandbox import account_files_changed, create_local_user, install_pam_service, snapshot_account_files, user_exists
from sshd import Sshd, sshd_version
from test_accounts import SUFFIX, Cloud, cloud, pam, token_requests  # noqa: F401 (fixture)

ROOT_PASSWORD = "Root's ssh pw 1"  # set in the sandbox's /etc/shadow only
LOCAL_USER, LOCAL_PASSWORD = "sshlocal", "Local ssh pw 1"
OFFLINE = "Identity provider unreachable; trying offline sign-in."
REFUSED_OFFLINE = ("Identity provider unreachable, and offline sign-in is not possible: "
                   "the identity provider refused this account since its last online sign-in.")


def cloudlogin_lines(name: str) -> list[str]:
    return [re.sub(r"\s+", " ", line.strip()) for line in (ROOT / "pam.d" / name).read_text().splitlines()
            if "pam_cloudlogin.so" in line and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def sshd(cloud: Cloud, tmp_path_factory):
    if not pathlib.Path("/usr/sbin/sshd").exists():
        pytest.fail("/usr/sbin/sshd is missing: scripts/install-deps installs openssh-server")
    install_pam_service("sshd", (ROOT / "pam.d" / "sshd").read_text().replace("pam_cloudlogin.so", str(MODULE)))
    subprocess.run(["chpasswd"], input=f"root:{ROOT_PASSWORD}\n", text=True, check=True, timeout=30)
    if not user_exists(LOCAL_USER):
        create_local_user(LOCAL_USER, LOCAL_PASSWORD)
    # PermitRootLogin yes (Debian's default is prohibit-password) so that root's password is
    # asked for through PAM and pam_unix can be seen deciding it.
    server = Sshd(tmp_path_factory.mktemp("sshd"), permit_root_login="yes")
    server.start()
    yield server
    server.stop()


def console_first_sign_in(cloud: Cloud, short: str, password: str) -> str:
    cloud.user(short, password)
    assert not user_exists(short)
    assert pam("login", short, password) == "PAM_SUCCESS"  # the console creates the account
    assert user_exists(short)
    return short


def denied(user: str) -> str:
    return f"{user}@127.0.0.1: Permission denied (keyboard-interactive).\n"


# --- the stack ---------------------------------------------------------------------------------

def test_the_sshd_stack_has_the_login_stacks_cloudlogin_lines():
    assert cloudlogin_lines("sshd") == cloudlogin_lines("login")
    assert len(cloudlogin_lines("sshd")) == 3  # auth, account, password


# --- 1. a cloud user made at the console signs in over SSH ------------------------------------

def test_cloud_user_signs_in_over_ssh_with_the_cloud_password(cloud: Cloud, sshd: Sshd):
    user = console_first_sign_in(cloud, "sshsela", "Sela cloud pw 1")
    mark = cloud.idp.mark()
    result = sshd.ssh(user, "Sela cloud pw 1", command="id -un")
    assert result.status == 0, result.transcript
    assert result.prompts == ["Password: "]
    assert result.transcript == f"({user}@127.0.0.1) Password: \n{user}\n"
    assert len(token_requests(cloud.idp, mark)) == 1, "the password was not checked at the IdP"
    assert f"Accepted keyboard-interactive/pam for {user} from 127.0.0.1" in sshd.log()


def test_a_password_changed_at_the_idp_works_over_ssh_and_the_old_one_does_not(cloud: Cloud, sshd: Sshd):
    user = console_first_sign_in(cloud, "sshsami", "Sami pw 1")
    cloud.idp.set_password(user + SUFFIX, "Sami pw 2")
    assert sshd.ssh(user, "Sami pw 1").status == 255
    result = sshd.ssh(user, "Sami pw 2")
    assert result.status == 0 and result.transcript.endswith(f"\n{user}\n"), result.transcript


# --- 2. a wrong password ----------------------------------------------------------------------

def test_wrong_password_is_refused_and_changes_nothing(cloud: Cloud, sshd: Sshd):
    user = console_first_sign_in(cloud, "sshsven", "Sven pw 1")
    before = snapshot_account_files()
    mark = cloud.idp.mark()
    result = sshd.ssh(user, "not sven's password")
    assert result.status == 255 and not result.timed_out, result.transcript
    assert result.transcript.endswith(denied(user)), result.transcript
    assert f"\n{user}\n" not in result.transcript  # the command never ran
    assert token_requests(cloud.idp, mark), "the IdP was not asked"
    assert account_files_changed(before) == []
    # Three wrong answers on one connection: each is refused, then sshd's MaxAuthTries ends it.
    result = sshd.ssh(user, ["wrong 1", "wrong 2", "wrong 3"])
    assert result.status == 255 and len(result.prompts) == 3, result.transcript
    assert "Too many authentication failures" in result.transcript
    assert account_files_changed(before) == []


def test_unknown_user_is_refused_and_nothing_is_sent_or_created(cloud: Cloud, sshd: Sshd):
    """sshd gives PAM junk instead of the password for a user with no local account: CloudLogin
    cannot create accounts over SSH, even with the right cloud password."""
    cloud.user("sshsune", "Sune pw 1")
    before = snapshot_account_files()
    result = sshd.ssh("sshsune", "Sune pw 1")
    assert result.status == 255 and result.transcript.endswith(denied("sshsune")), result.transcript
    assert not user_exists("sshsune")
    assert account_files_changed(before) == []
    assert "Invalid user sshsune from 127.0.0.1" in sshd.log()


def test_unknown_user_over_ssh_sends_nothing_to_the_idp(cloud: Cloud, sshd: Sshd):
    """sshd replaces the password of an unknown user with "\\b\\n\\r\\177INCORRECT" before PAM
    sees it. Sending that to the IdP can never succeed, and lets anyone who reaches port 22 make
    failed sign-ins at the IdP for any cloud name (which IdPs count toward their lockouts)."""
    cloud.user("sshsumi", "Sumi pw 1")
    mark = cloud.idp.mark()
    result = sshd.ssh("sshsumi", "Sumi pw 1")
    assert result.status == 255, result.transcript
    assert token_requests(cloud.idp, mark) == []


# --- 3. disabled at the IdP, online and offline -----------------------------------------------

def test_user_disabled_at_the_idp_is_refused_online_and_offline(cloud: Cloud, sshd: Sshd):
    user = console_first_sign_in(cloud, "sshsade", "Sade pw 1")
    assert sshd.ssh(user, "Sade pw 1").status == 0
    cloud.idp.set_disabled(user + SUFFIX, True)
    before = snapshot_account_files()
    result = sshd.ssh(user, "Sade pw 1")
    assert result.status == 255, result.transcript
    assert result.transcript.endswith(denied(user)) and f"\n{user}\n" not in result.transcript
    assert cloud.state(user)["last_verdict"] == "revoked"
    cloud.idp.stop()
    try:
        result = sshd.ssh(user, "Sade pw 1")
        assert result.status == 255, f"offline sign-in over SSH after the IdP disabled the user:\n{result.transcript}"
        assert REFUSED_OFFLINE in result.transcript
        assert result.transcript.endswith(denied(user)) and f"\n{user}\n" not in result.transcript
    finally:
        cloud.idp.start()
    assert account_files_changed(before) == []


def test_offline_sign_in_over_ssh_with_the_synced_password(cloud: Cloud, sshd: Sshd):
    user = console_first_sign_in(cloud, "sshsigi", "Sigi pw 1")
    cloud.idp.stop()
    try:
        result = sshd.ssh(user, "Sigi pw 1")
        assert result.status == 0 and result.transcript.endswith(f"\n{user}\n"), result.transcript
        result = sshd.ssh(user, "not sigi's password")
        assert result.status == 255 and result.transcript.endswith(denied(user)), result.transcript
    finally:
        cloud.idp.start()


# --- 4. root and local users: pam_unix --------------------------------------------------------

@pytest.mark.parametrize("user,password", [("root", ROOT_PASSWORD), (LOCAL_USER, LOCAL_PASSWORD)])
def test_root_and_a_local_user_are_left_to_pam_unix(cloud: Cloud, sshd: Sshd, user: str, password: str):
    mark = cloud.idp.mark()
    result = sshd.ssh(user, password)
    assert result.status == 0, result.transcript
    assert result.transcript == f"({user}@127.0.0.1) Password: \n{user}\n"
    result = sshd.ssh(user, "wrong " + password)
    assert result.status == 255 and result.transcript == f"({user}@127.0.0.1) Password: \n{denied(user)}", result.transcript
    assert token_requests(cloud.idp, mark) == [], f"{user}'s password went to the IdP"
    # Not even while the IdP is down: pam_unix alone, no message.
    cloud.idp.stop()
    try:
        result = sshd.ssh(user, password)
        assert result.status == 0 and result.transcript == f"({user}@127.0.0.1) Password: \n{user}\n", result.transcript
    finally:
        cloud.idp.start()


def sshd_pids() -> set[int]:
    pids = set()
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "sshd":
                if (entry / "stat").read_text().rpartition(")")[2].split()[0] != "Z":  # not a zombie
                    pids.add(int(entry.name))
        except OSError:
            pass
    return pids


def test_root_is_refused_under_debians_permit_root_login_default(cloud: Cloud, sshd: Sshd, tmp_path: pathlib.Path):
    """PermitRootLogin prohibit-password (Debian's default): root's right password is refused
    too. Also: Sshd.stop() with a session open leaves no sshd process behind and ends the client."""
    before = sshd_pids()
    server = Sshd(tmp_path / "sshd", permit_root_login="prohibit-password").start()
    client = None
    try:
        result = server.ssh("root", ROOT_PASSWORD)
        assert result.status == 255 and result.transcript.endswith(denied("root")), result.transcript
        assert "Failed keyboard-interactive/pam for root from 127.0.0.1" in server.log()
        client = pexpect.spawn("/usr/bin/ssh", ["-F", "/dev/null", "-o", "PreferredAuthentications=keyboard-interactive",
                                                "-o", f"UserKnownHostsFile={server.known_hosts}", "-T", "-p", str(server.port),
                                                f"{LOCAL_USER}@127.0.0.1", "echo started; sleep 60"],
                               encoding="utf-8", timeout=20)
        client.expect("Password: ")
        client.sendline(LOCAL_PASSWORD)
        client.expect("started")
        assert sshd_pids() - before, "no sshd process while a session is open"
    finally:
        server.stop()
    left = sshd_pids() - before
    assert not left, "sshd processes left after stop(): " + "; ".join(
        f"{pid}: {pathlib.Path(f'/proc/{pid}/stat').read_text(errors='replace')}" for pid in left)
    client.expect(pexpect.EOF, timeout=10)  # the session ended with the server
    client.close()


# --- 5. what the user sees of PAM's messages over SSH -----------------------------------------

def test_what_the_user_sees_of_pam_messages(cloud: Cloud, sshd: Sshd):
    """Observed with OpenSSH 9.2p1 (Debian 12), keyboard-interactive through PAM (facts.md):

    - sshd does not pass a message on when the module sends it; it holds it until the next
      keyboard-interactive request (OpenSSH bug 2876). CloudLogin's messages come after the only
      prompt (the password), so they reach the user at the end, after the verdict: as the text of
      one more request with no prompt, which ssh prints on stderr at its LogLevel INFO or above
      (`ssh -q` shows nothing).
    - A refusal's message ("Sign-in failed.") shows once, then an empty line, then ssh's
      "Permission denied".
    - On success (offline: "Identity provider unreachable; trying offline sign-in.") sshd also
      keeps the text for the session: an interactive login (a remote terminal, no command) prints
      it again before the shell starts, so it shows twice; with a command, once.
    - Online success: the module says nothing, so nothing is shown. "Created local account…"
      never happens over SSH (test_unknown_user_is_refused_and_nothing_is_sent_or_created).
    """
    assert sshd_version().startswith("OpenSSH_9.2"), sshd_version()
    user = console_first_sign_in(cloud, "sshsora", "Sora pw 1")
    prompt = f"({user}@127.0.0.1) Password: \n"

    # Refused online: the module's error message, then ssh's own.
    result = sshd.ssh(user, "wrong")
    assert result.transcript == f"{prompt}Sign-in failed.\n\n{denied(user)}", result.transcript
    result = sshd.ssh(user, "wrong", extra_options=("-q",))
    assert result.status == 255 and result.transcript == prompt, result.transcript

    # Online success: CloudLogin says nothing, nothing is shown.
    result = sshd.ssh(user, "Sora pw 1")
    assert result.transcript == f"{prompt}{user}\n", result.transcript

    cloud.idp.stop()
    try:
        # Offline with a command: once, before the command's output.
        result = sshd.ssh(user, "Sora pw 1")
        assert result.status == 0, result.transcript
        assert result.transcript == f"{prompt}{OFFLINE}\n{user}\n", result.transcript
        # ... and not at all with ssh -q.
        result = sshd.ssh(user, "Sora pw 1", extra_options=("-q",))
        assert result.status == 0 and result.transcript == f"{prompt}{user}\n", result.transcript
        # Offline, interactive (remote terminal, login shell): twice — the instruction, then
        # sshd's login message before the banner and the shell's prompt.
        result = sshd.ssh(user, "Sora pw 1", command=None, shell_line="id -un")
        assert result.status == 0, result.transcript
        assert result.transcript.count(OFFLINE) == 2, result.transcript
        assert result.transcript.startswith(f"{prompt}{OFFLINE}\n{OFFLINE}\n"), result.transcript
        assert re.search(rf"\$ id -un; exit\n{user}\nlogout\n", result.transcript), result.transcript
        # With -q the instruction is gone and sshd's login message stays.
        result = sshd.ssh(user, "Sora pw 1", command=None, shell_line="id -un", extra_options=("-q",))
        assert result.status == 0 and result.transcript.count(OFFLINE) == 1, result.transcript
        assert result.transcript.startswith(f"{prompt}{OFFLINE}\n"), result.transcript
    finally:
        cloud.idp.start()
