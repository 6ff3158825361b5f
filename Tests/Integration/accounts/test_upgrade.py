"""Upgrades keep every account working (trust issue item 9).

A machine that ran the current release (PREVIOUS_RELEASE in the Makefile; `make previous` builds
its module and CLI into build/previous/) has local accounts, managed-user records, marks and a
discovery/JWKS cache written by that release. The upgrade replaces the module and nothing else:
the admin's copies of the release's stacks stay as they were. Then, without anyone touching the
machine, the new module (build/pam_cloudlogin.so) must read what the release wrote (migrating it
in place where the format changed): no managed user locked out or turned unmanaged.

Each test makes its own users with the previous module — first console sign-in through real
libpam with the release's login stack; one granted the admin group; one the IdP disabled, whose
record says revoked — then points the same stacks at the new module and checks what people see:
PAM results of real sudo/su and of libpam, and `cloudlogin status` (text and --json fields that
the release already had). Nothing here reads the record's JSON: other changes rewrite it.

Runs in run-in-sandbox like test_accounts.py; a real LemonLDAP::NG IdP on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import pytest

from cltest import DRIVER, MODULE, ROOT
from llng import LemonLDAP
from test_accounts import config_text
from sandbox import install_pam_service, pam_service, allow_sudo, run_su, run_sudo, user_exists

PREVIOUS = ROOT / "build" / "previous"
PREVIOUS_MODULE = PREVIOUS / "pam_cloudlogin.so"
PREVIOUS_CLI = PREVIOUS / "cloudlogin"
NEW_CLI = ROOT / "build" / "cloudlogin"
CONFIG = pathlib.Path("/etc/cloudlogin/cloudlogin.conf")
SUFFIX = "@example.com"
SERVICES = ("login", "sudo", "su", "passwd")


def previous_release() -> str:
    text = (ROOT / "Makefile").read_text()
    m = re.search(r"^PREVIOUS_RELEASE\s*\??=\s*([0-9a-f]{40})\s*$", text, re.M)
    assert m, "no PREVIOUS_RELEASE = <full commit hash> in the Makefile"
    return m.group(1)


def require_previous_build() -> str:
    """The previous release's build must be there and be the Makefile's PREVIOUS_RELEASE: a
    missing one fails the test (it is never skipped)."""
    want = previous_release()
    hint = f"run `make previous` (scripts/build-previous {want}); `make test` does"
    for path in (PREVIOUS_MODULE, PREVIOUS_CLI, PREVIOUS / "pam.d" / "login", PREVIOUS / "COMMIT"):
        if not path.exists():
            pytest.fail(f"{path} is missing: the upgrade test needs the previous release's build: {hint}", pytrace=False)
    built = (PREVIOUS / "COMMIT").read_text().strip()
    if built != want:
        pytest.fail(f"build/previous holds {built}, not PREVIOUS_RELEASE {want}: {hint}", pytrace=False)
    return built


def stack(service: str, module: pathlib.Path) -> str:
    """The release's shipped stack for SERVICE (as an admin copied it) with MODULE in it."""
    return (PREVIOUS / "pam.d" / service).read_text().replace("pam_cloudlogin.so", str(module))


def use_module(module: pathlib.Path) -> None:
    """What the upgrade changes: the module the (unchanged) stacks load."""
    for service in SERVICES:
        install_pam_service(service, stack(service, module))


def pam(service: str, user: str, password: str, phase: str = "auth", confdir: str = "/etc/pam.d") -> str:
    proc = subprocess.run([str(DRIVER), "--confdir", confdir, "--service", service, "--user", user, "--phase", phase],
                          input=(password + "\n").encode(), capture_output=True, timeout=120)
    results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert results, proc.stdout.decode() + proc.stderr.decode()
    return results[-1]


def account_phase_of_the_module(user: str) -> str:
    """What the new module alone answers in the account phase, told apart by real libpam:
    'success', 'ignore' (left to pam_unix) or 'denied' (PAM_PERM_DENIED)."""
    text = f"account [success=done ignore=ignore perm_denied=die default=die] {MODULE}\naccount required pam_deny.so\n"
    with pam_service("upgrade-acct-probe", text):
        result = pam("upgrade-acct-probe", user, "", phase="acct")
    return {"PAM_SUCCESS": "success", "PAM_AUTH_ERR": "ignore", "PAM_PERM_DENIED": "denied"}.get(result, result)


def local_password_is(user: str, password: str) -> bool:
    with pam_service("upgrade-unix-only", "auth required pam_unix.so\naccount required pam_unix.so\n"):
        return pam("upgrade-unix-only", user, password) == "PAM_SUCCESS"


def groups_of(user: str) -> set[str]:
    return set(subprocess.run(["id", "-nG", user], capture_output=True, text=True, check=True).stdout.split())


def status(cli: pathlib.Path, user: str) -> tuple[str, dict]:
    """`cloudlogin status USER` (text) and `--json` (the user's object); both must exit 0."""
    text = subprocess.run([str(cli), "status", user], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, f"{cli} status {user} exited {text.returncode}:\n{text.stdout}{text.stderr}"
    js = subprocess.run([str(cli), "status", user, "--json"], capture_output=True, text=True, timeout=60)
    assert js.returncode == 0, f"{cli} status {user} --json exited {js.returncode}:\n{js.stdout}{js.stderr}"
    users = json.loads(js.stdout)["users"]
    assert [u["name"] for u in users] == [user], js.stdout
    return text.stdout, users[0]


def granted_in(text: str) -> set[str]:
    """The groups on status's "groups granted by CloudLogin:" line (any order; "none" is empty)."""
    m = re.search(r"^\s*groups granted by CloudLogin: (.*)$", text, re.M)
    assert m, text
    return set() if m.group(1) == "none" else set(m.group(1).split(", "))


class Cloud:
    def __init__(self, idp: LemonLDAP):
        self.idp = idp

    def user(self, short: str, password: str, groups: tuple[str, ...] = ()) -> str:
        self.idp.add_user(short + SUFFIX, password, name=short.title() + " Upgrade", email=short + SUFFIX, groups=list(groups))
        return short


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """The IdP and a config like test_accounts.py's (offline allowed, 14 days; g-admins -> sudo)."""
    require_previous_build()
    idp = LemonLDAP(tmp_path_factory.mktemp("llng-upgrade"))
    idp.start()
    CONFIG.parent.mkdir(exist_ok=True)
    saved_config = CONFIG.read_bytes() if CONFIG.exists() else None
    saved_services = {service: (pathlib.Path("/etc/pam.d") / service).read_text() for service in SERVICES
                      if (pathlib.Path("/etc/pam.d") / service).exists()}
    CONFIG.write_text(config_text(idp))

    os.chown(CONFIG, 0, 0)
    os.chmod(CONFIG, 0o600)
    subprocess.run(["groupadd", "-f", "developers"], check=True)
    allow_sudo("ALL")
    yield Cloud(idp)
    idp.stop()
    # Put back what the tests before this file left (test_accounts.py's stacks and config).
    for service, text in saved_services.items():
        install_pam_service(service, text)
    if saved_config is None:
        CONFIG.unlink(missing_ok=True)
    else:
        CONFIG.write_bytes(saved_config)


class Users:
    """Three managed users made by the previous release (names start with TAG)."""
    def __init__(self, tag: str):
        self.good, self.admin, self.revoked = f"{tag}good", f"{tag}adm", f"{tag}rev"
        self.pw = {self.good: f"{tag} good pw 1", self.admin: f"{tag} adm pw 1", self.revoked: f"{tag} rev pw 1"}


@pytest.fixture
def upgraded(cloud: Cloud, request) -> Users:
    """State written by the previous release, then the module replaced by the new one."""
    tag = "u" + re.sub(r"[^a-z0-9]", "", request.node.name.removeprefix("test_").lower())[:10]
    users = Users(tag)
    cloud.user(users.good, users.pw[users.good])
    cloud.user(users.admin, users.pw[users.admin], groups=("g-admins", "g-dev"))
    cloud.user(users.revoked, users.pw[users.revoked])

    use_module(PREVIOUS_MODULE)
    for user in (users.good, users.admin, users.revoked):
        assert not user_exists(user)
        assert pam("login", user, users.pw[user]) == "PAM_SUCCESS", f"the previous release did not create {user}"
        assert user_exists(user)
    assert {"sudo", "developers"} <= groups_of(users.admin)
    cloud.idp.set_disabled(users.revoked + SUFFIX, True)
    code, out = run_sudo(users.revoked, users.pw[users.revoked])
    assert code != 0, out
    # What the release itself says about its records (its own CLI): the baseline.
    for user in (users.good, users.admin):
        text, js = status(PREVIOUS_CLI, user)
        assert js["last_verdict"] == "accepted" and js["offline"]["allowed"] is True, text
    _, js = status(PREVIOUS_CLI, users.admin)
    assert set(js["granted_groups"]) == {"developers", "sudo"}, js
    _, js = status(PREVIOUS_CLI, users.revoked)
    assert js["last_verdict"] == "revoked" and js["offline"]["allowed"] is False, js

    use_module(MODULE)  # the upgrade
    return users


def assert_status_as_the_release_wrote_it(users: Users) -> None:
    for user in (users.good, users.admin, users.revoked):
        text, js = status(NEW_CLI, user)
        assert js["subject"] == user + SUFFIX and f"subject: {user}{SUFFIX}" in text, text
        assert js["origin"] == "created", js
    text, js = status(NEW_CLI, users.good)
    assert js["last_verdict"] == "accepted" and "last verdict: accepted" in text, text
    assert js["offline"]["allowed"] is True and js["offline"]["days_left"] >= 13, js
    assert "offline sign-in: 14 day(s) left" in text or "offline sign-in: 13 day(s) left" in text, text
    text, js = status(NEW_CLI, users.admin)
    assert set(js["granted_groups"]) == {"developers", "sudo"}, js
    assert granted_in(text) == {"developers", "sudo"}, text
    text, js = status(NEW_CLI, users.revoked)
    assert js["last_verdict"] == "revoked" and "last verdict: revoked" in text, text
    assert js["offline"]["allowed"] is False and "offline sign-in: refused" in text, text


def test_status_reads_what_the_release_wrote(upgraded: Users):
    assert_status_as_the_release_wrote_it(upgraded)
    # Every record is listed (none unreadable, none lost).
    listing = subprocess.run([str(NEW_CLI), "status", "--json"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    names = {u["name"] for u in json.loads(listing.stdout)["users"]}
    assert {upgraded.good, upgraded.admin, upgraded.revoked} <= names


def test_account_phase_after_the_upgrade(upgraded: Users):
    assert account_phase_of_the_module(upgraded.revoked) == "denied"
    assert account_phase_of_the_module(upgraded.good) == "ignore"
    assert account_phase_of_the_module(upgraded.admin) == "ignore"
    # The whole account stack of the release's login file, with the new module.
    assert pam("login", upgraded.good, "", phase="acct") == "PAM_SUCCESS"
    assert pam("login", upgraded.revoked, "", phase="acct") == "PAM_PERM_DENIED"


def test_offline_sign_in_after_the_upgrade(cloud: Cloud, upgraded: Users):
    """Before any online sign-in with the new module: only the release's records to go by."""
    cloud.idp.stop()
    try:
        code, out = run_sudo(upgraded.good, upgraded.pw[upgraded.good], ["id", "-un"])
        assert code == 0 and out.strip().endswith("root"), f"offline sudo within max_days failed after the upgrade: {out}"
        code, out = run_su(upgraded.admin, upgraded.pw[upgraded.admin])
        assert code == 0 and out.strip().endswith(upgraded.admin), out
        code, out = run_sudo(upgraded.good, "not the password")
        assert code != 0, out
        # Disabled at the IdP, recorded as revoked by the release: no offline sign-in, although
        # pam_unix would accept the synced password.
        assert local_password_is(upgraded.revoked, upgraded.pw[upgraded.revoked])
        code, out = run_sudo(upgraded.revoked, upgraded.pw[upgraded.revoked])
        assert code != 0, "the user the IdP disabled signed in offline after the upgrade"
        assert pam("sudo", upgraded.revoked, upgraded.pw[upgraded.revoked]) != "PAM_SUCCESS"
    finally:
        cloud.idp.start()
    assert_status_as_the_release_wrote_it(upgraded)


def test_online_sign_in_after_the_upgrade(cloud: Cloud, upgraded: Users):
    good, admin, revoked = upgraded.good, upgraded.admin, upgraded.revoked
    before = {user: status(NEW_CLI, user)[1] for user in (good, admin, revoked)}
    # A password changed at the IdP since the release's last sign-in: only a module that still
    # manages the account asks the IdP and syncs it (an unmanaged account would be pam_unix's,
    # which knows only the old one).
    cloud.idp.set_password(good + SUFFIX, "good pw 2 after upgrade")
    mark = cloud.idp.mark()
    code, out = run_sudo(good, "good pw 2 after upgrade", ["id", "-un"])
    assert code == 0 and out.strip().endswith("root"), out
    assert [line for line in cloud.idp.requests_since(mark) if line.startswith("POST /oauth2/token")], "the IdP was not asked"
    assert local_password_is(good, "good pw 2 after upgrade") and not local_password_is(good, upgraded.pw[good])
    text, js = status(NEW_CLI, good)
    assert js["subject"] == before[good]["subject"] == good + SUFFIX, js
    assert js["last_verdict"] == "accepted" and js["last_online_success"] >= before[good]["last_online_success"], js

    # The admin: groups kept while the IdP still says g-admins...
    code, out = run_sudo(admin, upgraded.pw[admin], ["id", "-un"])
    assert code == 0, out
    assert {"sudo", "developers"} <= groups_of(admin)
    text, js = status(NEW_CLI, admin)
    assert js["subject"] == admin + SUFFIX and set(js["granted_groups"]) == {"developers", "sudo"}, js
    # ...and taken away when it no longer does: only possible if the release's record of what it
    # granted was read. A group added by hand stays.
    subprocess.run(["gpasswd", "-a", admin, "adm"], check=True, capture_output=True)
    cloud.user(admin, upgraded.pw[admin], groups=())
    assert pam("login", admin, upgraded.pw[admin]) == "PAM_SUCCESS"
    groups = groups_of(admin)
    assert "sudo" not in groups and "developers" not in groups and "adm" in groups, groups
    text, js = status(NEW_CLI, admin)
    assert js["granted_groups"] == [] and granted_in(text) == set(), text

    # Revoked by the release, still disabled: refused online too; enabled again: back in.
    code, out = run_sudo(revoked, upgraded.pw[revoked])
    assert code != 0, out
    cloud.idp.set_disabled(revoked + SUFFIX, False)
    code, out = run_sudo(revoked, upgraded.pw[revoked], ["id", "-un"])
    assert code == 0, out
    text, js = status(NEW_CLI, revoked)
    assert js["subject"] == revoked + SUFFIX and js["last_verdict"] == "accepted", js


def test_records_stay_readable_after_the_new_module_rewrote_them(cloud: Cloud, upgraded: Users):
    """Generic: whatever the new module did to a release's record at its first sign-in (a
    migration in place), the new module and CLI read the result, online, offline and in the
    account phase."""
    good, admin = upgraded.good, upgraded.admin
    for user in (good, admin):
        assert pam("sudo", user, upgraded.pw[user], phase="all") == "PAM_SUCCESS"  # first sign-in: rewrites
    for user in (good, admin):
        text, js = status(NEW_CLI, user)
        assert js["subject"] == user + SUFFIX and js["last_verdict"] == "accepted", text
        assert account_phase_of_the_module(user) == "ignore"
        assert pam("su", user, upgraded.pw[user], phase="all") == "PAM_SUCCESS"  # second sign-in: reads the rewrite
    cloud.idp.stop()
    try:
        for user in (good, admin):
            code, out = run_sudo(user, upgraded.pw[user])
            assert code == 0, f"offline sign-in after the new module's first sign-in failed for {user}: {out}"
    finally:
        cloud.idp.start()
    # And the revoked one, rewritten by a refused online sign-in, stays revoked.
    assert pam("sudo", upgraded.revoked, upgraded.pw[upgraded.revoked]) != "PAM_SUCCESS"
    assert account_phase_of_the_module(upgraded.revoked) == "denied"
    _, js = status(NEW_CLI, upgraded.revoked)
    assert js["last_verdict"] == "revoked" and js["offline"]["allowed"] is False, js
