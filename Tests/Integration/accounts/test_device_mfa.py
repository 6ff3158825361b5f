"""MFA by the OAuth 2.0 Device Authorization Grant (RFC 8628) for `provider = oidc`, for real:
the built module in real libpam, real /bin/login on a pseudo-terminal, real sudo and su, real
sshd and ssh, the cloudlogin CLI — against a real Glewlwyd (support/glewlwyd.py) whose user
approves the code with the calls Glewlwyd's own login page makes (`approve_device`). Inside
run-in-sandbox.

The config keys under test ([idp]): `mfa = off | when-required | always`, `password_grant = yes
| no` (no: device only), `device_timeout`, `qr_code`, `device_authorization_endpoint`. Glewlwyd
never answers the password grant with "MFA required", so `mfa = always` is what runs the device
step after a correct password here — except in the `mfa_policy` tests, where the module's
`token_endpoint` is an "MFA policy" in front of Glewlwyd's (support/mfa_policy_proxy.py): it
turns Glewlwyd's 200 to a password grant into Microsoft Entra ID's documented 400 AADSTS50076
and passes everything else through, so `mfa = when-required` meets a real "password right, MFA
required". "Refused at the phone" does not exist in Glewlwyd (no user-side deny): a code that is
never approved expires (`expire_device_codes`) or outlives `device_timeout`.

Each test uses its own user names (Glewlwyd `NAME@example.com`, email the same: `name_claim =
email` maps it to the local name NAME)."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pathlib
import re
import subprocess
import time
import urllib.parse

import pytest

from cltest import CLI, MODULE, ROOT
from device import (INTRO, NO_OFFLINE, NOT_IN_TIME, OFFLINE, PRESS_ENTER, QR_CHARS, REFUSED_HERE, WAITING, Background,
                    Console, DevicePrompt, Driver, SshDialog, Terminal, parse_device_prompt)
from glewlwyd import DEVICE_CODE_GRANT, HttpSession, Glewlwyd
from mfa_policy_proxy import MFAPolicyProxy
from sandbox import (account_files_changed, allow_sudo, create_local_user, ensure_invoker, pam_service,
                     snapshot_account_files, user_exists)
from sshd import Sshd

CONFIG = pathlib.Path("/etc/cloudlogin/device.conf")
STATE = pathlib.Path("/var/lib/cloudlogin/users")
SUFFIX = "@example.com"
INTERVAL = 2          # Glewlwyd's polling interval for these tests (its default is 5)
DEVICE_TIMEOUT = 60   # the tests' default device_timeout


def shipped(name: str) -> str:
    text = (ROOT / "pam.d" / name).read_text()
    return text.replace("pam_cloudlogin.so", f"{MODULE} config={CONFIG}")


def shadow_hash(user: str) -> str:
    for line in pathlib.Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields[1]
    raise KeyError(user)


def passwd_entry(user: str) -> list[str] | None:
    proc = subprocess.run(["getent", "passwd", user], capture_output=True, text=True)
    return proc.stdout.strip().split(":") if proc.returncode == 0 else None


class DeviceCloud:
    """The Glewlwyd IdP, the config and the PAM services of these tests."""

    def __init__(self, idp: Glewlwyd, driver: pathlib.Path, shim: pathlib.Path, confdir: pathlib.Path, workdir: pathlib.Path):
        self.idp, self.driver_bin, self.shim, self.confdir, self.workdir = idp, driver, shim, confdir, workdir
        self.runs = 0

    # --- config ---
    def write_config(self, **idp_keys: str | None) -> None:
        """The config with [idp] KEYS over the defaults (mfa = always, device_timeout = 60; a
        value None leaves the key out)."""
        client_id, secret = self.idp.clients["confidential"]
        keys = {"provider": "oidc", "issuer": self.idp.issuer, "client_id": client_id, "client_secret": secret,
                "ca_file": str(self.idp.ca_file), "scopes": "openid", "username_suffix": SUFFIX,
                "timeout": "5", "connect_timeout": "2", "mfa": "always", "device_timeout": str(DEVICE_TIMEOUT)}
        keys.update(idp_keys)
        CONFIG.parent.mkdir(exist_ok=True)
        CONFIG.write_text("[idp]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None) + """
[users]
name_claim = email
min_uid = 1000
exclude = root
create = yes
shell = /bin/bash

[offline]
allow = yes
max_days = 14
""")
        os.chown(CONFIG, 0, 0)
        os.chmod(CONFIG, 0o600)

    # --- the IdP's users ---
    def user(self, short: str, password: str, name: str = "") -> str:
        self.idp.add_user(short + SUFFIX, password, name=name or short.title() + " Example", email=short + SUFFIX)
        return short

    def approve(self, prompt: DevicePrompt, short: str, password: str) -> None:
        """The person SHORT approves the code shown, on the phone."""
        assert self.idp.approve_device(prompt.code, short + SUFFIX, password) == "deviceComplete", prompt.text

    def subject(self, short: str, password: str) -> str:
        """The `sub` Glewlwyd gives SHORT (a password grant made by the test itself)."""
        client_id, secret = self.idp.clients["confidential"]
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        status, answer, _ = HttpSession(self.idp).request(
            "POST", "/api/oidc/token", form={"grant_type": "password", "username": short + SUFFIX, "password": password,
                                             "scope": "openid"}, headers={"Authorization": "Basic " + basic})
        assert status == 200, answer
        payload = answer["id_token"].split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]

    def device_codes(self) -> int:
        """How many device codes Glewlwyd has handed out so far."""
        with contextlib.closing(self.idp._db()) as db:
            return db.execute("SELECT count(*) FROM gpo_device_authorization").fetchone()[0]

    def log_mark(self) -> int:
        return self.idp.server_log.stat().st_size

    def log_since(self, mark: int) -> str:
        with open(self.idp.server_log, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def password_grants(self, short: str, mark: int) -> int:
        """ID tokens Glewlwyd issued to SHORT since MARK (password or device grant alike)."""
        return self.log_since(mark).count(f"id_token generated for client 'linux-login' granted by user '{short}{SUFFIX}'")

    @contextlib.contextmanager
    def down(self):
        """The IdP is gone (its process stopped: it runs in this PID namespace) until the end of
        the with-block."""
        self.idp.stop()
        try:
            yield
        finally:
            self.idp.start()

    # --- records ---
    def state(self, user: str) -> dict | None:
        path = STATE / user
        return json.loads(path.read_text()) if path.exists() else None

    # --- sign-ins ---
    def driver(self, user: str, password: str = "no password expected", service: str = "cl-device",
               confdir: pathlib.Path | str | None = None, silent: bool = False, tty: str | None = None) -> Driver:
        """pam_authenticate in the background: SERVICE `cl-device` is pam_cloudlogin alone (its
        own code), `sshd` the same under sshd's name, both from a private confdir; with
        confdir=/etc/pam.d the installed shipped stacks. The module's syslog lines are kept."""
        self.runs += 1
        self.syslog = self.workdir / f"syslog-{self.runs}.txt"
        return Driver(self.driver_bin, confdir or self.confdir, service, user, password, silent=silent,
                      syslog=(self.shim, self.syslog), tty=tty)

    def syslog_text(self) -> str:
        return self.syslog.read_text(errors="replace") if self.syslog.exists() else "(no syslog)"

    def first_sign_in(self, short: str, password: str) -> None:
        """The console-style first sign-in (module alone, approved by SHORT): the account exists
        and is managed afterwards."""
        run = self.driver(short, password)
        self.approve(run.device_prompt(), short, password)
        assert run.result() == "PAM_SUCCESS", run.messages + self.syslog_text()
        assert user_exists(short)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    work = tmp_path_factory.mktemp("device")
    # pamdriver with --echo-on-stdin, built from this tree (build/pamdriver may be older).
    driver = work / "pamdriver"
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", str(driver), str(ROOT / "Tests" / "Integration" / "pamdriver.c"),
                    "-lpam"], check=True)
    shim = work / "syslog_capture.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(ROOT / "Tests" / "Integration" / "syslog_capture.c")],
                   check=True)
    confdir = work / "pam.d"
    confdir.mkdir()
    (confdir / "other").write_text("auth required pam_deny.so\naccount required pam_deny.so\n")
    for service in ("cl-device", "sshd"):
        (confdir / service).write_text(f"auth required {MODULE} config={CONFIG} debug\n")
    idp = Glewlwyd(work / "glewlwyd", device_interval=INTERVAL)
    idp.start()
    cloud = DeviceCloud(idp, driver, shim, confdir, work)
    cloud.write_config()
    with pam_service("login", shipped("login")), pam_service("sudo", shipped("sudo")), pam_service("su", shipped("su")), \
            pam_service("sshd", shipped("sshd")):
        allow_sudo("ALL")
        yield cloud
    idp.stop()


@pytest.fixture(autouse=True)
def default_config(gw: DeviceCloud):
    gw.write_config()


def local_password_is(gw: DeviceCloud, user: str, password: str) -> bool:
    """The shadow hash checked by pam_unix alone, through real libpam."""
    (gw.confdir / "unix-only").write_text("auth required pam_unix.so\n")
    proc = subprocess.run([str(gw.driver_bin), "--confdir", str(gw.confdir), "--service", "unix-only", "--user", user],
                          input=(password + "\n").encode(), capture_output=True, timeout=30)
    return "RESULT auth 0 PAM_SUCCESS" in proc.stdout.decode()


def assert_device_step(gw: DeviceCloud, prompt: DevicePrompt, seconds: int = DEVICE_TIMEOUT, qr: bool = True) -> None:
    """What the person is shown: Glewlwyd's verification URI and a user code, the QR code (which
    a phone reads as that URI), the announced wait — in that order."""
    assert prompt.uri == gw.idp.verification_uri, prompt.text
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", prompt.code), prompt.text
    assert prompt.seconds in (seconds, None), prompt.text
    if qr:
        assert prompt.qr, f"no QR code in:\n{prompt.text}"
        read = prompt.qr_texts()
        assert read, "zbarimg cannot read the QR code:\n" + "\n".join(prompt.qr)
        assert set(read) <= {f"{gw.idp.verification_uri}?code={prompt.code}", gw.idp.verification_uri}, read
        # The order: the sentence with the URI and the code, the QR code, the waiting line.
        first_qr = prompt.text.index(prompt.qr[0])
        assert prompt.text.index(prompt.code) < first_qr
        waiting = WAITING.search(prompt.text)
        assert waiting is None or first_qr < waiting.start()
    else:
        assert not prompt.qr and not (set(prompt.text) & (QR_CHARS - {" "})), prompt.text


# --- the fixture itself: the password grant alone against Glewlwyd ----------------------------

def test_password_only_sign_in_against_glewlwyd(gw: DeviceCloud):
    """mfa unset (off): the password grant alone, as before the device grant existed — the
    fixture's config, stacks and users work with the module. No device code is asked for."""
    gw.write_config(mfa=None, device_timeout=None)
    user = gw.user("dvpia", "Pia cloud pw 1", name="Pia Example")
    codes = gw.device_codes()
    console = Console(user, "Pia cloud pw 1")
    result = console.finish("id -un; echo HOME=$HOME")
    assert result.shell_started, result.transcript
    assert result.output == ["dvpia", "HOME=/home/dvpia"]
    assert "Created local account dvpia from your cloud identity." in result.transcript
    assert INTRO not in result.transcript
    assert gw.device_codes() == codes
    assert passwd_entry(user)[4] == "Pia Example"
    assert local_password_is(gw, user, "Pia cloud pw 1") and not local_password_is(gw, user, "Pia cloud pw 2")
    record = gw.state(user)
    assert record["subject"] == gw.subject(user, "Pia cloud pw 1") and record["origin"] == "created"


# --- mfa = always: the password, then the device step ------------------------------------------

def test_always_console_sign_in_shows_the_device_step_and_approval_creates_the_account(gw: DeviceCloud):
    user = gw.user("dvada", "Ada cloud pw 1", name="Ada Example")
    mark = gw.log_mark()
    console = Console(user, "Ada cloud pw 1")
    prompt = console.device_prompt()
    assert_device_step(gw, prompt)
    assert gw.password_grants(user, mark) == 1, "the device step came without a password grant that said yes"
    assert not user_exists(user), "the account was created before the device step ended"
    time.sleep(INTERVAL + 1)  # at least one poll is answered authorization_pending; nothing is pressed
    gw.approve(prompt, user, "Ada cloud pw 1")
    result = console.finish("id -un; echo HOME=$HOME")
    assert result.shell_started, result.transcript
    assert result.output == ["dvada", "HOME=/home/dvada"]
    assert "Created local account dvada from your cloud identity." in result.transcript
    assert "Login incorrect" not in result.transcript
    assert passwd_entry(user)[4] == "Ada Example"
    assert not shadow_hash(user).startswith("!")
    assert local_password_is(gw, user, "Ada cloud pw 1") and not local_password_is(gw, user, "Ada cloud pw 2")
    record = gw.state(user)
    assert record["subject"] == gw.subject(user, "Ada cloud pw 1") and record["origin"] == "created"


def test_always_without_approval_the_expired_code_fails(gw: DeviceCloud):
    """The password is right (Glewlwyd issued the password grant's tokens), but the code is never
    approved and expires: no sign-in, no account."""
    user = gw.user("dvbo", "Bo cloud pw 1")
    mark = gw.log_mark()
    before = snapshot_account_files()
    run = gw.driver(user, "Bo cloud pw 1")
    prompt = run.device_prompt()
    assert_device_step(gw, prompt)
    assert gw.password_grants(user, mark) == 1
    time.sleep(INTERVAL + 1)
    assert gw.idp.expire_device_codes() >= 1
    started = time.monotonic()
    assert run.result(timeout=30) == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert time.monotonic() - started < 3 * INTERVAL + 5, "the expiry was not noticed at the next poll"
    assert NOT_IN_TIME in run.messages
    assert not user_exists(user) and gw.state(user) is None
    assert account_files_changed(before) == []
    assert gw.password_grants(user, mark) == 1  # the device grant never gave tokens


def test_wrong_password_never_reaches_the_device_step(gw: DeviceCloud):
    user = gw.user("dvcal", "Cal cloud pw 1")
    codes = gw.device_codes()
    run = gw.driver(user, "not Cal's password")
    assert run.result() == "PAM_AUTH_ERR", run.messages
    assert "Sign-in failed." in run.messages
    assert INTRO not in run.messages
    assert gw.device_codes() == codes, "a device code was asked for after a refused password"
    assert not user_exists(user)


def test_device_timeout_bounds_the_wait(gw: DeviceCloud):
    """device_timeout = 30 (the least): a code nobody approves ends the sign-in after 30 s, not at
    Glewlwyd's 600 s expiry."""
    gw.write_config(device_timeout="30")
    user = gw.user("dvdee", "Dee cloud pw 1")
    run = gw.driver(user, "Dee cloud pw 1")
    prompt = run.device_prompt()
    assert_device_step(gw, prompt, seconds=30)
    assert run.result(timeout=90) == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert NOT_IN_TIME in run.messages, run.messages
    # Bounded by the 30 s; the wait may end up to one interval early, when the next poll would
    # come after the deadline (measured: about 28 s with an interval of 2 s).
    assert 30 - INTERVAL - 1 <= run.elapsed <= 30 + 2 * INTERVAL + 8, f"the sign-in ended after {run.elapsed:.1f} s"
    assert not user_exists(user)


def test_the_device_step_is_shown_under_pam_silent(gw: DeviceCloud):
    """PAM_SILENT (which sudo passes): the result messages are left out as ever, but the device
    step is shown — the person cannot finish without it."""
    user = gw.user("dvdot", "Dot cloud pw 1")
    run = gw.driver(user, "Dot cloud pw 1", silent=True)
    prompt = run.device_prompt()
    assert_device_step(gw, prompt)
    gw.approve(prompt, user, "Dot cloud pw 1")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()


def test_an_existing_account_gets_a_password_changed_at_the_idp_after_approval(gw: DeviceCloud):
    user = gw.user("dvedda", "Edda pw 1")
    gw.first_sign_in(user, "Edda pw 1")
    gw.idp.set_password(user + SUFFIX, "Edda pw 2")
    run = gw.driver(user, "Edda pw 2")
    gw.approve(run.device_prompt(), user, "Edda pw 2")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()
    assert local_password_is(gw, user, "Edda pw 2") and not local_password_is(gw, user, "Edda pw 1")


# --- approved by someone else -----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["password+mfa", "device-only"])
def test_approved_by_another_user_is_refused_and_creates_nothing(gw: DeviceCloud, mode: str):
    """Whoever typed the name, the device grant's ID token names someone else: refused, nothing
    created."""
    suffix = "m" if mode == "password+mfa" else "d"
    user = gw.user("dvfay" + suffix, "Fay cloud pw 1")
    other = gw.user("dvgus" + suffix, "Gus cloud pw 1")
    if mode == "device-only":
        gw.write_config(password_grant="no")
    before = snapshot_account_files()
    run = gw.driver(user, "Fay cloud pw 1")
    prompt = run.device_prompt()
    gw.approve(prompt, other, "Gus cloud pw 1")
    assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert REFUSED_HERE in run.messages, run.messages
    assert not user_exists(user) and not user_exists(other)
    assert gw.state(user) is None and gw.state(other) is None
    assert account_files_changed(before) == []


def test_approved_by_another_user_syncs_nothing_for_an_existing_account(gw: DeviceCloud):
    user = gw.user("dvhal", "Hal pw 1")
    other = gw.user("dvida", "Ida pw 1")
    gw.first_sign_in(user, "Hal pw 1")
    record = gw.state(user)
    gw.idp.set_password(user + SUFFIX, "Hal pw 2")
    before = snapshot_account_files()
    run = gw.driver(user, "Hal pw 2")
    gw.approve(run.device_prompt(), other, "Ida pw 1")
    assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert REFUSED_HERE in run.messages
    assert account_files_changed(before) == [], "something was synced after a refusal"
    assert local_password_is(gw, user, "Hal pw 1") and not local_password_is(gw, user, "Hal pw 2")
    assert gw.state(user)["subject"] == record["subject"]
    assert not user_exists(other)


# --- denied, expired: a failed MFA is no refusal of the account ---------------------------------

def test_a_denied_or_expired_code_fails_and_leaves_offline_sign_in_as_it_was(gw: DeviceCloud):
    """Glewlwyd has no user-side deny; a disabled device code is answered access_denied, as an IdP
    answers a code the person denied. Neither that nor an expired code is a refusal of the
    account: nothing local changes and offline sign-in stays open."""
    user = gw.user("dvnia", "Nia cloud pw 1")
    gw.first_sign_in(user, "Nia cloud pw 1")
    record = gw.state(user)
    before = snapshot_account_files()
    run = gw.driver(user, "Nia cloud pw 1")
    run.device_prompt()
    assert gw.idp.disable_device_codes() >= 1
    assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert "MFA verification failed." in run.messages, run.messages
    run = gw.driver(user, "Nia cloud pw 1")
    run.device_prompt()
    gw.idp.expire_device_codes()
    assert run.result() == "PAM_AUTH_ERR" and NOT_IN_TIME in run.messages, run.messages
    assert account_files_changed(before) == []
    assert gw.state(user).get("last_verdict") == record.get("last_verdict"), (record, gw.state(user))
    with gw.down():
        run = gw.driver(user, "Nia cloud pw 1")
        assert run.result() == "PAM_AUTHINFO_UNAVAIL", run.messages + gw.syslog_text()
        assert OFFLINE in run.messages


# --- the IdP goes away while the module polls -------------------------------------------------

def test_idp_gone_mid_poll_for_a_user_never_online_is_refused(gw: DeviceCloud):
    user = gw.user("dvjo", "Jo cloud pw 1")
    run = gw.driver(user, "Jo cloud pw 1")
    run.device_prompt()
    with gw.down():
        assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert NO_OFFLINE in run.messages, run.messages
    assert not user_exists(user) and gw.state(user) is None


def test_idp_gone_mid_poll_for_a_managed_user_is_an_offline_sign_in(gw: DeviceCloud):
    user = gw.user("dvkai", "Kai cloud pw 1")
    gw.first_sign_in(user, "Kai cloud pw 1")
    # The module's own code: unavailable, so pam_unix decides next.
    run = gw.driver(user, "Kai cloud pw 1")
    run.device_prompt()
    with gw.down():
        assert run.result() == "PAM_AUTHINFO_UNAVAIL", run.messages + gw.syslog_text()
    assert OFFLINE in run.messages, run.messages
    # The shipped login stack at the real console: pam_unix accepts the synced password.
    console = Console(user, "Kai cloud pw 1")
    console.device_prompt()
    with gw.down():
        result = console.finish()
    assert result.shell_started and result.output == [user], result.transcript
    assert OFFLINE in result.transcript


# --- sudo and su ------------------------------------------------------------------------------

def sudo(user: str) -> Terminal:
    """`sudo -k id -un` as USER, typed at a terminal (-k: never a cached timestamp)."""
    return Terminal(["runuser", "-u", user, "--", "sudo", "-k", "-p", "PW:", "--", "id", "-un"])


def test_sudo_shows_the_device_step_and_succeeds_after_approval(gw: DeviceCloud):
    """sudo passes PAM_SILENT; the device step is shown all the same (sudo's own conversation
    prints it), and sudo waits for the approval without a key press."""
    user = gw.user("dvlou", "Lou cloud pw 1")
    gw.first_sign_in(user, "Lou cloud pw 1")
    term = sudo(user)
    term.answer("PW:", "Lou cloud pw 1")
    prompt = term.device_prompt()
    assert_device_step(gw, prompt)
    gw.approve(prompt, user, "Lou cloud pw 1")
    status, shown = term.finish()
    assert status == 0 and shown.rstrip().endswith("root"), shown


def test_sudo_without_approval_fails(gw: DeviceCloud):
    user = gw.user("dvmo", "Mo cloud pw 1")
    gw.first_sign_in(user, "Mo cloud pw 1")
    term = sudo(user)
    term.answer("PW:", "Mo cloud pw 1")
    term.device_prompt()
    time.sleep(INTERVAL + 1)
    gw.idp.expire_device_codes()
    # sudo asks again after a failure (three tries): Ctrl-D there ends it.
    term._expect("PW:")
    term.child.sendcontrol("d")
    status, shown = term.finish()
    # sudo passes PAM_SILENT: "MFA was not completed in time." (a result message) is left out;
    # the device step's own notice of the expiry is shown.
    assert status != 0 and "expired" in shown.split("Waiting for your approval")[-1], shown
    assert not shown.rstrip().endswith("root"), shown


def test_su_shows_the_device_step_and_succeeds_after_approval(gw: DeviceCloud):
    user = gw.user("dvned", "Ned cloud pw 1")
    gw.first_sign_in(user, "Ned cloud pw 1")
    invoker = ensure_invoker()
    term = Terminal(["runuser", "-u", invoker, "--", "su", user, "-c", "id -un"])
    term.answer(r"[Pp]assword: ?", "Ned cloud pw 1")
    prompt = term.device_prompt()
    assert_device_step(gw, prompt)
    gw.approve(prompt, user, "Ned cloud pw 1")
    status, shown = term.finish()
    assert status == 0 and shown.rstrip().endswith(user), shown


# --- the other keys ----------------------------------------------------------------------------

def test_qr_code_no_shows_the_uri_and_code_only(gw: DeviceCloud):
    gw.write_config(qr_code="no")
    user = gw.user("dvoda", "Oda cloud pw 1")
    run = gw.driver(user, "Oda cloud pw 1")
    prompt = run.device_prompt()
    assert_device_step(gw, prompt, qr=False)
    assert "QR" not in prompt.text, f"the text speaks of a QR code that is not shown:\n{prompt.text}"
    gw.approve(prompt, user, "Oda cloud pw 1")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()


def test_when_required_on_an_idp_that_never_requires_mfa_is_the_password_grant_alone(gw: DeviceCloud):
    """Glewlwyd answers a right password with tokens, never with "MFA required": with
    mfa = when-required there is no device step."""
    gw.write_config(mfa="when-required")
    user = gw.user("dvpat", "Pat cloud pw 1")
    codes = gw.device_codes()
    run = gw.driver(user, "Pat cloud pw 1")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()
    assert INTRO not in run.messages and gw.device_codes() == codes
    assert local_password_is(gw, user, "Pat cloud pw 1")


def test_device_authorization_endpoint_is_the_one_configured(gw: DeviceCloud):
    """With the key set, its URL is used rather than discovery's: a wrong one ends the sign-in
    before any code exists; the right one works."""
    user = gw.user("dvquin", "Quin cloud pw 1")
    gw.write_config(device_authorization_endpoint=gw.idp.issuer + "/no-such-endpoint")
    codes = gw.device_codes()
    run = gw.driver(user, "Quin cloud pw 1")
    code = run.result()
    assert code != "PAM_SUCCESS" and INTRO not in run.messages, run.messages
    assert gw.device_codes() == codes and not user_exists(user)
    gw.write_config(device_authorization_endpoint=gw.idp.device_authorization_endpoint)
    run = gw.driver(user, "Quin cloud pw 1")
    gw.approve(run.device_prompt(), user, "Quin cloud pw 1")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()


@pytest.mark.parametrize("keys,named", [
    ({"password_grant": "no", "mfa": "off"}, "password_grant"),
    ({"mfa": "sometimes"}, "mfa"),
    ({"password_grant": "maybe"}, "password_grant"),
    ({"qr_code": "perhaps"}, "qr_code"),
    ({"device_timeout": "29"}, "device_timeout"),
    ({"device_timeout": "901"}, "device_timeout"),
    ({"device_timeout": "soon"}, "device_timeout"),
])
def test_invalid_device_settings_are_config_errors(gw: DeviceCloud, keys: dict, named: str):
    gw.write_config(**keys)
    proc = subprocess.run([str(CLI), "check", "--config", str(CONFIG)], capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}:\n{output}"
    assert named in output, output


# --- mfa = when-required meets "password right, MFA required" (Entra's AADSTS50076) -------------

@pytest.fixture(scope="module")
def policy(gw: DeviceCloud, tmp_path_factory) -> MFAPolicyProxy:
    """Glewlwyd's token endpoint behind an Entra-style MFA policy (support/mfa_policy_proxy.py),
    its certificate signed by Glewlwyd's test CA (so `ca_file` stays Glewlwyd's): a password
    grant Glewlwyd answers 200 comes back as Entra's 400 AADSTS50076; every other answer (a
    refused password, every device poll) comes back as Glewlwyd gave it."""
    proxy = MFAPolicyProxy(gw.idp, tmp_path_factory.mktemp("mfa-policy"))
    proxy.start()
    yield proxy
    proxy.stop()


MFA_REQUIRED_HERE = "Your organisation requires MFA for this sign-in."


def policy_config(gw: DeviceCloud, policy: MFAPolicyProxy, **keys: str | None) -> None:
    """The tests' config with `token_endpoint` at the policy: the password grant and the device
    polls go through it; issuer, discovery, JWKS and the device authorization endpoint stay
    Glewlwyd's."""
    gw.write_config(token_endpoint=policy.token_endpoint, **keys)


def password_grants_through(policy: MFAPolicyProxy, mark: int) -> list[tuple]:
    """(username, Glewlwyd's status, the status the module got, rewritten) of each password grant
    that went through the policy since MARK."""
    return [(r["username"], r["upstream"], r["status"], r["rewritten"])
            for r in policy.requests_since(mark) if r["grant_type"] == "password"]


def assert_polls_passed_through(policy: MFAPolicyProxy, mark: int) -> None:
    """The device polls went to the configured token_endpoint (the policy) and came back as
    Glewlwyd answered them: pending (400) until the approval, then Glewlwyd's tokens (200)."""
    seen = policy.requests_since(mark)
    assert {r["path"] for r in seen} == {urllib.parse.urlsplit(policy.token_endpoint).path}, seen
    assert {r["grant_type"] for r in seen} == {"password", DEVICE_CODE_GRANT}, seen
    polls = [r for r in seen if r["grant_type"] == DEVICE_CODE_GRANT]
    assert polls, seen
    assert all(r["status"] == r["upstream"] and not r["rewritten"] for r in polls), polls
    assert [r["status"] for r in polls] == [400] * (len(polls) - 1) + [200], polls


def test_mfa_policy_when_required_right_password_then_device_approval_signs_in_at_the_console(
        gw: DeviceCloud, policy: MFAPolicyProxy):
    """mfa = when-required, the right password at the real /bin/login: Glewlwyd accepts it (it
    issues the password grant's tokens), the policy answers AADSTS50076, the module shows the
    device step; approved at Glewlwyd, the person is signed in, the account is created and its
    local password is the one typed."""
    policy_config(gw, policy, mfa="when-required")
    user = gw.user("dvyara", "Yara cloud pw 1", name="Yara Example")
    mark, log, codes = policy.mark(), gw.log_mark(), gw.device_codes()
    console = Console(user, "Yara cloud pw 1")
    prompt = console.device_prompt()
    assert_device_step(gw, prompt)
    # Glewlwyd checked the password and said yes; the module got Entra's "MFA required".
    assert password_grants_through(policy, mark) == [(user + SUFFIX, 200, 400, True)]
    assert gw.password_grants(user, log) == 1
    assert gw.device_codes() == codes + 1
    assert not user_exists(user), "the account was created before the device step ended"
    time.sleep(INTERVAL + 1)  # at least one poll is answered authorization_pending
    gw.approve(prompt, user, "Yara cloud pw 1")
    result = console.finish("id -un; echo HOME=$HOME")
    assert result.shell_started, result.transcript
    assert result.output == ["dvyara", "HOME=/home/dvyara"]
    assert "Created local account dvyara from your cloud identity." in result.transcript
    assert MFA_REQUIRED_HERE not in result.transcript and "Login incorrect" not in result.transcript
    assert passwd_entry(user)[4] == "Yara Example"
    assert not shadow_hash(user).startswith("!")
    assert local_password_is(gw, user, "Yara cloud pw 1") and not local_password_is(gw, user, "Yara cloud pw 2")
    assert gw.password_grants(user, log) == 2  # the device grant's tokens
    assert password_grants_through(policy, mark) == [(user + SUFFIX, 200, 400, True)]
    assert_polls_passed_through(policy, mark)
    record = gw.state(user)
    assert record["subject"] == gw.subject(user, "Yara cloud pw 1") and record["origin"] == "created"


def test_mfa_policy_when_required_wrong_password_is_refused_without_a_device_code(
        gw: DeviceCloud, policy: MFAPolicyProxy):
    """A wrong password keeps Glewlwyd's own refusal (403, empty body) through the policy: "Sign-in
    failed.", no device step, no device code, no account — in real libpam and at /bin/login."""
    policy_config(gw, policy, mfa="when-required")
    user = gw.user("dvzeno", "Zeno cloud pw 1")
    mark, codes = policy.mark(), gw.device_codes()
    run = gw.driver(user, "not Zeno's password")
    assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert "Sign-in failed." in run.messages, run.messages
    assert INTRO not in run.messages
    assert password_grants_through(policy, mark) == [(user + SUFFIX, 403, 403, False)]
    result = Console(user, "not Zeno's password").finish()
    assert not result.shell_started and "Login incorrect" in result.transcript, result.transcript
    assert "Sign-in failed." in result.transcript and INTRO not in result.transcript, result.transcript
    assert password_grants_through(policy, mark) == [(user + SUFFIX, 403, 403, False)] * 2
    assert {r["grant_type"] for r in policy.requests_since(mark)} == {"password"}
    assert gw.device_codes() == codes, "a device code was asked for after a refused password"
    assert not user_exists(user) and gw.state(user) is None


def test_mfa_policy_off_refuses_mfa_required_without_a_device_code(gw: DeviceCloud, policy: MFAPolicyProxy):
    """mfa unset (off): the same AADSTS50076 after a right password is "Your organisation
    requires MFA for this sign-in." with PAM_AUTH_ERR — no device step, no device code, nothing
    created (ropg_mfa_required is deny by default)."""
    policy_config(gw, policy, mfa=None, device_timeout=None)
    user = gw.user("dvabel", "Abel cloud pw 1")
    mark, log, codes = policy.mark(), gw.log_mark(), gw.device_codes()
    before = snapshot_account_files()
    run = gw.driver(user, "Abel cloud pw 1")
    assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert MFA_REQUIRED_HERE in run.messages, run.messages
    assert INTRO not in run.messages and "Sign-in failed." not in run.messages, run.messages
    assert password_grants_through(policy, mark) == [(user + SUFFIX, 200, 400, True)]
    assert gw.password_grants(user, log) == 1  # Glewlwyd did accept the password
    result = Console(user, "Abel cloud pw 1").finish()
    assert not result.shell_started and "Login incorrect" in result.transcript, result.transcript
    assert MFA_REQUIRED_HERE in result.transcript and INTRO not in result.transcript, result.transcript
    assert {r["grant_type"] for r in policy.requests_since(mark)} == {"password"}
    assert gw.device_codes() == codes
    assert not user_exists(user) and gw.state(user) is None
    assert account_files_changed(before) == []


def test_mfa_policy_method_prompt_without_an_mfa_token_is_the_device_step(gw: DeviceCloud, policy: MFAPolicyProxy):
    """mfa_method = prompt (the default, set here by name): the MFA API needs an mfa_token, which
    Entra's 50076 answer does not carry, so the device step runs; approved, PAM_SUCCESS."""
    policy_config(gw, policy, mfa="when-required", mfa_method="prompt")
    user = gw.user("dvbryn", "Bryn cloud pw 1")
    mark = policy.mark()
    run = gw.driver(user, "Bryn cloud pw 1")
    prompt = run.device_prompt()
    assert_device_step(gw, prompt)
    gw.approve(prompt, user, "Bryn cloud pw 1")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()
    log = gw.syslog_text()
    assert "requires MFA; asking for approval by device authorization" in log, log
    assert "answering it in the prompt" not in log, log
    assert password_grants_through(policy, mark) == [(user + SUFFIX, 200, 400, True)]
    assert_polls_passed_through(policy, mark)
    assert local_password_is(gw, user, "Bryn cloud pw 1")


# --- device only (password_grant = no) --------------------------------------------------------

def test_device_only_console_sign_in_asks_no_password_and_creates_a_locked_account(gw: DeviceCloud):
    gw.write_config(password_grant="no")
    user = gw.user("dvrae", "Rae cloud pw 1", name="Rae Example")
    mark = gw.log_mark()
    console = Console(user, password=None)  # no password prompt may come
    prompt = console.device_prompt()
    assert_device_step(gw, prompt)
    assert gw.password_grants(user, mark) == 0, "a password grant was made in device-only mode"
    gw.approve(prompt, user, "Rae cloud pw 1")
    result = console.finish()
    assert result.shell_started and result.output == [user], result.transcript
    assert not re.search(r"[Pp]assword: ?", result.transcript), result.transcript
    assert "Created local account dvrae from your cloud identity." in result.transcript
    entry = passwd_entry(user)
    assert entry[4] == "Rae Example" and entry[5] == "/home/dvrae"
    assert shadow_hash(user).startswith("!"), shadow_hash(user)
    assert not local_password_is(gw, user, "Rae cloud pw 1")
    record = gw.state(user)
    assert record["subject"] == gw.subject(user, "Rae cloud pw 1") and record["origin"] == "created"


def test_device_only_never_asks_for_a_password_and_is_refused_while_the_idp_is_down(gw: DeviceCloud):
    gw.write_config(password_grant="no", mfa=None)  # password_grant = no implies mfa = always
    user = gw.user("dvsol", "Sol cloud pw 1")
    run = gw.driver(user)
    gw.approve(run.device_prompt(), user, "Sol cloud pw 1")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()
    assert not run.asked_password, run.err.text()
    # Signed in online once, but device-only: no offline sign-in, mid-poll or from the start.
    run = gw.driver(user)
    run.device_prompt()
    with gw.down():
        assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
        assert NO_OFFLINE in run.messages, run.messages
        run = gw.driver(user)
        assert run.result() == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
        assert NO_OFFLINE in run.messages and not run.asked_password, run.err.text()
        # The shipped stack at the console: refused, and pam_unix cannot let anyone in.
        result = Console(user, password=None).finish()
        assert not result.shell_started and "Login incorrect" in result.transcript, result.transcript


def test_device_only_leaves_local_accounts_to_pam_unix(gw: DeviceCloud):
    """root and a local account CloudLogin does not manage get PAM_IGNORE before anything is
    asked or sent: no device code, no message (and pam_unix decides in the shipped stacks)."""
    gw.write_config(password_grant="no")
    if not user_exists("dvlocal"):
        create_local_user("dvlocal", "Local pw 1")
    codes = gw.device_codes()
    for name in ("root", "dvlocal"):
        run = gw.driver(name)
        # The module said PAM_IGNORE; libpam turns a stack that only ignored into PAM_PERM_DENIED.
        assert run.result() == "PAM_PERM_DENIED", run.messages
        assert "; PAM_IGNORE" in gw.syslog_text() and "not a cloud user" in gw.syslog_text(), gw.syslog_text()
        assert run.messages.strip() == "" and not run.asked_password, run.err.text()
    assert gw.device_codes() == codes


# --- the CLI ---------------------------------------------------------------------------------

def test_login_trace_shows_the_device_flow_and_no_secret(gw: DeviceCloud):
    """`cloudlogin login --trace`: the device authorization request, the polls and the token
    answer are shown; the device code, the tokens and the password are not (checked against the
    hashes Glewlwyd keeps of every code and token it issued)."""
    user = gw.user("dvtess", "Tess cloud pw 1")
    cli = Background([str(CLI), "login", user, "--password-stdin", "--trace", "--dry-run", "--config", str(CONFIG)],
                     stdin_text="Tess cloud pw 1\n")
    prompt = cli.device_prompt()
    assert_device_step(gw, prompt)
    time.sleep(2 * INTERVAL + 1)  # a poll or two answered authorization_pending
    gw.approve(prompt, user, "Tess cloud pw 1")
    assert cli.wait() == 0, cli.shown()
    output = cli.shown()
    lines = output.splitlines()
    device_auth = [line for line in lines if "POST " + gw.idp.device_authorization_endpoint in line]
    assert device_auth and "HTTP 200" in device_auth[0], output
    polls = [line for line in lines if "POST " + gw.idp.token_endpoint in line and "device_code" in line]
    assert len(polls) >= 2, output
    assert all("HTTP 400" in line for line in polls[:-1]) and "HTTP 200" in polls[-1], polls
    # RFC 8628: at most one poll per `interval` (Glewlwyd answers an early one slow_down, and
    # one that keeps polling early never gets through).
    assert len(polls) <= cli.elapsed / INTERVAL + 2, f"{len(polls)} polls in {cli.elapsed:.1f} s:\n{output}"
    assert "slow_down" not in output, output
    # No secret: no JWT (access and ID tokens are JWTs), no string that hashes to a device code
    # or a token Glewlwyd stored, not the password.
    assert "Tess cloud pw 1" not in output
    assert not re.search(r"eyJ[\w-]{8,}\.[\w-]{8,}", output), output
    hashes: set[str] = set()
    with contextlib.closing(gw.idp._db()) as db:
        for table, column in (("gpo_device_authorization", "gpoda_device_code_hash"),
                              ("gpo_refresh_token", "gpor_token_hash"), ("gpo_access_token", "gpoa_token_hash")):
            with contextlib.suppress(Exception):
                hashes |= {row[0] for row in db.execute(f"SELECT {column} FROM {table}")}
    assert any(h.startswith("{SHA512}") for h in hashes), hashes
    leaked = [word for word in set(re.findall(r"[A-Za-z0-9_-]{16,}", output))
              if "{SHA512}" + base64.b64encode(hashlib.sha512(word.encode()).digest()).decode() in hashes]
    assert leaked == [], f"codes or tokens in the trace: {leaked}\n{output}"


# --- over SSH --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sshd(gw: DeviceCloud, tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd-device"))
    server.start()
    yield server
    server.stop()


def test_ssh_password_then_device_approval(gw: DeviceCloud, sshd: Sshd):
    """A cloud user made at the console signs in over SSH: the password, then one prompt with the
    URI, the code and the QR code; Enter after approving on the phone."""
    user = gw.user("dvuma", "Uma cloud pw 1")
    gw.first_sign_in(user, "Uma cloud pw 1")
    ssh = SshDialog(sshd, user, "Uma cloud pw 1")
    prompt = ssh.device_prompt()
    assert_device_step(gw, prompt)
    assert prompt.text.endswith(PRESS_ENTER)
    time.sleep(INTERVAL)  # reading the prompt, approving: the module waits for Enter meanwhile
    gw.approve(prompt, user, "Uma cloud pw 1")
    ssh.child.sendline("")
    status, transcript = ssh.finish()
    assert status == 0, transcript
    assert transcript.rstrip().endswith(user), transcript
    assert f"Accepted keyboard-interactive/pam for {user} from 127.0.0.1" in sshd.log()


def test_ssh_enter_without_approval_fails_once_the_code_expires(gw: DeviceCloud, sshd: Sshd):
    user = gw.user("dvvic", "Vic cloud pw 1")
    gw.first_sign_in(user, "Vic cloud pw 1")
    ssh = SshDialog(sshd, user, "Vic cloud pw 1")
    ssh.device_prompt()
    ssh.child.sendline("")  # Enter, but nothing was approved: the module polls
    time.sleep(INTERVAL + 1)
    gw.idp.expire_device_codes()
    status, transcript = ssh.finish()
    assert status == 255, transcript
    assert NOT_IN_TIME in transcript, transcript
    assert f"{user}@127.0.0.1: Permission denied" in transcript, transcript


def test_sshd_sends_the_device_step_as_one_prompt_and_a_failed_conversation_cancels(gw: DeviceCloud):
    """Under PAM service sshd, through real libpam: no message before the prompt (sshd would hold
    it), one echo-on prompt with the whole text ending in the Enter request; a conversation that
    fails (the driver's stdin at EOF) ends the sign-in at once with PAM_AUTH_ERR, never as an
    outage; Enter after approval signs in. (OpenSSH's own client never fails the conversation on
    Ctrl-D: it answers with an empty line, like Enter — test_device_harness.py.)"""
    user = gw.user("dvwes", "Wes cloud pw 1")
    gw.first_sign_in(user, "Wes cloud pw 1")
    run = gw.driver(user, "Wes cloud pw 1", service="sshd")
    run.wait_for(re.escape(PRESS_ENTER))
    raw = run.err.text()
    assert raw.count("PROMPT echo_on: ") == 1 and "MSG info: " + INTRO not in raw, raw
    prompt = parse_device_prompt(raw[raw.index("PROMPT echo_on: "):])
    assert_device_step(gw, prompt)
    assert raw.rstrip("\n").endswith(PRESS_ENTER), raw
    run.close_stdin()
    assert run.result(timeout=30) == "PAM_AUTH_ERR", run.messages + gw.syslog_text()
    assert run.elapsed < 10, f"the failed conversation did not cancel: {run.elapsed:.1f} s"
    run = gw.driver(user, "Wes cloud pw 1", service="sshd")
    prompt = run.device_prompt()
    gw.approve(prompt, user, "Wes cloud pw 1")
    run.send("")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()


def test_pam_tty_ssh_is_sshd_too(gw: DeviceCloud):
    """sshd sets PAM_TTY to "ssh": under another service name the device step is the Enter
    prompt as well."""
    user = gw.user("dvxia", "Xia cloud pw 1")
    gw.first_sign_in(user, "Xia cloud pw 1")
    run = gw.driver(user, "Xia cloud pw 1", tty="ssh")
    prompt = run.device_prompt()
    assert "PROMPT echo_on: " + INTRO in run.err.text() and "MSG info: " + INTRO not in run.err.text(), run.err.text()
    assert prompt.text.endswith(PRESS_ENTER)
    gw.approve(prompt, user, "Xia cloud pw 1")
    run.send("")
    assert run.result() == "PAM_SUCCESS", run.messages + gw.syslog_text()
