"""provider = okta for real: Okta's Authentication API (an Okta-shaped HTTPS server that follows
Okta's documented JSON, Tests/Integration/support/okta.py), MFA answered at a real /bin/login in
a pseudo-terminal, at real sudo, through real libpam — inside run-in-sandbox. Okta MFA over a
real sshd is in test_ssh_okta.py, which uses this file's fixtures."""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import threading
import time
import urllib.parse

import pexpect
import pytest

from cltest import DRIVER, MODULE, ROOT
from okta import OktaServer
from sandbox import TOOL_ENV, allow_sudo, install_pam_service, pam_service, run_sudo, user_exists

CONFIG = pathlib.Path("/etc/cloudlogin/okta.conf")
SUFFIX = "@example.com"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def shipped(name: str) -> str:
    text = (ROOT / "pam.d" / name).read_text()
    return text.replace("pam_cloudlogin.so", f"{MODULE} config={CONFIG}")


def write_config(okta: OktaServer, users: str = "", **okta_section: str) -> None:
    section = {"factor": "ask", "push_timeout": "20", **okta_section}
    CONFIG.parent.mkdir(exist_ok=True)
    CONFIG.write_text(f"""[idp]
provider = okta
okta_domain = {okta.base_url}
ca_file = {okta.ca_file}
username_suffix = {SUFFIX}
timeout = 5
connect_timeout = 2

[users]
min_uid = 1000
create = yes
""" + users + """

[okta]
""" + "".join(f"{key} = {value}\n" for key, value in section.items()))
    os.chown(CONFIG, 0, 0)
    os.chmod(CONFIG, 0o600)


@pytest.fixture(scope="module")
def okta(tmp_path_factory):
    server = OktaServer(tmp_path_factory.mktemp("okta"))
    server.start()
    write_config(server)
    with pam_service("login", shipped("login")), pam_service("sudo", shipped("sudo")):
        allow_sudo("ALL")
        yield server
    server.stop()


@pytest.fixture(autouse=True)
def default_config(okta):
    write_config(okta)


def login(user: str, password: str, dialog: list[tuple[str, str]] = (), timeout: float = 60) -> tuple[bool, str]:
    """Real /bin/login on a pseudo-terminal: the name, the password, then each (prompt regex,
    answer) of the dialog in turn. Returns whether a shell started (and ran `id -un` as the
    user) and the whole transcript."""
    child = pexpect.spawn("/bin/login", [], env={"TERM": "dumb", **TOOL_ENV}, encoding="utf-8",
                          codec_errors="replace", dimensions=(40, 400), timeout=timeout, cwd="/")
    log: list[str] = []
    shell = False
    try:
        child.expect("login: ")
        child.sendline(user)
        child.expect(r"[Pp]assword: ?")
        log.append(child.before + child.after)
        child.sendline(password)
        for prompt, answer in dialog:
            child.expect(prompt)
            log.append(child.before + child.after)
            child.sendline(answer)
        index = child.expect([re.compile(r"[$#] \Z"), "Login incorrect", pexpect.EOF])
        log.append(child.before + (child.after if isinstance(child.after, str) else ""))
        if index == 0:
            child.sendline("printf '%s\\n' \"__CL\"\"WHO=$(id -un)__\"; exit")
            child.expect(r"__CLWHO=([a-z0-9_-]+)__")
            log.append(child.before + child.after)
            shell = child.match.group(1) == user.split("@")[0]
    except (pexpect.TIMEOUT, pexpect.EOF) as error:
        log.append(f"{child.before}\n<<{type(error).__name__}>>")
    finally:
        child.close(force=True)
    return shell, _ANSI.sub("", "".join(log).replace("\r\n", "\n")).replace("\r", "")


def pam(user: str, password: str, code: str | None = None, service: str = "cl-okta", *extra: str) -> tuple[str, str]:
    """Real libpam with pam_cloudlogin alone; `code` answers every echo-on prompt; `extra`:
    more pamdriver arguments."""
    env = dict(os.environ)
    if code is not None:
        env["PAMDRIVER_ECHO_ON_ANSWER"] = code
    # Only for this call: `cloudlogin check` in other tests reads every service in /etc/pam.d.
    with pam_service("cl-okta", f"auth required {MODULE} config={CONFIG}\n"):
        proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", service, "--user", user, *extra],
                              input=(password + "\n").encode(), capture_output=True, env=env, timeout=120)
    results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")]
    return (results[-1] if results else "none"), proc.stderr.decode()


def paths(okta: OktaServer, mark: int) -> list[str]:
    return [entry["path"] for entry in okta.requests_since(mark)]


def cancelled(okta: OktaServer, mark: int) -> bool:
    return "/api/v1/authn/cancel" in paths(okta, mark)


def local_password_is(user: str, password: str) -> bool:
    with pam_service("unix-only", "auth required pam_unix.so\n"):
        proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", "unix-only", "--user", user],
                              input=(password + "\n").encode(), capture_output=True)
    return "PAM_SUCCESS" in proc.stdout.decode()


# --- password only, then the factors --------------------------------------------------------

def test_password_only_creates_the_account(okta: OktaServer):
    okta.add_user("olive" + SUFFIX, "Olive pw 1", first_name="Olive", last_name="Okta")
    shell, transcript = login("olive", "Olive pw 1")
    assert shell, transcript
    assert "Created local account olive from your cloud identity." in transcript
    entry = subprocess.run(["getent", "passwd", "olive"], capture_output=True, text=True).stdout
    assert ":Olive Okta:" in entry
    assert local_password_is("olive", "Olive pw 1")


def test_typing_warms_the_connection_to_okta_before_the_password_is_sent(okta: OktaServer):
    # The prompt answered after 300 ms, as a person types: meanwhile the module connected to the
    # Okta domain with one cheap GET (the discovery document of the Okta authorization server,
    # which the groups exchange reads), and /api/v1/authn follows.
    okta.add_user("tyra" + SUFFIX, "Tyra pw 1")
    mark = okta.mark()
    assert pam("tyra", "Tyra pw 1", None, "cl-okta", "--answer-delay-ms", "300")[0] == "PAM_SUCCESS"
    seen = paths(okta, mark)
    assert seen[:2] == ["/oauth2/default/.well-known/openid-configuration", "/api/v1/authn"], seen
    # Given at once (sudo -S, a script), nothing is sent early.
    mark = okta.mark()
    assert pam("tyra", "Tyra pw 1")[0] == "PAM_SUCCESS"
    assert paths(okta, mark)[0] == "/api/v1/authn"


def test_wrong_password(okta: OktaServer):
    okta.add_user("wanda" + SUFFIX, "Wanda pw 1")
    shell, transcript = login("wanda", "nope")
    assert not shell and "Sign-in failed." in transcript


def test_totp_right_at_the_console(okta: OktaServer):
    okta.add_user("tom" + SUFFIX, "Tom pw 1", factors=["totp"], totp_code="246810")
    shell, transcript = login("tom", "Tom pw 1", [(r"Okta Verify code: ", "246810")])
    assert shell, transcript


def test_totp_wrong_then_right(okta: OktaServer):
    okta.add_user("tina" + SUFFIX, "Tina pw 1", factors=["google_totp"], totp_code="135791")
    shell, transcript = login("tina", "Tina pw 1", [(r"Google Authenticator code: ", "000000"),
                                                   (r"Google Authenticator code: ", "135791")])
    assert shell, transcript
    assert "That code is not right; try again." in transcript


def test_totp_three_times_wrong_fails_and_cancels(okta: OktaServer):
    okta.add_user("ted" + SUFFIX, "Ted pw 1", factors=["totp"])
    mark = okta.mark()
    shell, transcript = login("ted", "Ted pw 1", [(r"Okta Verify code: ", "111111")] * 3)
    assert not shell
    assert "Too many wrong codes." in transcript and "MFA verification failed." in transcript
    assert cancelled(okta, mark)


def test_totp_at_sudo(okta: OktaServer):
    okta.add_user("sue" + SUFFIX, "Sue pw 1", factors=["totp"], totp_code="112233")
    assert pam("sue", "Sue pw 1", code="112233")[0] == "PAM_SUCCESS"  # creates the account
    code, out = run_sudo("sue", "Sue pw 1\n112233", ["id", "-un"])
    assert code == 0 and out.strip().endswith("root"), out
    time.sleep(1.2)  # Okta allows 4 sign-in requests per second per user; a 429 would mean offline sign-in
    code, out = run_sudo("sue", "Sue pw 1\n999999\n999999\n999999")
    assert code != 0, out
    assert "Too many wrong codes." in out


def test_sms(okta: OktaServer):
    okta.add_user("sam" + SUFFIX, "Sam pw 1", factors=["sms"], sms_code="765432")
    mark = okta.mark()
    shell, transcript = login("sam", "Sam pw 1", [(r"SMS code: ", "765432")])
    assert shell, transcript
    verifies = [p for p in paths(okta, mark) if "/verify" in p]
    assert len(verifies) == 2  # the first sends the text, the second carries the code


def test_factor_menu_hides_unsupported_factors(okta: OktaServer):
    okta.add_user("mel" + SUFFIX, "Mel pw 1", factors=["question", "totp", "webauthn", "push", "call", "hardware_token"],
                  totp_code="424242")
    shell, transcript = login("mel", "Mel pw 1", [(r"Factor \[1-2\]: ", "1"), (r"Okta Verify code: ", "424242")])
    assert shell, transcript
    assert "1. Okta Verify code" in transcript and "2. Okta Verify push" in transcript
    for hidden in ("question", "webauthn", "call", "3."):
        assert hidden not in transcript.split("Choose how to confirm")[1].split("Factor [")[0]


def test_factor_list_under_the_singular_key(okta: OktaServer):
    okta.add_user("kim" + SUFFIX, "Kim pw 1", factors=["totp"], totp_code="555666", factor_key="factor")
    assert pam("kim", "Kim pw 1", code="555666")[0] == "PAM_SUCCESS"


# --- push --------------------------------------------------------------------------------------

def test_push_approved_with_number_challenge(okta: OktaServer):
    okta.add_user("pia" + SUFFIX, "Pia pw 1", factors=["push"], push="approve", push_number=37, push_wait_polls=1)
    shell, transcript = login("pia", "Pia pw 1")
    assert shell, transcript
    assert "Approve the sign-in on Okta Verify" in transcript
    assert "tap 37 on your phone" in transcript


@pytest.mark.parametrize("outcome,message", [("reject", "rejected on Okta Verify"), ("timeout", "push timed out")])
def test_push_not_approved(okta: OktaServer, outcome: str, message: str):
    name = f"push{outcome}"
    okta.add_user(name + SUFFIX, "Push pw 1", factors=["push"], push=outcome)
    mark = okta.mark()
    shell, transcript = login(name, "Push pw 1")
    assert not shell
    assert message in transcript
    assert cancelled(okta, mark)


def test_push_never_answered_stops_at_push_timeout(okta: OktaServer):
    write_config(okta, push_timeout="6")
    okta.add_user("pat" + SUFFIX, "Pat pw 1", factors=["push"], push="never")
    mark = okta.mark()
    started = time.monotonic()
    code, messages = pam("pat", "Pat pw 1")
    elapsed = time.monotonic() - started
    assert code == "PAM_AUTH_ERR"
    assert "not approved within 6 seconds" in messages
    assert elapsed < 6 + 5
    polls = [p for p in paths(okta, mark) if "/transactions/" in p or p.endswith("/verify")]
    assert 2 <= len(polls) <= 5, polls  # every 2 s, not faster
    assert cancelled(okta, mark)


# --- password states ---------------------------------------------------------------------------

def test_password_warn(okta: OktaServer):
    okta.add_user("warren" + SUFFIX, "Warren pw 1", state="PASSWORD_WARN", password_expire_days=4)
    shell, transcript = login("warren", "Warren pw 1")
    assert shell, transcript
    assert "Your Okta password expires in 4 days" in transcript


def test_password_expired_changes_it_and_syncs_the_local_password(okta: OktaServer):
    okta.add_user("eve" + SUFFIX, "Eve old pw 1", state="PASSWORD_EXPIRED")
    shell, transcript = login("eve", "Eve old pw 1", [(r"New password: ", "short"), (r"Repeat the new password: ", "short"),
                                                     (r"New password: ", "Eve new pw 2"), (r"Repeat the new password: ", "Eve new pw 2")])
    assert shell, transcript
    assert "Okta did not accept the new password" in transcript
    assert "Your Okta password was changed." in transcript
    assert local_password_is("eve", "Eve new pw 2") and not local_password_is("eve", "Eve old pw 1")
    okta.set_state("eve" + SUFFIX, None)
    assert pam("eve", "Eve new pw 2")[0] == "PAM_SUCCESS"


@pytest.mark.parametrize("state,message", [
    ("LOCKED_OUT", "Your account is locked"),
    ("MFA_ENROLL", "enroll a factor"),
    ("MFA_ENROLL_ACTIVATE", "enroll a factor"),
    ("RECOVERY", "password recovery is in progress"),
    ("SOMETHING_NEW", "cannot do"),
])
def test_states_that_end_the_sign_in(okta: OktaServer, state: str, message: str):
    name = "st" + state.lower().replace("_", "")[:10]
    okta.add_user(name + SUFFIX, "State pw 1", state=state)
    code, messages = pam(name, "State pw 1")
    assert code == "PAM_AUTH_ERR"
    assert message in messages
    assert not user_exists(name)


# --- unavailable, abandoned ----------------------------------------------------------------------

def test_429_means_unavailable_and_the_offline_rule_applies(okta: OktaServer):
    okta.add_user("rita" + SUFFIX, "Rita pw 1")
    assert pam("rita", "Rita pw 1")[0] == "PAM_SUCCESS"
    okta.fail_next(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests.",
                         "errorLink": "E0000047", "errorId": "oae1", "errorCauses": []},
                   headers={"X-Rate-Limit-Limit": "4", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(int(time.time()) + 1)})
    code, out = run_sudo("rita", "Rita pw 1")
    assert code == 0, f"offline sign-in after a 429 failed: {out}"
    okta.fail_next(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."})
    okta.add_user("newbie" + SUFFIX, "Newbie pw 1")
    assert pam("newbie", "Newbie pw 1")[0] == "PAM_AUTH_ERR"  # never online here: no offline sign-in


def test_idp_stopped_mid_flow(okta: OktaServer):
    okta.add_user("mid" + SUFFIX, "Mid pw 1", factors=["push"], push="approve", push_wait_polls=0)
    assert pam("mid", "Mid pw 1")[0] == "PAM_SUCCESS"  # a managed user, signed in online once
    okta.add_user("mid" + SUFFIX, "Mid pw 1", factors=["push"], push="never")
    stopper = threading.Timer(1.0, okta.stop)
    stopper.start()
    try:
        started = time.monotonic()
        code, messages = pam("mid", "Mid pw 1")
        assert code == "PAM_AUTHINFO_UNAVAIL", messages  # pam_unix checks the synced password next
        assert time.monotonic() - started < 15
    finally:
        stopper.join()
        okta.start()


def test_abandoned_flow_is_cancelled(okta: OktaServer):
    okta.add_user("abby" + SUFFIX, "Abby pw 1", factors=["totp"])
    mark = okta.mark()
    code, _ = pam("abby", "Abby pw 1", code=None)  # the driver cannot answer the code prompt
    assert code == "PAM_AUTH_ERR"
    assert cancelled(okta, mark)


# --- groups ------------------------------------------------------------------------------------

def groups_of(user: str) -> set[str]:
    return set(subprocess.run(["id", "-nG", user], capture_output=True, text=True, check=True).stdout.split())


def test_groups_come_from_the_session_token_exchange(okta: OktaServer):
    okta.add_oidc_client("0oa-cloudlogin", "com.example.cloudlogin:/callback")
    write_config(okta, users="admin_groups = g-admins\nadmin_local_group = sudo\ndemote = yes\n",
                 client_id="0oa-cloudlogin", redirect_uri="com.example.cloudlogin:/callback")
    okta.add_user("gus" + SUFFIX, "Gus pw 1", groups=["g-admins", "Everyone"])
    mark = okta.mark()
    assert pam("gus", "Gus pw 1")[0] == "PAM_SUCCESS"
    assert "sudo" in groups_of("gus")
    seen = paths(okta, mark)
    assert "/oauth2/default/v1/authorize" in seen and "/oauth2/default/v1/token" in seen
    time.sleep(1.2)
    okta.set_groups("gus" + SUFFIX, ["Everyone"])
    assert pam("gus", "Gus pw 1")[0] == "PAM_SUCCESS"
    assert "sudo" not in groups_of("gus")


def test_without_an_oidc_client_groups_are_left_alone(okta: OktaServer):
    write_config(okta, users="admin_groups = g-admins\nadmin_local_group = sudo\n")
    okta.add_user("hal" + SUFFIX, "Hal pw 1", groups=["g-admins"])
    mark = okta.mark()
    assert pam("hal", "Hal pw 1")[0] == "PAM_SUCCESS"
    assert "sudo" not in groups_of("hal")
    assert not any(p.startswith("/oauth2/") for p in paths(okta, mark))
    write_config(okta, users="allow_groups = g-admins\n")
    time.sleep(1.2)
    code, messages = pam("hal", "Hal pw 1")
    assert code == "PAM_AUTH_ERR" and "not in allow_groups" in messages


def test_check_says_whether_okta_group_mapping_is_on(okta: OktaServer):
    cli = str(ROOT / "build" / "cloudlogin")
    write_config(okta, users="admin_groups = g-admins\n")
    out = subprocess.run([cli, "check", "--config", str(CONFIG), "--pam-dir", "/etc/pam.d"], capture_output=True, text=True)
    assert "group mapping is off" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "set [okta] client_id and redirect_uri" in out.stdout + out.stderr
    okta.add_oidc_client("0oa-check", "com.example.cloudlogin:/check")
    write_config(okta, client_id="0oa-check", redirect_uri="com.example.cloudlogin:/check")
    out = subprocess.run([cli, "check", "--config", str(CONFIG), "--pam-dir", "/etc/pam.d"], capture_output=True, text=True)
    assert "groups come from an ID token" in out.stdout + out.stderr, out.stdout + out.stderr


# --- cloudlogin login --trace ------------------------------------------------------------------

SECRET_MEMBERS = ("stateToken", "sessionToken", "access_token", "id_token", "refresh_token", "code", "code_verifier",
                  "password", "passCode")


def secrets_exchanged(requests: list[dict]) -> set[str]:
    """Every token the server received or handed out in these requests: query parameters, form and
    JSON bodies, and JSON answers (walked recursively)."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in SECRET_MEMBERS and isinstance(inner, str) and inner:
                    found.add(inner)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for entry in requests:
        query = urllib.parse.parse_qs(entry.get("query") or "")
        walk({key: values[0] for key, values in query.items()})
        walk(entry.get("body"))
        walk(entry.get("response"))
    return found


def test_login_trace_shows_every_step_and_no_token(okta: OktaServer):
    """`cloudlogin login --trace` with the groups exchange on: the steps are there (authn, the
    /authorize request with its parameters, the token request), but neither the password nor the
    stateToken, the sessionToken (a query parameter of /authorize), the code, the PKCE verifier,
    the access token nor the ID token."""
    okta.add_oidc_client("0oa-trace", "com.example.cloudlogin:/trace")
    write_config(okta, users="admin_groups = g-admins\n", client_id="0oa-trace", redirect_uri="com.example.cloudlogin:/trace")
    password = "Tara's pw 1 \u00e9"
    okta.add_user("tara" + SUFFIX, password, groups=["g-admins"], factors=["totp"], totp_code="246810")
    mark = okta.mark()
    proc = subprocess.run([str(ROOT / "build" / "cloudlogin"), "login", "tara", "--password-stdin", "--trace", "--dry-run",
                           "--config", str(CONFIG)], input=password + "\n246810\n", capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    requests = okta.requests_since(mark)
    paths_seen = [entry["path"] for entry in requests]
    assert "/api/v1/authn" in paths_seen and "/oauth2/default/v1/authorize" in paths_seen and "/oauth2/default/v1/token" in paths_seen
    tokens = secrets_exchanged(requests)
    kinds = {key for entry in requests for key in (entry.get("response") or {}) if key in SECRET_MEMBERS}
    assert {"stateToken", "sessionToken", "access_token", "id_token"} <= kinds, kinds
    leaked = sorted(token for token in tokens | {password, "246810"} if token in output)
    assert leaked == [], f"in the trace: {leaked}\n{output}"
    # The steps are still there, with what may be shown.
    base = okta.base_url
    def line(start: str) -> str:
        found = [text for text in output.splitlines() if text.startswith(start)]
        assert found, f"no line starting with {start!r} in:\n{output}"
        return found[0]

    authn = line(f"trace: [network] POST {base}/api/v1/authn (JSON body: {{")
    assert "password=(hidden)" in authn and f"username=tara{SUFFIX}" in authn and "-> HTTP 200" in authn, authn
    verify = line(f"trace: [network] POST {base}/api/v1/authn/factors/")
    assert "passCode=(hidden)" in verify and "stateToken=(hidden)" in verify and "-> HTTP 200" in verify, verify
    authorize = line(f"trace: [network] GET {base}/oauth2/default/v1/authorize?")
    for shown in ("client_id=0oa-trace", "response_type=code", "prompt=none", "code_challenge_method=S256",
                  "redirect_uri=com.example.cloudlogin%3A%2Ftrace", "sessionToken=(hidden)", "state=(hidden)"):
        assert shown in authorize, (shown, authorize)
    assert "-> HTTP 302 to com.example.cloudlogin:/trace?code=(hidden)&state=(hidden) in" in authorize, authorize
    assert f"trace: [network] POST {base}/oauth2/default/v1/token (form body: grant_type=authorization_code&code=(hidden)&" \
           "redirect_uri=com.example.cloudlogin%3A%2Ftrace&client_id=0oa-trace&code_verifier=(hidden)) -> HTTP 200 in" in output, output
    assert "trace: [groups] groups: g-admins" in output, output
    assert "trace: [pam] outcome accepted" in output, output

