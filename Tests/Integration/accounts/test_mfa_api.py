"""MFA in the prompt through the MFA API on the password grant, for real: the release module in
real libpam, the real /bin/login on a pseudo-terminal, real sudo, and Debian's sshd with the real
`ssh` client (support/sshd.py's SshDialog), against support/mfa_api.py in both of its dialects —
inside run-in-sandbox.

* Okta Identity Engine direct authentication: `provider = okta`, `okta_api = direct`, `[okta]
  client_id` (a public Native app), the password grant at {okta_domain}/oauth2/default/v1/token,
  `…/v1/challenge` for a push (with or without the number to tap) and SMS, no challenge for a
  code. The server's `interval` is 1 s here, so pushes are polled every second.
* Auth0: `provider = oidc`, `issuer = https://TENANT/`, `mfa = when-required` (`mfa_method =
  prompt`, the default), a confidential client; `GET /mfa/authenticators`, a numbered menu when
  there is more than one usable authenticator, `POST /mfa/challenge`. Auth0's challenge answer
  names no interval, so a push is polled every 5 s (the module's default).

What is asserted is what a person or an admin sees: the prompts and messages on the terminal,
the PAM code the module logged (syslog, captured from /bin/login through
Tests/Integration/syslog_capture.c, or the driver's RESULT line), the account files (the account,
its shadow hash checked by pam_unix, its groups), and the requests the IdP received. Every test
uses its own user names."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import threading
import time

import pexpect
import pytest

from cltest import CLI, DRIVER, MODULE, ROOT
from mfa_api import MFA_OOB, MFA_OTP, MFAAPIServer
from sandbox import (TOOL_ENV, account_files_changed, pam_service, run_sudo, snapshot_account_files,
                     user_exists)
from sshd import Sshd, SshDialog, SshResult

CONFIG = pathlib.Path("/etc/cloudlogin/mfaapi.conf")
STATE = pathlib.Path("/var/lib/cloudlogin/users")
SUFFIX = "@example.com"
OKTA_CLIENT = "0oaCLOUDLOGINDIRECT"           # a public Native app: client_id alone
AUTH0_CLIENT = "cloudlogin-auth0-client"
AUTH0_SECRET = "Auth0 client s3cret value"   # confidential: HTTP Basic, and in the challenge's JSON
DIALECTS = ("okta", "auth0")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")

OKTA_MENU = ("Choose how to confirm your sign-in:\n  1. Okta Verify push\n"
             "  2. a code from Okta Verify or an authenticator app\n  3. a code by SMS")
CODE_PROMPT = "Code from your authenticator app: "
SMS_PROMPT = "Code sent to you by SMS: "
PRESS_ENTER = "Press Enter once you have approved it on your phone: "
NEVER_ONLINE = ("Identity provider unreachable, and offline sign-in is not possible: this account has not "
                "signed in online on this machine yet.")
TRYING_OFFLINE = "Identity provider unreachable; trying offline sign-in."
AUTH0_POLL_SECONDS = 5   # MFAAPI.defaultIntervalSeconds: Auth0's challenge names no interval


def auth0_menu(short: str, sms: bool = False) -> str:
    """The menu for an Auth0 user with a Guardian push (and the Guardian code that comes with it;
    the server names the device "SHORT's phone"), and SMS when asked for."""
    return ("Choose how to confirm your sign-in:\n"
            f"  1. a push to Auth0 Guardian ({short}'s phone)\n"
            "  2. a code from your authenticator app"
            + ("\n  3. a code by SMS (XXXXXXXX8730)" if sms else ""))


# --- the two IdPs, the config, the PAM stacks --------------------------------------------------

def shipped(name: str) -> str:
    text = (ROOT / "pam.d" / name).read_text()
    return text.replace("pam_cloudlogin.so", f"{MODULE} config={CONFIG}")


def write_config(idp: MFAAPIServer, **keys: str) -> None:
    """The config for IDP's dialect. KEYS: more [idp] keys (auth0) or [okta] keys (okta)."""
    users = """[users]
min_uid = 1000
create = yes
admin_groups = g-admins
admin_local_group = sudo
group_map = g-dev:developers
demote = yes

[offline]
allow = yes
max_days = 14
"""
    common = f"""ca_file = {idp.ca_file}
username_suffix = {SUFFIX}
timeout = 5
connect_timeout = 2
"""
    if idp.dialect == "okta":
        okta = {"client_id": OKTA_CLIENT, "factor": "ask", "push_timeout": "20", **keys}
        text = (f"[idp]\nprovider = okta\nokta_domain = {idp.base_url}\nokta_api = direct\n{common}\n{users}\n[okta]\n"
                + "".join(f"{key} = {value}\n" for key, value in okta.items()))
    else:
        extra = {"mfa": "when-required", **keys}
        text = (f"[idp]\nprovider = oidc\nissuer = {idp.issuer}\nclient_id = {AUTH0_CLIENT}\n"
                f"client_secret = {AUTH0_SECRET}\n{common}"
                + "".join(f"{key} = {value}\n" for key, value in extra.items()) + "\n" + users)
    CONFIG.parent.mkdir(exist_ok=True)
    CONFIG.write_text(text)
    os.chown(CONFIG, 0, 0)
    os.chmod(CONFIG, 0o600)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    okta = MFAAPIServer(tmp_path_factory.mktemp("okta-direct"), dialect="okta", client_id=OKTA_CLIENT, interval=1)
    auth0 = MFAAPIServer(tmp_path_factory.mktemp("auth0"), dialect="auth0", client_id=AUTH0_CLIENT,
                         client_secret=AUTH0_SECRET)
    okta.start()
    auth0.start()
    subprocess.run(["groupadd", "-f", "developers"], check=True)
    try:
        with pam_service("login", shipped("login")), pam_service("sudo", shipped("sudo")):
            yield {"okta": okta, "auth0": auth0}
    finally:
        okta.stop()
        auth0.stop()


@pytest.fixture(params=DIALECTS)
def idp(request, servers) -> MFAAPIServer:
    server = servers[request.param]
    server.start()   # a test that stopped it and failed before starting it again
    write_config(server)
    return server


@pytest.fixture
def okta(servers) -> MFAAPIServer:
    servers["okta"].start()
    write_config(servers["okta"])
    return servers["okta"]


@pytest.fixture
def auth0(servers) -> MFAAPIServer:
    servers["auth0"].start()
    write_config(servers["auth0"])
    return servers["auth0"]


@pytest.fixture(scope="module")
def sshd(servers, tmp_path_factory):
    if not pathlib.Path("/usr/sbin/sshd").exists():
        pytest.fail("/usr/sbin/sshd is missing: scripts/install-deps installs openssh-server")
    with pam_service("sshd", shipped("sshd")), Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def name(idp: MFAAPIServer, short: str) -> str:
    """A user name of its own per dialect (tests run in both)."""
    return ("ok" if idp.dialect == "okta" else "a0") + short


# --- what the person and the admin see ---------------------------------------------------------

@dataclasses.dataclass
class Console:
    shell: bool        # a shell started and `id -un` printed the user
    transcript: str    # the terminal, \r\n -> \n, ANSI codes removed
    syslog: list[str]  # every syslog line /bin/login and the modules in it wrote

    @property
    def pam_codes(self) -> list[str]:
        """The PAM code of each of pam_cloudlogin's sign-in summaries ("authentication …;
        PAM_X; online; idp …")."""
        return re.findall(r"authentication [^\n]*?; (PAM_[A-Z_]+); (?:online|offline|local)", "\n".join(self.syslog))

    def count(self, text: str) -> int:
        return self.transcript.count(text)


def console(user: str, password: str, steps=(), shim: pathlib.Path | None = None, timeout: float = 60,
            unexpected: tuple[str, ...] = ()) -> Console:
    """The real /bin/login on a pseudo-terminal: the name, the password, then for each (regex,
    answer) of STEPS: wait for the regex, then type the answer — or, when the answer is a
    function, call it with the match (the test acts at the IdP as the person would on the phone)
    and type what it returns unless None. Then, if a shell starts, `id -un`. A regex of
    UNEXPECTED (a prompt that should not come) ends the dialogue at once, marked in the
    transcript. The syslog lines of login (pam_cloudlogin's with them) are captured through
    SHIM."""
    log_file = pathlib.Path(f"/run/cloudlogin-test-syslog-{user}-{time.monotonic_ns()}")
    env = {"TERM": "dumb", **TOOL_ENV}
    if shim is not None:
        env.update(LD_PRELOAD=str(shim), SYSLOG_CAPTURE=str(log_file))
    child = pexpect.spawn("/bin/login", [], env=env, encoding="utf-8", codec_errors="replace",
                          dimensions=(40, 400), timeout=timeout, cwd="/")
    log: list[str] = []
    shell = False
    try:
        child.expect("login: ")
        child.sendline(user)
        child.expect(r"[Pp]assword: ?")
        log.append(child.before + child.after)
        child.sendline(password)
        for pattern, answer in steps:
            child.expect(pattern)
            log.append(child.before + child.after)
            text = answer(child.match) if callable(answer) else answer
            if text is not None:
                child.sendline(text)
        index = child.expect([re.compile(r"[$#] \Z"), "Login incorrect", pexpect.EOF, *map(re.compile, unexpected)])
        log.append(child.before + (child.after if isinstance(child.after, str) else ""))
        if index > 2:
            log.append("\n<<TEST: an unexpected prompt; the dialogue ends here>>")
        if index == 0:
            child.sendline("printf '%s\\n' \"__CL\"\"WHO=$(id -un)__\"; exit")
            child.expect(r"__CLWHO=([a-z0-9_-]+)__")
            log.append(child.before + child.after)
            shell = child.match.group(1) == user
    except (pexpect.TIMEOUT, pexpect.EOF) as error:
        log.append(f"{child.before}\n<<{type(error).__name__}>>")
    finally:
        child.close(force=True)
    syslog = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
    log_file.unlink(missing_ok=True)
    return Console(shell, _ANSI.sub("", "".join(log).replace("\r\n", "\n")).replace("\r", ""), syslog)


def pam(user: str, password: str, code: str | None = None) -> tuple[str, str]:
    """Real libpam with pam_cloudlogin alone (its own PAM code); CODE answers every echo-on
    prompt, without it the conversation fails at one. Returns (PAM code, what was shown)."""
    env = dict(os.environ)
    if code is not None:
        env["PAMDRIVER_ECHO_ON_ANSWER"] = code
    with pam_service("cl-mfaapi", f"auth required {MODULE} config={CONFIG}\n"):
        proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "cl-mfaapi", "--user", user],
                              input=(password + "\n").encode(), capture_output=True, env=env, timeout=120)
    results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")]
    return (results[-1] if results else "none"), proc.stderr.decode()


def local_password_is(user: str, password: str) -> bool:
    """The shadow hash checked by pam_unix alone, through real libpam."""
    with pam_service("unix-only", "auth required pam_unix.so\n"):
        proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "unix-only", "--user", user],
                              input=(password + "\n").encode(), capture_output=True)
    return "RESULT auth 0 PAM_SUCCESS" in proc.stdout.decode()


def groups_of(user: str) -> set[str]:
    return set(subprocess.run(["id", "-nG", user], capture_output=True, text=True, check=True).stdout.split())


def gecos(user: str) -> str:
    return subprocess.run(["getent", "passwd", user], capture_output=True, text=True, check=True).stdout.split(":")[4]


def record(user: str) -> dict:
    return json.loads((STATE / user).read_text())


def mfa_steps(idp: MFAAPIServer, mark: int) -> list[tuple]:
    """(endpoint, grant_type, status, error) of the token, challenge and authenticator requests
    since MARK (discovery and JWKS left out)."""
    return [(r["endpoint"], r["grant_type"], r["status"], r["error"]) for r in idp.requests_since(mark)
            if r["endpoint"] in ("token", "challenge", "authenticators")]


def polls(idp: MFAAPIServer, mark: int) -> list[dict]:
    return [r for r in idp.requests_since(mark) if r["endpoint"] == "token" and r["grant_type"] == MFA_OOB]


def one_mfa_token(idp: MFAAPIServer, mark: int, login: str) -> None:
    """Every MFA request since MARK carried the one mfa_token the password grant handed out."""
    requests = [r for r in idp.requests_since(mark) if r["endpoint"] in ("token", "challenge", "authenticators")
                and r["grant_type"] != "password"]
    used = {r["params"].get("mfa_token") or r["bearer"] for r in requests}
    assert len(idp.issued(login)["mfa_token"]) == 1 and len(used) == 1 and None not in used, requests


def signed_in_once(idp: MFAAPIServer, short: str, password: str, groups=("g-admins",), **mfa) -> tuple[str, str]:
    """SHORT at the IdP without MFA, signed in once at the real /bin/login (which creates the
    account sudo and sshd need), then given the authenticators in MFA under the same subject.
    Returns (local name, login at the IdP)."""
    login = short + SUFFIX
    sub = idp.add_user(login, password, name=short.title() + " Example", groups=list(groups))
    assert not user_exists(short)
    seen = console(short, password)
    assert seen.shell, seen.transcript
    assert "Created local account" in seen.transcript
    idp.add_user(login, password, sub=sub, name=short.title() + " Example", groups=list(groups), **mfa)
    return short, login


# --- 1. each kind of authenticator at the console: account created, password synced, groups --------

def created_with(user: str, password: str, seen: Console, groups_expected: set[str]) -> None:
    """What the person and the admin see after a first console sign-in with MFA."""
    assert seen.shell, seen.transcript
    assert f"Created local account {user} from your cloud identity." in seen.transcript, seen.transcript
    assert seen.pam_codes == ["PAM_SUCCESS"], seen.syslog
    assert gecos(user) == user.title() + " Example"
    assert local_password_is(user, password), "the shadow hash does not verify with the cloud password"
    assert not local_password_is(user, password + "x")
    assert {"sudo", "developers"} & groups_of(user) == groups_expected, groups_of(user)


def test_code_at_the_console_creates_the_account(idp: MFAAPIServer, syslog_shim):
    """Okta: the menu of the three kinds, 2 (a code; no challenge call); Auth0: one authenticator
    app, so no menu and no challenge (Auth0 lets OTP skip it). The ID token's groups
    (g-admins, g-dev) give sudo and developers."""
    user = name(idp, "cody")
    login = user + SUFFIX
    sub = idp.add_user(login, "Cody pw 1", name=user.title() + " Example", groups=["g-admins", "g-dev"], otp="246810")
    mark = idp.mark()
    steps = [(re.escape("Method [1-3]: "), "2")] if idp.dialect == "okta" else []
    seen = console(user, "Cody pw 1", steps + [(re.escape(CODE_PROMPT), "246810")], shim=syslog_shim)
    created_with(user, "Cody pw 1", seen, {"sudo", "developers"})
    assert record(user)["subject"] == sub
    if idp.dialect == "okta":
        assert OKTA_MENU in seen.transcript, seen.transcript
        assert mfa_steps(idp, mark) == [("token", "password", 403, "mfa_required"), ("token", MFA_OTP, 200, None)]
    else:
        assert "Choose how to confirm" not in seen.transcript, seen.transcript
        assert mfa_steps(idp, mark) == [("token", "password", 403, "mfa_required"), ("authenticators", None, 200, None),
                                        ("token", MFA_OTP, 200, None)]
    one_mfa_token(idp, mark, login)
    assert "Wrong code" not in seen.transcript


def test_okta_push_with_the_number_at_the_console(okta: MFAAPIServer, syslog_shim):
    """The menu, 1: the challenge asks for a push; the number to tap is on the console before
    the push is approved (the test approves only once it has read it), then the polls see the
    approval."""
    user, login = "okpia", "okpia" + SUFFIX
    okta.add_user(login, "Pia pw 1", name="Okpia Example", groups=["g-admins"], push="never", number_challenge="58")
    mark = okta.mark()
    read = []

    def phone(match: re.Match) -> None:
        read.append(match.group(1))
        assert not any(r["status"] == 200 for r in polls(okta, mark)), "approved before the number was shown"
        okta.set_push(login, "approve")   # the person taps 58 on the phone

    seen = console(user, "Pia pw 1", [(re.escape("Method [1-3]: "), "1"),
                                      (r"Approve the sign-in on your phone: tap (\d+)\u2026", phone)], shim=syslog_shim)
    assert read == ["58"], seen.transcript
    created_with(user, "Pia pw 1", seen, {"sudo"})
    challenge = [r for r in okta.requests_since(mark) if r["endpoint"] == "challenge"]
    assert len(challenge) == 1 and challenge[0]["params"]["channel_hint"] == "push", challenge
    assert challenge[0]["params"]["challenge_types_supported"].split() == [MFA_OOB, MFA_OTP]
    assert challenge[0]["params"]["client_id"] == OKTA_CLIENT and challenge[0]["client_auth"] == "none"
    assert polls(okta, mark)[-1]["status"] == 200
    one_mfa_token(okta, mark, login)


def test_push_without_a_number_at_the_console(idp: MFAAPIServer, syslog_shim):
    """Okta with `factor = push` (no menu), a push without number challenge approved at the
    second poll; Auth0: the menu of a Guardian push and the Guardian code, 1, approved at the
    first poll (5 s)."""
    user = name(idp, "paula")
    login = user + SUFFIX
    if idp.dialect == "okta":
        write_config(idp, factor="push")
        idp.add_user(login, "Paula pw 1", name=user.title() + " Example", groups=["g-dev"], push="approve", push_polls=1)
        steps = []
    else:
        idp.add_user(login, "Paula pw 1", name=user.title() + " Example", groups=["g-dev"], push="approve", push_polls=0)
        steps = [(re.escape("Method [1-2]: "), "1")]
    mark = idp.mark()
    started = time.monotonic()
    seen = console(user, "Paula pw 1", steps, shim=syslog_shim)
    created_with(user, "Paula pw 1", seen, {"developers"})
    assert seen.count("Approve the sign-in on your phone\u2026") == 1, seen.transcript
    assert "tap" not in seen.transcript
    if idp.dialect == "okta":
        assert "Choose how to confirm" not in seen.transcript
        assert mfa_steps(idp, mark) == [("token", "password", 403, "mfa_required"), ("challenge", None, 200, None),
                                        ("token", MFA_OOB, 400, "authorization_pending"), ("token", MFA_OOB, 200, None)]
    else:
        assert auth0_menu(user) in seen.transcript, seen.transcript
        challenge = [r for r in idp.requests_since(mark) if r["endpoint"] == "challenge"]
        assert [(c["params"]["challenge_type"], c["params"]["authenticator_id"], c["params"]["client_secret"])
                for c in challenge] == [("oob", idp.authenticator_ids(login)["push"], "<redacted>")]
        assert mfa_steps(idp, mark) == [("token", "password", 403, "mfa_required"), ("authenticators", None, 200, None),
                                        ("challenge", None, 200, None), ("token", MFA_OOB, 200, None)]
        assert time.monotonic() - started >= AUTH0_POLL_SECONDS
    one_mfa_token(idp, mark, login)


def test_sms_at_the_console(idp: MFAAPIServer, syslog_shim):
    """Okta: the menu, 3 (challenge with channel_hint=sms); Auth0: SMS alone, no menu. The code
    of the text message is sent back as binding_code with the oob_code."""
    user = name(idp, "sami")
    login = user + SUFFIX
    idp.add_user(login, "Sami pw 1", name=user.title() + " Example", groups=["g-admins"], sms="765432")
    mark = idp.mark()
    steps = [(re.escape("Method [1-3]: "), "3")] if idp.dialect == "okta" else []
    seen = console(user, "Sami pw 1", steps + [(re.escape(SMS_PROMPT), "765432")], shim=syslog_shim)
    created_with(user, "Sami pw 1", seen, {"sudo"})
    assert idp.sms_sent(login) == ["765432"]
    challenge = [r for r in idp.requests_since(mark) if r["endpoint"] == "challenge"]
    if idp.dialect == "okta":
        assert [c["params"]["channel_hint"] for c in challenge] == ["sms"]
    else:
        assert [(c["params"]["challenge_type"], c["params"]["authenticator_id"]) for c in challenge] == \
            [("oob", idp.authenticator_ids(login)["sms"])]
    final = [r for r in idp.requests_since(mark) if r["endpoint"] == "token"][-1]
    assert (final["grant_type"], final["status"]) == (MFA_OOB, 200)
    assert final["params"]["binding_code"] == "<redacted>" and final["params"]["oob_code"].startswith("oob_code#")
    one_mfa_token(idp, mark, login)


def test_auth0_guardian_code_from_the_menu(auth0: MFAAPIServer, syslog_shim):
    """A Guardian user picks 2, the code of the authenticator app (RFC 6238 from the user's
    secret): no challenge, the mfa-otp grant."""
    user, login = "a0gwen", "a0gwen" + SUFFIX
    auth0.add_user(login, "Gwen pw 1", name="A0Gwen Example", groups=[], push="never")
    mark = auth0.mark()
    seen = console(user, "Gwen pw 1", [(re.escape("Method [1-2]: "), "2"),
                                       (re.escape(CODE_PROMPT), lambda _: auth0.totp(login))], shim=syslog_shim)
    created_with(user, "Gwen pw 1", seen, set())
    assert auth0_menu(user) in seen.transcript
    assert mfa_steps(auth0, mark) == [("token", "password", 403, "mfa_required"), ("authenticators", None, 200, None),
                                      ("token", MFA_OTP, 200, None)]


# --- 2. refusals -------------------------------------------------------------------------------------

def test_rejected_push(idp: MFAAPIServer, syslog_shim):
    user = name(idp, "rolf")
    login = user + SUFFIX
    if idp.dialect == "okta":
        write_config(idp, factor="push")
        idp.add_user(login, "Rolf pw 1", name=user.title() + " Example", push="reject", push_polls=1, number_challenge="26")
        steps = [(r"tap 26\u2026", None)]
    else:
        idp.add_user(login, "Rolf pw 1", name=user.title() + " Example", push="reject", push_polls=0)
        steps = [(re.escape("Method [1-2]: "), "1")]
    before = snapshot_account_files()
    mark = idp.mark()
    seen = console(user, "Rolf pw 1", steps, shim=syslog_shim)
    assert not seen.shell and "Login incorrect" in seen.transcript, seen.transcript
    assert "The sign-in was rejected on your phone.\nMFA verification failed." in seen.transcript, seen.transcript
    assert seen.pam_codes == ["PAM_AUTH_ERR"], seen.syslog
    assert account_files_changed(before) == [] and not user_exists(user)
    rejected = polls(idp, mark)
    assert rejected and rejected[-1]["error"] == "invalid_grant", rejected   # and no poll after it


def test_wrong_code_three_times(idp: MFAAPIServer, syslog_shim):
    user = name(idp, "wendy")
    login = user + SUFFIX
    idp.add_user(login, "Wendy pw 1", name=user.title() + " Example", otp="135791")
    if idp.dialect == "okta":
        write_config(idp, factor="totp")
    before = snapshot_account_files()
    mark = idp.mark()
    seen = console(user, "Wendy pw 1", [(re.escape(CODE_PROMPT), "000001"), (re.escape(CODE_PROMPT), "000002"),
                                        (re.escape(CODE_PROMPT), "000003")], shim=syslog_shim)
    assert not seen.shell and "Login incorrect" in seen.transcript, seen.transcript
    assert seen.count("Wrong code; try again.") == 2, seen.transcript
    assert "Too many wrong codes.\nMFA verification failed." in seen.transcript, seen.transcript
    assert seen.pam_codes == ["PAM_AUTH_ERR"], seen.syslog
    assert account_files_changed(before) == []
    attempts = [r for r in idp.requests_since(mark) if r["grant_type"] == MFA_OTP]
    assert [(r["status"], r["error"], r["params"]["otp"]) for r in attempts] == \
        [(idp.status["invalid_grant"], "invalid_grant", "<redacted>")] * 3


@pytest.mark.parametrize("dialect", ["auth0"])
def test_expired_mfa_token(servers, dialect: str, syslog_shim):
    """The mfa_token expires while the person looks for the code (expire_mfa_tokens() at the
    prompt): the right code is then refused, and the person is told to start again — not asked
    for another code."""
    idp = servers[dialect]
    idp.start()
    write_config(idp, **({"factor": "totp"} if dialect == "okta" else {}))
    user = name(idp, "elsa")
    login = user + SUFFIX
    idp.add_user(login, "Elsa pw 1", name=user.title() + " Example", otp="424242")

    def slow_person(_match) -> str:
        idp.expire_mfa_tokens(login)
        return "424242"

    before = snapshot_account_files()
    mark = idp.mark()
    seen = console(user, "Elsa pw 1", [(re.escape(CODE_PROMPT), slow_person)], shim=syslog_shim,
                   unexpected=(re.escape(CODE_PROMPT),))
    assert "Wrong code" not in seen.transcript, seen.transcript
    assert "The sign-in took too long; please start again." in seen.transcript, seen.transcript
    assert not seen.shell and "Login incorrect" in seen.transcript, seen.transcript
    assert seen.pam_codes == ["PAM_AUTH_ERR"], seen.syslog
    assert account_files_changed(before) == []
    assert len([r for r in idp.requests_since(mark) if r["grant_type"] == MFA_OTP]) == 1


def test_an_expired_mfa_token_at_okta_reads_as_wrong_codes(okta: MFAAPIServer, syslog_shim):
    """Okta does not document its answer to an expired mfa_token (facts.md); the test server
    answers invalid_grant, which is also its answer to a wrong code, so the module cannot tell
    them apart: the person is asked again, and the sign-in ends after three tries, refused,
    with nothing written."""
    write_config(okta, factor="totp")
    user, login = "okelsa", "okelsa" + SUFFIX
    okta.add_user(login, "Elsa pw 1", otp="424242")

    def slow_person(_match) -> str:
        okta.expire_mfa_tokens(login)
        return "424242"

    before = snapshot_account_files()
    seen = console(user, "Elsa pw 1", [(re.escape(CODE_PROMPT), slow_person), (re.escape(CODE_PROMPT), "424242"),
                                        (re.escape(CODE_PROMPT), "424242")], shim=syslog_shim)
    assert seen.count("Wrong code; try again.") == 2, seen.transcript
    assert "Too many wrong codes.\nMFA verification failed." in seen.transcript, seen.transcript
    assert not seen.shell and seen.pam_codes == ["PAM_AUTH_ERR"], seen.syslog
    assert account_files_changed(before) == []


def test_expired_mfa_token_message_is_shown_once(auth0: MFAAPIServer, syslog_shim):
    user, login = "a0ezra", "a0ezra" + SUFFIX
    auth0.add_user(login, "Ezra pw 1", otp="515151")

    def slow_person(_match) -> str:
        auth0.expire_mfa_tokens(login)
        return "515151"

    seen = console(user, "Ezra pw 1", [(re.escape(CODE_PROMPT), slow_person)], shim=syslog_shim)
    assert "Login incorrect" in seen.transcript, seen.transcript
    assert seen.count("The sign-in took too long; please start again.") == 1, seen.transcript


def test_okta_push_not_approved_in_time(okta: MFAAPIServer):
    write_config(okta, factor="push", push_timeout="5")
    user, login = "okpat", "okpat" + SUFFIX
    okta.add_user(login, "Pat pw 1", push="never")
    mark = okta.mark()
    started = time.monotonic()
    code, shown = pam(user, "Pat pw 1")
    elapsed = time.monotonic() - started
    assert code == "PAM_AUTH_ERR", shown
    assert "MSG info: Approve the sign-in on your phone\u2026" in shown, shown
    assert "The push was not approved within 5 seconds." in shown and "MFA was not completed in time." in shown, shown
    # It gives up when the next poll would come at push_timeout or later (polls every 1 s).
    assert 5 - 1 - 0.5 <= elapsed < 5 + 3, elapsed
    assert 3 <= len(polls(okta, mark)) <= 6, polls(okta, mark)   # every second (the server's interval)
    assert not user_exists(user)


# --- 3. sudo for an existing managed user ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["code", "push"])
def test_sudo_for_a_managed_user(idp: MFAAPIServer, kind: str):
    """An account made at the console (password only, before MFA was turned on), an admin
    through g-admins: real `sudo -S` answers the password and then the MFA step; a new password
    at the IdP is synced by that sudo. Three wrong codes at sudo: refused."""
    user, login = signed_in_once(idp, name(idp, f"su{kind}"), "Sudo pw 1")
    assert "sudo" in groups_of(user)
    if idp.dialect == "okta":
        write_config(idp, factor="totp" if kind == "code" else "push")
        answers = ["112233"] if kind == "code" else []
    else:
        answers = ["112233"] if kind == "code" else ["1"]   # a push user has the Guardian code too: a menu
    idp.add_user(login, "Sudo pw 2", sub=record(user)["subject"], name=user.title() + " Example", groups=["g-admins"],
                 **({"otp": "112233"} if kind == "code" else {"push": "approve", "push_polls": 1}))
    mark = idp.mark()
    status, out = run_sudo(user, "\n".join(["Sudo pw 2", *answers]), ["id", "-un"])
    # sudo -p replaces every prompt's text with "PW:" and prints none of them with a newline.
    assert status == 0 and any(line.endswith("PW:root") for line in out.splitlines()), out
    if kind == "push":
        assert "Approve the sign-in on your phone\u2026" in out, out   # shown although sudo passes PAM_SILENT
    grants = [r["grant_type"] for r in idp.requests_since(mark) if r["endpoint"] == "token"]
    assert grants[0] == "password" and grants[-1] == (MFA_OTP if kind == "code" else MFA_OOB), grants
    assert local_password_is(user, "Sudo pw 2") and not local_password_is(user, "Sudo pw 1")
    if kind == "code":
        status, out = run_sudo(user, "Sudo pw 2\n999999\n999999\n999999")
        assert status != 0 and "Too many wrong codes." in out, out


# --- 4. over SSH ---------------------------------------------------------------------------------------

def evidence(seen: SshResult | SshDialog, server: Sshd) -> str:
    log = "\n".join(server.log().splitlines()[-25:])
    return f"\n--- the ssh client showed:\n{seen.transcript}\n--- sshd's log (last lines):\n{log}"


def prompt_re(user: str, text: str) -> str:
    """TEXT as ssh shows a keyboard-interactive prompt ("(USER@HOST) " on its first line), at
    the end of what came so far; a newline may reach the terminal as \\r\\n."""
    return re.escape(f"({user}@127.0.0.1) ") + re.escape(text).replace("\\\n", "\r?\n") + r"\Z"


def denied(user: str) -> str:
    return f"{user}@127.0.0.1: Permission denied (keyboard-interactive).\n"


def test_ssh_password_and_code(idp: MFAAPIServer, sshd: Sshd):
    user, login = signed_in_once(idp, name(idp, "sscode"), "Ssh code pw 1", otp="864213")
    if idp.dialect == "okta":
        write_config(idp, factor="totp")
    mark = idp.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Ssh code pw 1")
        ssh.expect(prompt_re(user, CODE_PROMPT))
        ssh.answer("864213")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript == (f"({user}@127.0.0.1) Password: \n({user}@127.0.0.1) {CODE_PROMPT}864213\n{user}\n"), \
        evidence(result, sshd)
    assert [r["grant_type"] for r in idp.requests_since(mark) if r["endpoint"] == "token"] == ["password", MFA_OTP]
    assert f"Accepted keyboard-interactive/pam for {user} from 127.0.0.1" in sshd.log()


def test_ssh_okta_push_number_shown_before_approval_then_enter(okta: MFAAPIServer, sshd: Sshd):
    """The number comes in the challenge answer, so the prompt with it comes at once; while it
    waits for Enter the module does not poll; the person approves on the phone, then presses
    Enter: one poll sees the approval."""
    user, login = signed_in_once(okta, "okssnina", "Nina ssh pw 1", push="never", number_challenge="47")
    write_config(okta, factor="push")
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Nina ssh pw 1")
        match = ssh.expect(re.escape(f"({user}@127.0.0.1) Approve the sign-in on your phone: tap ") + r"(\d+)\."
                           + "\r?\n" + re.escape(PRESS_ENTER) + r"\Z")
        assert match.group(1) == "47", evidence(ssh, sshd)
        time.sleep(1.5)
        assert polls(okta, mark) == [], "the module polled while its prompt waited for Enter"
        okta.set_push(login, "approve", push_polls=0)   # the person taps 47
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript == (f"({user}@127.0.0.1) Password: \n"
                                 f"({user}@127.0.0.1) Approve the sign-in on your phone: tap 47.\n{PRESS_ENTER}\n{user}\n"), \
        evidence(result, sshd)
    assert [(r["status"], r["error"]) for r in polls(okta, mark)] == [(200, None)]



def test_ssh_okta_push_approved_in_time_with_enter_after_push_timeout(okta: MFAAPIServer, sshd: Sshd):
    """Approved on the phone at once, Enter pressed after push_timeout: the Enter makes one more
    poll, which finds the approval."""
    user, login = signed_in_once(okta, "okssleo", "Leo ssh pw 1", push="never", number_challenge="62")
    write_config(okta, factor="push", push_timeout="5")
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Leo ssh pw 1")
        ssh.expect(prompt_re(user, f"Approve the sign-in on your phone: tap 62.\n{PRESS_ENTER}"))
        okta.set_push(login, "approve", push_polls=0)
        time.sleep(5 + 1)
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 0 and result.transcript.endswith(f"{PRESS_ENTER}\n{user}\n"), evidence(result, sshd)
    assert [(r["status"], r["error"]) for r in polls(okta, mark)] == [(200, None)]

def test_ssh_okta_push_rejected_after_the_number(okta: MFAAPIServer, sshd: Sshd):
    user, login = signed_in_once(okta, "okssrick", "Rick ssh pw 1", push="never", number_challenge="31")
    write_config(okta, factor="push")
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Rick ssh pw 1")
        ssh.expect(prompt_re(user, f"Approve the sign-in on your phone: tap 31.\n{PRESS_ENTER}"))
        okta.set_push(login, "reject", push_polls=0)   # "No, it's not me"
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 255, evidence(result, sshd)
    assert result.transcript.endswith(
        f"{PRESS_ENTER}\nThe sign-in was rejected on your phone.\nMFA verification failed.\n\n{denied(user)}"), \
        evidence(result, sshd)
    assert f"\n{user}\n" not in result.transcript


def test_ssh_auth0_push_from_the_menu(auth0: MFAAPIServer, sshd: Sshd):
    """The menu comes with its prompt; the push notice is a prompt answered with Enter."""
    user, login = signed_in_once(auth0, "a0ssgus", "Gus ssh pw 1", push="never")
    mark = auth0.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Gus ssh pw 1")
        ssh.expect(prompt_re(user, auth0_menu(user) + "\nMethod [1-2]: "))
        ssh.answer("1")
        ssh.expect(prompt_re(user, f"Approve the sign-in on your phone.\n{PRESS_ENTER}"))
        assert polls(auth0, mark) == []
        auth0.set_push(login, "approve", push_polls=0)
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript.endswith(f"({user}@127.0.0.1) Approve the sign-in on your phone.\n{PRESS_ENTER}\n{user}\n"), \
        evidence(result, sshd)
    assert [(r["status"], r["error"]) for r in polls(auth0, mark)] == [(200, None)]


# --- 5. the IdP goes away mid-MFA ------------------------------------------------------------------------

def test_idp_gone_mid_mfa_for_a_user_never_online(idp: MFAAPIServer, syslog_shim):
    """The IdP stops while the person reads the code: no account, nothing synced, the reason."""
    user = name(idp, "gone")
    login = user + SUFFIX
    idp.add_user(login, "Gone pw 1", otp="777888")
    if idp.dialect == "okta":
        write_config(idp, factor="totp")

    def idp_goes_away(_match) -> str:
        idp.stop()
        return "777888"

    before = snapshot_account_files()
    try:
        seen = console(user, "Gone pw 1", [(re.escape(CODE_PROMPT), idp_goes_away)], shim=syslog_shim)
    finally:
        idp.start()
    assert not seen.shell and "Login incorrect" in seen.transcript, seen.transcript
    assert NEVER_ONLINE in seen.transcript, seen.transcript
    assert seen.pam_codes == ["PAM_AUTH_ERR"], seen.syslog
    assert account_files_changed(before) == []


def test_idp_gone_mid_push_for_a_managed_user(idp: MFAAPIServer, syslog_shim):
    """A managed user within max_days: the IdP stops while the push waits; the module says
    unavailable (PAM_AUTHINFO_UNAVAIL), and pam_unix signs the person in with the synced
    password."""
    user, login = signed_in_once(idp, name(idp, "mid"), "Mid pw 1", push="never")
    if idp.dialect == "okta":
        write_config(idp, factor="push")
        steps = [(re.escape("Approve the sign-in on your phone\u2026"), lambda _: idp.stop())]
    else:
        steps = [(re.escape("Method [1-2]: "), "1"), (re.escape("Approve the sign-in on your phone\u2026"), lambda _: idp.stop())]
    try:
        seen = console(user, "Mid pw 1", steps, shim=syslog_shim)
    finally:
        idp.start()
    assert seen.shell, seen.transcript
    assert TRYING_OFFLINE in seen.transcript, seen.transcript
    assert seen.pam_codes == ["PAM_AUTHINFO_UNAVAIL"], seen.syslog
    # The module's own code, with the IdP stopped a second into the push.
    stopper = threading.Timer(1.0, idp.stop)
    stopper.start()
    try:
        code, shown = pam(user, "Mid pw 1", code="1")
    finally:
        stopper.join()
        idp.start()
    assert code == "PAM_AUTHINFO_UNAVAIL", shown
    assert TRYING_OFFLINE in shown, shown


# --- 6. cloudlogin login --trace --------------------------------------------------------------------------

TRACE_CASES = {
    # (dialect, kind): (the authenticators, [config keys], stdin after the password)
    ("okta", "code"): ({"otp": "864209"}, {"factor": "totp"}, ["864209"]),
    ("okta", "push"): ({"push": "approve", "push_polls": 1, "number_challenge": "95"}, {"factor": "push"}, []),
    ("okta", "sms"): ({"sms": "531864"}, {"factor": "sms"}, ["531864"]),
    ("auth0", "push"): ({"push": "approve", "push_polls": 0}, {}, ["1"]),
    ("auth0", "sms"): ({"sms": "642097"}, {}, ["642097"]),
}


@pytest.mark.parametrize("dialect,kind", list(TRACE_CASES))
def test_login_trace_shows_each_mfa_request_and_no_secret(servers, dialect: str, kind: str):
    """`cloudlogin login --trace USER`: each MFA request with its endpoint and grant type, and
    never the password, the client secret, the mfa_token, the oob_code, the code typed, the
    access token or the ID token."""
    idp = servers[dialect]
    idp.start()
    authenticators, keys, answers = TRACE_CASES[(dialect, kind)]
    write_config(idp, **keys)
    user = name(idp, f"tr{kind}")
    login = user + SUFFIX
    password = "Trace pw 1 \u00e9"
    idp.add_user(login, password, name=user.title() + " Example", groups=["g-admins"], **authenticators)
    mark = idp.mark()
    proc = subprocess.run([str(CLI), "login", user, "--password-stdin", "--trace", "--config", str(CONFIG)],
                          input="\n".join([password, *answers]) + "\n", capture_output=True, text=True, timeout=90)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    issued = idp.issued(login)
    assert len(issued["mfa_token"]) == 1 and len(issued["id_token"]) == 1 and len(issued["access_token"]) == 1, issued
    assert len(issued["oob_code"]) == (0 if kind == "code" else 1), issued
    secrets = [value for values in issued.values() for value in values] + [password, *[a for a in answers if len(a) > 1]]
    if dialect == "auth0":
        secrets.append(AUTH0_SECRET)
    leaked = [secret for secret in secrets if secret in output]
    assert leaked == [], f"in the trace: {leaked}\n{output}"

    def lines(start: str) -> list[str]:
        found = [text for text in output.splitlines() if text.startswith(start)]
        assert found, f"no line starting with {start!r} in:\n{output}"
        return found

    token = idp.token_endpoint
    grant = lambda g: "grant_type=" + g.replace(":", "%3A").replace("/", "%2F")  # noqa: E731  (as sent)
    password_grant = lines(f"trace: [network] POST {token} (")
    assert any(grant("password") in text and "password=(hidden)" in text and "-> HTTP 403 error=mfa_required" in text
               for text in password_grant), password_grant
    if dialect == "auth0":
        listed = lines(f"trace: [network] GET {idp.authenticators_endpoint} (Authorization header: not shown) -> HTTP 200")
        assert len(listed) == 1, listed
    if kind != "code":
        challenge = lines(f"trace: [network] POST {idp.challenge_endpoint} (")
        assert len(challenge) == 1 and "-> HTTP 200" in challenge[0], challenge
        assert "mfa_token=(hidden)" in challenge[0], challenge
        if dialect == "auth0":
            assert "JSON body: {" in challenge[0] and "client_secret=(hidden)" in challenge[0], challenge
            # What was challenged is shown: the kind and the authenticator.
            assert "challenge_type=oob" in challenge[0] and "authenticator_id=" in challenge[0], challenge
        else:
            assert f"channel_hint={'sms' if kind == 'sms' else 'push'}" in challenge[0], challenge
    final = MFA_OTP if kind == "code" else MFA_OOB
    mfa = [text for text in password_grant if grant(final) in text]
    assert mfa and all("mfa_token=(hidden)" in text for text in mfa), password_grant
    assert "-> HTTP 200" in mfa[-1], mfa
    if kind == "code":
        assert "otp=(hidden)" in mfa[-1], mfa
    else:
        assert all("oob_code=(hidden)" in text for text in mfa), mfa
    if kind == "sms":
        assert "binding_code=(hidden)" in mfa[-1], mfa
    if (dialect, kind) == ("okta", "push"):
        assert len(mfa) == 2 and "authorization_pending" in mfa[0], mfa
        assert "tap 95" in output, output   # the number is for the person to read
    assert "trace: [pam] outcome accepted" in output, output
    assert "sudo" in groups_of(user)
    assert local_password_is(user, password)


def test_check_with_a_test_user_says_mfa_is_answered_in_the_prompt(idp: MFAAPIServer):
    """`cloudlogin check --test-user` tries the password grant only: for a user with MFA it says
    the IdP verified the password and MFA will be answered in the prompt, asks for no method
    and starts no MFA request (check has nobody to answer them)."""
    write_config(idp)
    user = name(idp, "chad")
    idp.add_user(user + SUFFIX, "Chad pw 1", otp="135790")
    mark = idp.mark()
    proc = subprocess.run([str(CLI), "check", "--config", str(CONFIG), "--test-user", user, "--json"],
                          input="Chad pw 1\n", capture_output=True, text=True, timeout=60)
    findings = {f["id"]: f for f in json.loads(proc.stdout)["findings"]}
    grant = findings.get("idp.grant-mfa")
    assert grant and grant["status"] == "ok", proc.stdout + proc.stderr
    assert "answers it in the prompt through the MFA API" in grant["message"], grant
    assert [step[:2] for step in mfa_steps(idp, mark)] == [("token", "password")], mfa_steps(idp, mark)
