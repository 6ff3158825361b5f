"""The login window's job, for real: the shipped login/sudo/su stacks with pam_cloudlogin.so,
real /bin/login in a pseudo-terminal, real sudo and su, real useradd/chpasswd/gpasswd, against a
real OpenID provider — inside run-in-sandbox (overlay over /etc), so the machine is untouched."""
from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import subprocess
import time

import pytest

from cltest import DRIVER, MODULE, ROOT
from llng import LemonLDAP
from sandbox import (allow_sudo, account_files_changed, create_local_user, install_pam_service, pam_service, pwck_grpck_clean,
                     run_login, run_su, run_sudo, snapshot_account_files, user_exists)

CONFIG = pathlib.Path("/etc/cloudlogin/cloudlogin.conf")
STATE = pathlib.Path("/var/lib/cloudlogin/users")
SUFFIX = "@example.com"


def shipped(name: str) -> str:
    text = (ROOT / "pam.d" / name).read_text()
    return text.replace("pam_cloudlogin.so", str(MODULE))


def getent(database: str, key: str) -> list[str] | None:
    proc = subprocess.run(["getent", database, key], capture_output=True, text=True)
    return proc.stdout.strip().split(":") if proc.returncode == 0 else None


def groups_of(user: str) -> set[str]:
    return set(subprocess.run(["id", "-nG", user], capture_output=True, text=True, check=True).stdout.split())


def pam(service: str, user: str, password: str) -> str:
    """Real libpam with the service file from /etc/pam.d (the shipped stack)."""
    proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", service, "--user", user],
                          input=(password + "\n").encode(), capture_output=True, timeout=120)
    results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert results, proc.stdout.decode() + proc.stderr.decode()
    return results[-1]


def pam_messages(service: str, user: str, password: str) -> str:
    """What the stack tells the user (sudo itself passes PAM_SILENT and shows none of it)."""
    proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", service, "--user", user],
                          input=(password + "\n").encode(), capture_output=True, timeout=120)
    return "\n".join(line for line in proc.stderr.decode().splitlines() if line.startswith("MSG "))


def local_password_is(user: str, password: str) -> bool:
    """Checks the shadow hash with pam_unix alone, through real libpam."""
    with pam_service("unix-only", "auth required pam_unix.so\naccount required pam_unix.so\n"):
        return pam("unix-only", user, password) == "PAM_SUCCESS"


def token_requests(idp: LemonLDAP, mark: int) -> list[str]:
    return [line for line in idp.requests_since(mark) if line.startswith("POST /oauth2/token")]


class Cloud:
    def __init__(self, idp: LemonLDAP):
        self.idp = idp

    def user(self, short: str, password: str, name: str = "", groups: tuple[str, ...] = ()) -> str:
        self.idp.add_user(short + SUFFIX, password, name=name or short.title() + " Example",
                          email=short + SUFFIX, groups=list(groups))
        return short

    def state(self, user: str) -> dict:
        return json.loads((STATE / user).read_text())

    def set_state(self, user: str, **changes) -> None:
        record = self.state(user)
        record.update(changes)
        (STATE / user).write_text(json.dumps(record))


def config_text(idp: LemonLDAP) -> str:
    """The config of the account tests (also test_upgrade.py's): offline 14 days, g-admins ->
    sudo, g-dev -> developers, demote."""
    client_id, secret = idp.clients["confidential"]
    return f"""[idp]
provider = oidc
issuer = {idp.issuer}
client_id = {client_id}
client_secret = {secret}
ca_file = {idp.ca_file}
username_suffix = {SUFFIX}
timeout = 5
connect_timeout = 2

[users]
name_claim = preferred_username
min_uid = 1000
exclude = root
create = yes
shell = /bin/bash
admin_groups = g-admins
admin_local_group = sudo
group_map = g-dev:developers
demote = yes

[offline]
allow = yes
max_days = 14"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    idp = LemonLDAP(tmp_path_factory.mktemp("llng-accounts"))
    idp.start()
    CONFIG.parent.mkdir(exist_ok=True)
    CONFIG.write_text(config_text(idp))

    os.chown(CONFIG, 0, 0)
    os.chmod(CONFIG, 0o600)
    for service in ("login", "sudo", "su", "passwd"):
        install_pam_service(service, shipped(service))
    pathlib.Path("/etc/skel/.cloudlogin-skel").write_text("from skel\n")
    subprocess.run(["groupadd", "-f", "developers"], check=True)
    allow_sudo("ALL")
    yield Cloud(idp)
    idp.stop()


# --- first login at the console --------------------------------------------------------------

def test_first_console_login_creates_the_account(cloud: Cloud):
    user = cloud.user("gina", "Gina's cloud pw 1", name="Gina Example")
    assert not user_exists(user)
    result = run_login(user, "Gina's cloud pw 1", command="id -un; echo HOME=$HOME; cat ~/.cloudlogin-skel")
    assert result.shell_started, result.transcript
    assert result.output == ["gina", "HOME=/home/gina", "from skel"]
    assert "Created local account gina from your cloud identity." in result.transcript
    entry = getent("passwd", "gina")
    assert entry is not None and entry[4] == "Gina Example" and entry[5] == "/home/gina" and entry[6] == "/bin/bash"
    assert local_password_is("gina", "Gina's cloud pw 1")
    assert not local_password_is("gina", "something else")
    record = cloud.state("gina")
    assert record["subject"] == "gina@example.com" and record["origin"] == "created"


def test_full_upn_at_the_prompt_maps_to_the_short_name(cloud: Cloud):
    cloud.user("fiona", "Fiona pw 1")
    result = run_login("fiona@example.com", "Fiona pw 1")
    assert result.shell_started, result.transcript
    assert result.output[0] == "fiona"
    assert getent("passwd", "fiona@example.com") is None


def test_wrong_password_at_the_console_creates_nothing(cloud: Cloud):
    cloud.user("hugo", "Hugo pw 1")
    before = snapshot_account_files()
    result = run_login("hugo", "not hugo's password")
    assert not result.shell_started and result.login_incorrect
    assert "Sign-in failed." in result.transcript
    assert account_files_changed(before) == []


# --- sudo and su -----------------------------------------------------------------------------

def test_sudo_with_the_cloud_password_and_a_password_change_at_the_idp(cloud: Cloud):
    cloud.user("ivan", "Ivan pw 1")
    assert pam("login", "ivan", "Ivan pw 1") == "PAM_SUCCESS"  # first login creates the account
    code, out = run_sudo("ivan", "Ivan pw 1", ["id", "-un"])
    assert code == 0 and out.strip().endswith("root"), out
    cloud.idp.set_password("ivan" + SUFFIX, "Ivan pw 2")
    code, out = run_sudo("ivan", "Ivan pw 1")
    assert code != 0, "the old password still works while the IdP is online"
    assert local_password_is("ivan", "Ivan pw 1")  # not synced yet
    code, out = run_sudo("ivan", "Ivan pw 2")
    assert code == 0, out
    assert local_password_is("ivan", "Ivan pw 2") and not local_password_is("ivan", "Ivan pw 1")


def test_su_to_a_cloud_user(cloud: Cloud):
    cloud.user("judy", "Judy pw 1")
    assert pam("login", "judy", "Judy pw 1") == "PAM_SUCCESS"
    code, out = run_su("judy", "Judy pw 1")
    assert code == 0 and out.strip().endswith("judy"), out
    code, out = run_su("judy", "wrong")
    assert code != 0


def test_a_screen_locker_that_is_not_root_authenticates_and_changes_nothing(cloud: Cloud):
    """A screen locker runs as the user: the cloud password works, nothing local changes."""
    cloud.user("lena", "Lena pw 1")
    assert pam("login", "lena", "Lena pw 1") == "PAM_SUCCESS"
    cloud.idp.set_password("lena" + SUFFIX, "Lena pw 2")
    # A config the user can read: a public client, no secret.
    client_id, _ = cloud.idp.clients["public"]
    ca = pathlib.Path("/etc/cloudlogin/locker-ca.pem")  # the run's CA lives in a root-only folder
    ca.write_bytes(pathlib.Path(cloud.idp.ca_file).read_bytes())
    os.chmod(ca, 0o644)
    config = pathlib.Path("/etc/cloudlogin/locker.conf")
    config.write_text(CONFIG.read_text().replace("client_secret", "; client_secret").replace(
        cloud.idp.clients["confidential"][0], client_id).replace(str(cloud.idp.ca_file), str(ca)))
    os.chown(config, 0, 0)
    os.chmod(config, 0o644)
    confdir = pathlib.Path("/etc/cloudlogin/locker-pam.d")  # readable by the user, unlike tmp_path
    confdir.mkdir(exist_ok=True)
    (confdir / "locker").write_text(f"auth required {MODULE} config={config} debug\n")
    before = snapshot_account_files()
    record = cloud.state("lena")
    proc = subprocess.run(["runuser", "-u", "lena", "--", str(DRIVER), "--confdir", str(confdir), "--service", "locker",
                           "--user", "lena"], input=b"Lena pw 2\n", capture_output=True, timeout=60)
    assert "RESULT auth 0 PAM_SUCCESS" in proc.stdout.decode(), proc.stdout.decode() + proc.stderr.decode()
    assert account_files_changed(before) == []
    assert cloud.state("lena") == record
    assert local_password_is("lena", "Lena pw 1")  # synced only at the next sign-in as root
    proc = subprocess.run(["runuser", "-u", "lena", "--", str(DRIVER), "--confdir", str(confdir), "--service", "locker",
                           "--user", "lena"], input=b"Lena pw 1\n", capture_output=True, timeout=60)
    assert "PAM_AUTH_ERR" in proc.stdout.decode()


def test_local_password_change_of_a_managed_user_is_refused(cloud: Cloud):
    cloud.user("kate", "Kate pw 1")
    assert pam("login", "kate", "Kate pw 1") == "PAM_SUCCESS"
    proc = subprocess.run(["runuser", "-u", "kate", "--", "passwd"], input="Kate pw 1\nNew pw 22!\nNew pw 22!\n",
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "managed by your identity provider" in proc.stdout + proc.stderr
    assert local_password_is("kate", "Kate pw 1")


# --- offline ---------------------------------------------------------------------------------

def test_offline_sign_in_follows_the_policy(cloud: Cloud):
    cloud.user("leo", "Leo pw 1")
    assert pam("login", "leo", "Leo pw 1") == "PAM_SUCCESS"
    local = "localbob"
    if not user_exists(local):
        create_local_user(local, "Local bob pw")
    cloud.idp.stop()
    try:
        code, out = run_sudo("leo", "Leo pw 1")
        assert code == 0, f"offline sudo within max_days failed: {out}"
        code, _ = run_sudo("leo", "wrong")
        assert code != 0
        # 15 days without an online sign-in: refused, with the reason.
        last = cloud.state("leo")["last_online_success"]
        cloud.set_state("leo", last_online_success=last - 15 * 86400)
        code, out = run_sudo("leo", "Leo pw 1")
        assert code != 0
        assert "older than [offline] max_days" in pam_messages("sudo", "leo", "Leo pw 1")
        cloud.set_state("leo", last_online_success=last)
        # A local-only account is not affected.
        code, out = run_sudo(local, "Local bob pw")
        assert code == 0, out
    finally:
        cloud.idp.start()
    mark = cloud.idp.mark()
    code, out = run_sudo(local, "Local bob pw")
    assert code == 0, out
    assert token_requests(cloud.idp, mark) == [], "a local-only user's password went to the IdP"


def test_disabled_at_the_idp_means_no_offline_sign_in(cloud: Cloud):
    cloud.user("mia", "Mia pw 1")
    assert pam("login", "mia", "Mia pw 1") == "PAM_SUCCESS"
    cloud.idp.set_disabled("mia" + SUFFIX, True)
    code, _ = run_sudo("mia", "Mia pw 1")
    assert code != 0
    assert cloud.state("mia")["last_verdict"] == "revoked"
    cloud.idp.stop()
    try:
        code, out = run_sudo("mia", "Mia pw 1")
        assert code != 0, "offline sign-in after the IdP disabled the user"
        assert "refused this account" in pam_messages("sudo", "mia", "Mia pw 1")
    finally:
        cloud.idp.start()
    # The account phase denies too (e.g. a session started another way).
    with pam_service("acct-only", f"auth required pam_permit.so\naccount required {MODULE}\naccount required pam_unix.so\n"):
        proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "acct-only", "--user", "mia", "--phase", "all"],
                              input=b"x\n", capture_output=True)
    assert "PAM_PERM_DENIED" in proc.stdout.decode(), proc.stdout.decode()
    cloud.idp.set_disabled("mia" + SUFFIX, False)
    code, out = run_sudo("mia", "Mia pw 1")
    assert code == 0, out
    assert cloud.state("mia")["last_verdict"] == "accepted"


# --- groups ----------------------------------------------------------------------------------

def test_admin_group_grants_sudo_and_removal_demotes(cloud: Cloud):
    cloud.user("nina", "Nina pw 1", groups=("g-admins", "g-dev"))
    assert pam("login", "nina", "Nina pw 1") == "PAM_SUCCESS"
    assert {"sudo", "developers"} <= groups_of("nina")
    subprocess.run(["gpasswd", "-a", "nina", "adm"], check=True, capture_output=True)
    cloud.user("nina", "Nina pw 1", groups=())
    assert pam("login", "nina", "Nina pw 1") == "PAM_SUCCESS"
    groups = groups_of("nina")
    assert "sudo" not in groups and "developers" not in groups
    assert "adm" in groups, "a group added by hand was taken away"


# --- hostile input ---------------------------------------------------------------------------

def test_hostile_name_claim_is_sanitised(cloud: Cloud):
    cloud.idp.add_user("olga" + SUFFIX, "Olga pw 1", name="Olga: the\nroot:x:0:0:,=admin", email="", groups=[])
    assert pam("login", "olga", "Olga pw 1") == "PAM_SUCCESS"
    entry = getent("passwd", "olga")
    assert entry is not None and len(entry) == 7
    assert entry[4] == "Olga therootx00admin"
    ok, report = pwck_grpck_clean()
    assert ok, report


@pytest.mark.parametrize("name", ["-o", "../x", "a:b", "a" * 300, "PAUL", "päul", "x y", "root@example.com"])
def test_hostile_user_names_change_nothing(cloud: Cloud, name: str):
    before = snapshot_account_files()
    mark = cloud.idp.mark()
    assert pam("login", name, "some password") != "PAM_SUCCESS"
    assert account_files_changed(before) == []
    assert token_requests(cloud.idp, mark) == []


def test_subject_mismatch_is_refused(cloud: Cloud):
    cloud.user("quinn", "Quinn pw 1")
    assert pam("login", "quinn", "Quinn pw 1") == "PAM_SUCCESS"
    # The local account quinn is bound to another cloud identity (a recycled name at the IdP):
    # the IdP's quinn@example.com now has a different subject than the one recorded.
    cloud.set_state("quinn", subject="00u-the-previous-quinn")
    before = snapshot_account_files()
    result = run_login("quinn", "Quinn pw 1")
    assert not result.shell_started
    assert "belongs to another cloud identity" in result.transcript
    assert account_files_changed(before) == []
    assert cloud.state("quinn")["subject"] == "00u-the-previous-quinn"


def test_a_name_from_another_domain_cannot_take_a_local_name(cloud: Cloud):
    cloud.user("rick", "Rick pw 1")
    assert pam("login", "rick", "Rick pw 1") == "PAM_SUCCESS"
    cloud.idp.add_user("rick@contractor.test", "Other pw 1", name="Impostor", email="", groups=["g-admins"])
    before = snapshot_account_files()
    result = run_login("rick@contractor.test", "Other pw 1")
    assert not result.shell_started
    assert "no valid local user name in this computer's domain" in result.transcript
    assert account_files_changed(before) == []


def test_the_invoking_users_environment_cannot_steer_libcurl(cloud: Cloud, tmp_path):
    """su and sudo are setuid: their environment is the caller's. A proxy of the caller's must not
    make the IdP look unreachable (offline sign-in for a user the IdP disabled), and
    SSLKEYLOGFILE must not make root write TLS keys to a file of the caller's choosing."""
    cloud.user("sven", "Sven pw 1")
    assert pam("login", "sven", "Sven pw 1") == "PAM_SUCCESS"
    cloud.idp.set_disabled("sven" + SUFFIX, True)
    keylog = pathlib.Path("/etc/cloudlogin-keylog-test")
    hostile = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "all_proxy": "http://127.0.0.1:9",
               "SSLKEYLOGFILE": str(keylog)}
    env_args = [f"{key}={value}" for key, value in hostile.items()]
    mark = cloud.idp.mark()
    proc = subprocess.run(["runuser", "-u", "sven", "--", "env", *env_args, "sudo", "-S", "-k", "-p", "PW:", "true"],
                          input="Sven pw 1\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, "the caller's proxy made the IdP unreachable and pam_unix let a disabled user in"
    assert token_requests(cloud.idp, mark), "the IdP was not asked"
    assert not keylog.exists(), "libcurl wrote TLS keys where the caller said"
    cloud.idp.set_disabled("sven" + SUFFIX, False)


# --- concurrency -----------------------------------------------------------------------------

def test_concurrent_first_logins(cloud: Cloud):
    users = [cloud.user(f"conc{i:02d}", f"Conc pw {i}") for i in range(20)]
    cloud.user("multi", "Multi pw 1")
    jobs = [(u, f"Conc pw {i}") for i, u in enumerate(users)] + [("multi", "Multi pw 1")] * 10
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda job: pam("login", *job), jobs))
    assert results == ["PAM_SUCCESS"] * len(jobs)
    passwd = pathlib.Path("/etc/passwd").read_text().splitlines()
    for user in users + ["multi"]:
        assert sum(1 for line in passwd if line.split(":")[0] == user) == 1, user
    ok, report = pwck_grpck_clean()
    assert ok, report


# --- status ----------------------------------------------------------------------------------

def test_cloudlogin_status_lists_the_managed_accounts(cloud: Cloud):
    cloud.user("rosa", "Rosa pw 1", groups=("g-admins",))
    assert pam("login", "rosa", "Rosa pw 1") == "PAM_SUCCESS"
    out = subprocess.run([str(ROOT / "build" / "cloudlogin"), "status", "rosa"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "subject: rosa@example.com" in out.stdout
    assert "offline sign-in: 14 day(s) left" in out.stdout
    assert "groups granted by CloudLogin: sudo" in out.stdout
    missing = subprocess.run([str(ROOT / "build" / "cloudlogin"), "status", "nobody-here"], capture_output=True, text=True)
    assert missing.returncode == 4
