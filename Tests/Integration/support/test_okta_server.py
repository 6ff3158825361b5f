"""Proves the Okta-shaped test server (okta.py) by walking every flow as a client would:
build only the first URL ({base}/api/v1/authn), then follow `_links`.

Run (outside the account sandbox, --confcutdir keeps Tests/Integration/conftest.py, which
refuses to run outside run-in-sandbox, out of this standalone run):

    python3 -m pytest -q -p no:cacheprovider --confcutdir=Tests/Integration/support \
        Tests/Integration/support/test_okta_server.py

Inside the sandbox (`make test`) it also runs as part of Tests/Integration.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import http.client
import itertools
import json
import os
import pathlib
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from okta import OktaServer  # noqa: E402

ERROR_KEYS = ["errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"]
_ids = itertools.count(1)


def new_login(tag: str) -> str:
    return f"{tag}{next(_ids)}-{os.getpid()}@example.com"


class Client:
    """A client that trusts only the run's CA and keeps to Okta's per-user rate (4/s)."""

    def __init__(self, server: OktaServer, pace: bool = True):
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))
        self.pace = pace
        self._sent: collections.deque = collections.deque()

    def _wait_turn(self) -> None:
        if not self.pace:
            return
        now = time.monotonic()
        while self._sent and self._sent[0] < now - 1.1:
            self._sent.popleft()
        if len(self._sent) >= 3:
            time.sleep(self._sent[0] + 1.1 - now)
        self._sent.append(time.monotonic())

    def request(self, url: str, body=None, method: str = "POST", raw: bytes | None = None):
        assert url.startswith(self.server.base_url + "/"), url
        self._wait_turn()
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                status, headers, payload = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, payload = e.code, e.headers, e.read()
        ctype = headers.get("Content-Type", "")
        parsed = json.loads(payload) if ctype == "application/json" and payload else None
        return status, headers, parsed

    def authn(self, username: str, password: str, warn: bool = True):
        return self.request(self.server.base_url + "/api/v1/authn", {
            "username": username, "password": password,
            "options": {"multiOptionalFactorEnroll": False, "warnBeforePasswordExpired": warn}})

    def follow(self, link: dict, state_token: str, **extra):
        assert link["hints"] == {"allow": ["POST"]}
        return self.request(link["href"], {"stateToken": state_token, **extra})


def factor_list(tx: dict) -> list[dict]:
    emb = tx["_embedded"]
    return emb["factors"] if "factors" in emb else emb["factor"]


def pick(tx: dict, factor_type: str, provider: str = "OKTA") -> dict:
    return next(f for f in factor_list(tx)
                if f["factorType"] == factor_type and f["provider"] == provider)


def assert_error(status, headers, body, want_status, code, summary=None):
    assert status == want_status, body
    assert headers["Content-Type"] == "application/json"
    assert list(body) == ERROR_KEYS
    assert body["errorCode"] == code and body["errorLink"] == code
    assert body["errorId"].startswith("oae")
    if summary is not None:
        assert body["errorSummary"] == summary


def assert_rate_headers(headers):
    for h in ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"):
        assert headers.get(h, "").isdigit(), (h, dict(headers))
    assert int(headers["X-Rate-Limit-Reset"]) >= int(time.time()) - 1


def assert_success(status, headers, body, server, login, uid):
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert_rate_headers(headers)
    assert body["status"] == "SUCCESS"
    assert "stateToken" not in body and "_links" not in body
    assert len(body["sessionToken"]) > 20 and body["sessionToken"] in server.session_tokens
    assert body["expiresAt"].endswith("Z")
    user = body["_embedded"]["user"]
    assert user["id"] == uid and user["passwordChanged"].endswith("Z")
    assert user["profile"]["login"] == login
    assert {"firstName", "lastName", "locale", "timeZone", "extra"} <= set(user["profile"])


@pytest.fixture(scope="module")
def okta(tmp_path_factory):
    server = OktaServer(tmp_path_factory.mktemp("okta"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(okta):
    return Client(okta)


# ------------------------------------------------------------------------ transport


def test_tls_trusts_only_the_run_ca(okta):
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(okta.base_url + "/api/v1/authn",
                               context=ssl.create_default_context(), timeout=5)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)
    assert okta.base_url.startswith("https://127.0.0.1:")


def test_keep_alive_connection_serves_several_requests(okta):
    import http.client
    login = new_login("ka")
    okta.add_user(login, "Secret123")
    conn = http.client.HTTPSConnection("127.0.0.1", okta.port, context=okta.ssl_context(),
                                       timeout=5)
    try:
        for _ in range(2):
            conn.request("POST", "/api/v1/authn",
                         body=json.dumps({"username": login, "password": "Secret123"}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["status"] == "SUCCESS"
    finally:
        conn.close()


# ----------------------------------------------------------------- primary auth


def test_password_only_success(okta, client):
    login = new_login("pw")
    uid = okta.add_user(login, "Secret123", first_name="Pat", last_name="Word")
    assert uid.startswith("00u") and len(uid) == 20
    status, headers, body = client.authn(login, "Secret123")
    assert_success(status, headers, body, okta, login, uid)
    assert body["_embedded"]["user"]["profile"]["firstName"] == "Pat"
    assert body["_embedded"]["user"]["profile"]["lastName"] == "Word"


def test_short_name_and_case_insensitive_login(okta, client):
    login = new_login("Short")
    uid = okta.add_user(login, "Secret123")
    assert_success(*client.authn(login.upper(), "Secret123"), okta, login, uid)
    assert_success(*client.authn(login.split("@")[0], "Secret123"), okta, login, uid)


def test_bad_password_and_unknown_user_are_e0000004(okta, client):
    login = new_login("bad")
    okta.add_user(login, "Secret123")
    for user, pw in ((login, "wrong"), ("nobody@example.com", "Secret123"), (login, "")):
        status, headers, body = client.authn(user, pw)
        assert_error(status, headers, body, 401, "E0000004", "Authentication failed")
        assert body["errorCauses"] == []
        assert_rate_headers(headers)


def test_user_id_can_be_chosen_and_password_changed(okta, client):
    login = new_login("setpw")
    okta.add_user(login, "Secret123", user_id="00uFIXEDFIXEDFIXED01")
    okta.set_password(login, "Other4567")
    assert client.authn(login, "Secret123")[0] == 401
    assert_success(*client.authn(login, "Other4567"), okta, login, "00uFIXEDFIXEDFIXED01")


# ---------------------------------------------------------------------- factors


@pytest.mark.parametrize("key", ["factors", "factor"])
def test_mfa_required_lists_factors_under_either_key(okta, client, key):
    login = new_login("mfa")
    okta.add_user(login, "Secret123", factor_key=key,
                  factors=["totp", "google_totp", "sms", "push", "question", "call", "webauthn",
                           "hardware_token"])
    status, headers, tx = client.authn(login, "Secret123")
    assert status == 200 and tx["status"] == "MFA_REQUIRED"
    assert_rate_headers(headers)
    other = "factor" if key == "factors" else "factors"
    assert key in tx["_embedded"] and other not in tx["_embedded"]
    assert tx["stateToken"].startswith("00") and tx["expiresAt"].endswith("Z")
    assert set(tx["_links"]) == {"cancel"}
    got = [(f["factorType"], f["provider"]) for f in tx["_embedded"][key]]
    assert got == [("token:software:totp", "OKTA"), ("token:software:totp", "GOOGLE"),
                   ("sms", "OKTA"), ("push", "OKTA"), ("question", "OKTA"), ("call", "OKTA"),
                   ("webauthn", "FIDO"), ("token:hardware", "YUBICO")]
    ids = okta.factor_ids(login)
    for f in tx["_embedded"][key]:
        assert f["vendorName"] == f["provider"] and isinstance(f["profile"], dict)
        href = f["_links"]["verify"]["href"]
        assert href.startswith(okta.base_url + "/api/v1/authn/factors/" + f["id"] + "/verify/")
        assert f["id"] in ids.values()
    # A client that builds the documented URL itself instead of following the link fails.
    totp = pick(tx, "token:software:totp")
    guessed = f"{okta.base_url}/api/v1/authn/factors/{totp['id']}/verify"
    status, headers, body = client.request(guessed, {"stateToken": tx["stateToken"],
                                                     "passCode": "123456"})
    assert_error(status, headers, body, 404, "E0000007")
    client.follow(tx["_links"]["cancel"], tx["stateToken"])


@pytest.mark.parametrize("provider,kind", [("OKTA", "totp"), ("GOOGLE", "google_totp")])
def test_totp_right_and_wrong(okta, client, provider, kind):
    login = new_login("totp")
    uid = okta.add_user(login, "Secret123", factors=[kind, "push"], totp_code="246810")
    _, _, tx = client.authn(login, "Secret123")
    f = pick(tx, "token:software:totp", provider)
    status, headers, body = client.follow(f["_links"]["verify"], tx["stateToken"], passCode="000000")
    assert_error(status, headers, body, 403, "E0000068", "Invalid Passcode/Answer")
    assert body["errorCauses"] == [
        {"errorSummary": "Your passcode doesn't match our records. Please try again."}]
    assert_rate_headers(headers)
    status, headers, body = client.follow(f["_links"]["verify"], tx["stateToken"])  # no code
    assert_error(status, headers, body, 403, "E0000068")
    assert_success(*client.follow(f["_links"]["verify"], tx["stateToken"], passCode="246810"),
                   okta, login, uid)


def test_sms_challenge_then_code(okta, client):
    login = new_login("sms")
    uid = okta.add_user(login, "Secret123", factors=["sms"], sms_code="135790")
    _, _, tx = client.authn(login, "Secret123")
    sms = pick(tx, "sms")
    status, _, ch = client.follow(sms["_links"]["verify"], tx["stateToken"])
    assert status == 200 and ch["status"] == "MFA_CHALLENGE" and "factorResult" not in ch
    assert ch["stateToken"] == tx["stateToken"]
    assert ch["_embedded"]["factor"]["id"] == sms["id"]
    assert ch["_embedded"]["factor"]["profile"] == {"phoneNumber": "+1 XXX-XXX-1337"}
    assert ch["_links"]["next"]["name"] == "verify"
    assert {"cancel", "prev", "resend"} <= set(ch["_links"])
    assert ch["_links"]["resend"][0]["name"] == "sms"
    status, headers, body = client.follow(ch["_links"]["next"], tx["stateToken"], passCode="1")
    assert_error(status, headers, body, 403, "E0000068")
    assert body["errorCauses"][0]["errorSummary"].endswith("Please try again.")
    assert_success(*client.follow(ch["_links"]["next"], tx["stateToken"], passCode="135790"),
                   okta, login, uid)


def push_flow(client, okta, login, **user):
    uid = okta.add_user(login, "Secret123", factors=["push", "totp"], **user)
    _, _, tx = client.authn(login, "Secret123")
    push = pick(tx, "push")
    status, _, ch = client.follow(push["_links"]["verify"], tx["stateToken"])
    assert status == 200 and ch["status"] == "MFA_CHALLENGE" and ch["factorResult"] == "WAITING"
    assert ch["_links"]["next"]["name"] == "poll"
    assert ch["_links"]["next"]["href"] != push["_links"]["verify"]["href"]
    assert "/transactions/" in ch["_links"]["next"]["href"]
    assert ch["_embedded"]["factor"]["id"] == push["id"]
    return uid, tx, ch


def test_push_approved_after_waiting_polls(okta, client):
    login = new_login("push")
    uid, tx, ch = push_flow(client, okta, login, push_wait_polls=2)
    responses = []
    for _ in range(5):
        time.sleep(0.5)  # okta-auth-js polls every 500 ms
        status, headers, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
        responses.append(ch["status"])
        if ch["status"] == "SUCCESS":
            assert_success(status, headers, ch, okta, login, uid)
            break
        assert ch["factorResult"] == "WAITING"
        assert "_embedded" not in ch["_embedded"]["factor"]  # no number challenge
    assert responses == ["MFA_CHALLENGE", "MFA_CHALLENGE", "SUCCESS"]


def test_push_number_challenge(okta, client):
    login = new_login("num")
    uid, tx, ch = push_flow(client, okta, login, push_number=42, push_wait_polls=1)
    time.sleep(0.5)
    _, _, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
    assert ch["factorResult"] == "WAITING"
    assert ch["_embedded"]["factor"]["_embedded"]["challenge"]["correctAnswer"] == 42
    time.sleep(0.5)
    assert_success(*client.follow(ch["_links"]["next"], tx["stateToken"]), okta, login, uid)


@pytest.mark.parametrize("outcome,final", [("approve", "SUCCESS"), ("reject", "REJECTED")])
def test_push_decided_while_the_client_polls(okta, client, outcome, final):
    """set_push: the person acts on the phone after seeing the number; the same transaction
    and the same number, then the outcome at the next poll."""
    login = new_login("later")
    uid, tx, ch = push_flow(client, okta, login, push="never", push_number=17)
    for _ in range(2):
        time.sleep(0.5)
        _, _, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
        assert ch["factorResult"] == "WAITING"
        assert ch["_embedded"]["factor"]["_embedded"]["challenge"]["correctAnswer"] == 17
    okta.set_push(login, outcome)
    time.sleep(0.5)
    status, headers, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
    if final == "SUCCESS":
        assert_success(status, headers, ch, okta, login, uid)
    else:
        assert status == 200 and ch["status"] == "MFA_CHALLENGE" and ch["factorResult"] == final
    with pytest.raises(ValueError):
        okta.set_push(login, "maybe")


@pytest.mark.parametrize("outcome,result", [("reject", "REJECTED"), ("timeout", "TIMEOUT")])
def test_push_rejected_or_timed_out(okta, client, outcome, result):
    login = new_login(outcome)
    _, tx, ch = push_flow(client, okta, login, push=outcome, push_wait_polls=0)
    time.sleep(0.5)
    status, _, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
    assert status == 200 and ch["status"] == "MFA_CHALLENGE" and ch["factorResult"] == result
    assert ch["_links"]["next"]["name"] == "verify"
    assert ch["_links"]["resend"][0]["name"] == "push"
    # The transaction is still alive: another factor can be verified, or it can be cancelled.
    status, _, body = client.follow(ch["_links"]["cancel"], tx["stateToken"])
    assert status == 200 and body == {"_embedded": {}}


def test_push_never_answered_stays_waiting(okta, client):
    login = new_login("never")
    _, tx, ch = push_flow(client, okta, login, push="never")
    for _ in range(4):
        time.sleep(0.3)
        _, _, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
        assert ch["factorResult"] == "WAITING"
    # The user switches to TOTP while the push is pending.
    status, _, body = client.request(okta.base_url + "/api/v1/authn",
                                     {"stateToken": tx["stateToken"]})
    assert status == 200 and body["status"] == "MFA_CHALLENGE"
    status, _, back = client.follow(ch["_links"]["prev"], tx["stateToken"])
    assert back["status"] == "MFA_REQUIRED"
    totp = pick(back, "token:software:totp")
    assert client.follow(totp["_links"]["verify"], tx["stateToken"],
                         passCode="123456")[2]["status"] == "SUCCESS"


def test_polling_too_fast_is_throttled(okta):
    fast = Client(okta, pace=False)
    login = new_login("fast")
    _, tx, ch = push_flow(fast, okta, login, push="never")
    seen = []
    for _ in range(6):
        status, headers, body = fast.follow(ch["_links"]["next"], tx["stateToken"])
        seen.append(status)
    assert 429 in seen
    assert_error(status, headers, body, 429, "E0000047",
                 "API call exceeded rate limit due to too many requests.")
    assert headers["X-Rate-Limit-Remaining"] == "0"
    assert headers["X-Rate-Limit-Limit"] == "4"
    assert int(headers["X-Rate-Limit-Reset"]) <= time.time() + 2
    time.sleep(1.1)
    assert fast.follow(ch["_links"]["next"], tx["stateToken"])[0] == 200


def test_unsupported_factors_still_verify_their_way(okta, client):
    login = new_login("odd")
    okta.add_user(login, "Secret123", factors=["question", "call", "webauthn", "hardware_token"])
    _, _, tx = client.authn(login, "Secret123")
    q = pick(tx, "question")
    status, _, body = client.follow(q["_links"]["verify"], tx["stateToken"], answer="pizza")
    assert status == 403 and body["errorCode"] == "E0000068"
    wa = pick(tx, "webauthn", "FIDO")
    status, _, ch = client.follow(wa["_links"]["verify"], tx["stateToken"])
    assert ch["status"] == "MFA_CHALLENGE" and ch["factorResult"] == "CHALLENGE"
    assert "challenge" in ch["_embedded"]["factor"]["_embedded"]
    hw = pick(tx, "token:hardware", "YUBICO")
    assert client.follow(hw["_links"]["verify"], tx["stateToken"],
                         passCode="123456")[2]["status"] == "SUCCESS"


# -------------------------------------------------------------------- passwords


def test_password_warn_skip_to_success(okta, client):
    login = new_login("warn")
    uid = okta.add_user(login, "Secret123", state="PASSWORD_WARN", password_expire_days=3)
    status, headers, tx = client.authn(login, "Secret123")
    assert status == 200 and tx["status"] == "PASSWORD_WARN"
    assert tx["_embedded"]["policy"]["expiration"]["passwordExpireDays"] == 3
    assert tx["_links"]["next"]["name"] == "changePassword"
    assert tx["_links"]["skip"]["name"] == "skip"
    assert_success(*client.follow(tx["_links"]["skip"], tx["stateToken"]), okta, login, uid)
    # Without warnBeforePasswordExpired the warning is not shown at all.
    assert_success(*client.authn(login, "Secret123", warn=False), okta, login, uid)


def test_password_warn_then_mfa(okta, client):
    login = new_login("warnmfa")
    uid = okta.add_user(login, "Secret123", state="PASSWORD_WARN", factors=["totp"])
    _, _, tx = client.authn(login, "Secret123")
    assert tx["status"] == "PASSWORD_WARN"
    status, _, body = client.follow(tx["_links"]["skip"], tx["stateToken"])
    assert status == 200 and body["status"] == "MFA_REQUIRED"
    assert body["stateToken"] == tx["stateToken"]
    # skip is not allowed any more
    status, headers, err = client.follow(tx["_links"]["skip"], tx["stateToken"])
    assert_error(status, headers, err, 403, "E0000079",
                 "This operation is not allowed in the current authentication state.")
    assert err["errorCauses"] == [{"errorSummary": err["errorSummary"]}]
    totp = pick(body, "token:software:totp")
    assert_success(*client.follow(totp["_links"]["verify"], tx["stateToken"], passCode="123456"),
                   okta, login, uid)


def test_password_warn_change_password(okta, client):
    login = new_login("warnchg")
    uid = okta.add_user(login, "Secret123", state="PASSWORD_WARN")
    _, _, tx = client.authn(login, "Secret123")
    assert_success(*client.follow(tx["_links"]["next"], tx["stateToken"],
                                  oldPassword="Secret123", newPassword="Brand-new-1"),
                   okta, login, uid)
    assert_success(*client.authn(login, "Brand-new-1"), okta, login, uid)


def test_password_expired_change(okta, client):
    login = new_login("exp")
    uid = okta.add_user(login, "Old-pass-1", state="PASSWORD_EXPIRED")
    status, _, tx = client.authn(login, "Old-pass-1")
    assert status == 200 and tx["status"] == "PASSWORD_EXPIRED"
    assert tx["_links"]["next"]["name"] == "changePassword"
    assert tx["_links"]["next"]["href"] == okta.base_url + "/api/v1/authn/credentials/change_password"
    assert "skip" not in tx["_links"]
    assert tx["_embedded"]["policy"]["complexity"]["minLength"] == 8
    nxt = tx["_links"]["next"]
    status, headers, body = client.follow(nxt, tx["stateToken"], oldPassword="nope",
                                          newPassword="Long-enough-2")
    assert_error(status, headers, body, 403, "E0000014", "Update of credentials failed")
    assert body["errorCauses"] == [
        {"errorSummary": "oldPassword: The credentials provided were incorrect."}]
    status, headers, body = client.follow(nxt, tx["stateToken"], oldPassword="Old-pass-1",
                                          newPassword="short")
    assert_error(status, headers, body, 403, "E0000080")
    assert body["errorCauses"]
    status, headers, body = client.follow(nxt, tx["stateToken"], oldPassword="Old-pass-1",
                                          newPassword="Long-enough-2")
    assert_success(status, headers, body, okta, login, uid)
    # the old stateToken is spent; the new password works, the old one does not
    assert client.follow(nxt, tx["stateToken"], oldPassword="x", newPassword="y")[0] == 401
    assert_success(*client.authn(login, "Long-enough-2"), okta, login, uid)
    assert client.authn(login, "Old-pass-1")[0] == 401


def test_password_expired_after_mfa(okta, client):
    login = new_login("expmfa")
    uid = okta.add_user(login, "Old-pass-1", state="PASSWORD_EXPIRED", factors=["totp"])
    _, _, tx = client.authn(login, "Old-pass-1")
    assert tx["status"] == "MFA_REQUIRED"
    totp = pick(tx, "token:software:totp")
    _, _, body = client.follow(totp["_links"]["verify"], tx["stateToken"], passCode="123456")
    assert body["status"] == "PASSWORD_EXPIRED"
    assert_success(*client.follow(body["_links"]["next"], tx["stateToken"],
                                  oldPassword="Old-pass-1", newPassword="New-pass-2"),
                   okta, login, uid)


# ---------------------------------------------------------------- other states


def test_locked_out(okta, client):
    login = new_login("locked")
    okta.add_user(login, "Secret123", state="LOCKED_OUT")
    status, headers, body = client.authn(login, "Secret123")
    assert status == 200
    assert body == {"status": "LOCKED_OUT", "_links": {"next": {
        "name": "unlock", "href": okta.base_url + "/api/v1/authn/recovery/unlock",
        "hints": {"allow": ["POST"]}}}}
    assert_rate_headers(headers)
    okta.set_state(login, "LOCKED_OUT_HIDDEN")
    assert_error(*client.authn(login, "Secret123"), 401, "E0000004")


@pytest.mark.parametrize("state", ["MFA_ENROLL", "MFA_ENROLL_ACTIVATE", "RECOVERY",
                                   "UNAUTHENTICATED", "SOMETHING_NEW"])
def test_forced_states(okta, client, state):
    login = new_login(state.lower().replace("_", ""))
    okta.add_user(login, "Secret123", state=state, factors=["totp"])
    status, headers, tx = client.authn(login, "Secret123")
    assert status == 200 and tx["status"] == state and tx["stateToken"]
    assert_rate_headers(headers)
    if state == "MFA_ENROLL":
        assert all(f["status"] == "NOT_SETUP" and "enroll" in f["_links"]
                   for f in tx["_embedded"]["factors"])
    if state == "MFA_ENROLL_ACTIVATE":
        assert tx["_links"]["next"]["name"] == "activate"
        assert "activation" in tx["_embedded"]["factor"]["_embedded"]
    if state == "UNAUTHENTICATED":
        assert tx["_links"]["next"]["name"] == "authenticate" and "cancel" not in tx["_links"]
        return
    if state == "RECOVERY":
        assert tx["_links"]["next"]["name"] == "answer"
    # Nothing moves these transactions forward here; cancel ends them.
    status, headers, body = client.follow(tx["_links"]["cancel"], tx["stateToken"])
    assert status == 200 and body == {"_embedded": {}}
    assert_error(*client.follow(tx["_links"]["cancel"], tx["stateToken"]), 401, "E0000011")


# ------------------------------------------------------------ tokens and cancel


def test_cancel_then_e0000011(okta, client):
    login = new_login("cancel")
    okta.add_user(login, "Secret123", factors=["totp", "sms"])
    _, _, tx = client.authn(login, "Secret123")
    status, headers, body = client.follow(tx["_links"]["cancel"], tx["stateToken"])
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert_rate_headers(headers)
    totp = pick(tx, "token:software:totp")
    status, headers, body = client.follow(totp["_links"]["verify"], tx["stateToken"],
                                          passCode="123456")
    assert_error(status, headers, body, 401, "E0000011", "Invalid token provided")
    assert body["errorCauses"] == []
    assert_error(*client.request(okta.base_url + "/api/v1/authn",
                                 {"stateToken": tx["stateToken"]}), 401, "E0000011")


def test_state_token_dies_after_success(okta, client):
    login = new_login("spent")
    okta.add_user(login, "Secret123", factors=["totp"])
    _, _, tx = client.authn(login, "Secret123")
    totp = pick(tx, "token:software:totp")
    assert client.follow(totp["_links"]["verify"], tx["stateToken"],
                         passCode="123456")[2]["status"] == "SUCCESS"
    assert_error(*client.follow(totp["_links"]["verify"], tx["stateToken"], passCode="123456"),
                 401, "E0000011")


def test_expire_state_tokens(okta, client):
    login = new_login("expire")
    okta.add_user(login, "Secret123", factors=["totp"])
    _, _, tx = client.authn(login, "Secret123")
    okta.expire_state_tokens()
    totp = pick(tx, "token:software:totp")
    assert_error(*client.follow(totp["_links"]["verify"], tx["stateToken"], passCode="123456"),
                 401, "E0000011")
    assert_error(*client.follow(tx["_links"]["cancel"], tx["stateToken"]), 401, "E0000011")


def test_token_of_another_user_cannot_verify_my_factor(okta, client):
    a, b = new_login("a"), new_login("b")
    okta.add_user(a, "Secret123", factors=["totp"])
    okta.add_user(b, "Secret123", factors=["totp"])
    _, _, ta = client.authn(a, "Secret123")
    _, _, tb = client.authn(b, "Secret123")
    href_a = pick(ta, "token:software:totp")["_links"]["verify"]
    status, _, body = client.follow(href_a, tb["stateToken"], passCode="123456")
    assert status == 404 and body["errorCode"] == "E0000007"


# --------------------------------------------------------------- rate limiting


def test_per_user_rate_limit_on_primary_authentication(okta):
    fast = Client(okta, pace=False)
    login = new_login("rl")
    okta.add_user(login, "Secret123")
    results = [fast.authn(login, "Secret123") for _ in range(6)]
    statuses = [r[0] for r in results]
    assert statuses[:4] == [200] * 4 and 429 in statuses[4:]
    status, headers, body = next(r for r in results if r[0] == 429)
    assert_error(status, headers, body, 429, "E0000047",
                 "API call exceeded rate limit due to too many requests.")
    assert body["errorCauses"] == []
    assert headers["X-Rate-Limit-Remaining"] == "0"
    # another user is not affected; the same user is served again after a second
    other = new_login("rl-other")
    okta.add_user(other, "Secret123")
    assert fast.authn(other, "Secret123")[0] == 200
    time.sleep(1.1)
    assert fast.authn(login, "Secret123")[0] == 200


def test_rate_headers_count_down(okta, client):
    login = new_login("hdr")
    okta.add_user(login, "Secret123")
    _, h1, _ = client.authn(login, "Secret123")
    _, h2, _ = client.authn(login, "Secret123")
    assert h1["X-Rate-Limit-Limit"] == "600"
    if h1["X-Rate-Limit-Reset"] == h2["X-Rate-Limit-Reset"]:  # same minute
        assert int(h2["X-Rate-Limit-Remaining"]) < int(h1["X-Rate-Limit-Remaining"])


# ------------------------------------------------------------ injected failures


def test_fail_next(okta, client):
    login = new_login("fail")
    uid = okta.add_user(login, "Secret123")
    okta.fail_next(429)
    status, headers, body = client.authn(login, "Secret123")
    assert_error(status, headers, body, 429, "E0000047")
    assert_rate_headers(headers)
    okta.fail_next(503, count=2)
    for _ in range(2):
        status, headers, body = client.authn(login, "Secret123")
        assert status == 503 and body is None and headers["Content-Type"] == "text/html"
    okta.fail_next(500)
    assert_error(*client.authn(login, "Secret123"), 500, "E0000009")
    okta.fail_next(429, headers={"X-Rate-Limit-Reset": "1"})
    assert client.authn(login, "Secret123")[1]["X-Rate-Limit-Reset"] == "1"
    okta.fail_next(400, body={"errorCode": "E0000001"})
    assert client.authn(login, "Secret123")[2] == {"errorCode": "E0000001"}
    assert_success(*client.authn(login, "Secret123"), okta, login, uid)


# ------------------------------------------------------------------------- OIDC
#
# The client side of "read the groups after an Authentication API sign-in": discover the
# custom authorization server, GET /authorize with PKCE + prompt=none + sessionToken (no
# redirect following: the code is in the Location), POST /token, verify the ID token with
# the JWKS.

REDIRECT_URI = "http://localhost:8400/callback"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_pair() -> tuple[str, str]:
    verifier = b64url(os.urandom(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def new_client_id() -> str:
    return "0oa" + b64url(os.urandom(12)).replace("-", "x").replace("_", "y")[:17]


def https(server, method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    """One request, no redirect following: (status, headers, raw body)."""
    split = urllib.parse.urlsplit(url)
    assert f"{split.scheme}://{split.netloc}" == server.base_url, url
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(),
                                       timeout=10)
    try:
        target = split.path + (f"?{split.query}" if split.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def get_json(server, url: str):
    status, headers, raw = https(server, "GET", url)
    assert headers["Content-Type"] == "application/json", (status, raw)
    return status, json.loads(raw)


def post_form(server, url: str, fields: dict):
    status, headers, raw = https(server, "POST", url, urllib.parse.urlencode(fields).encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded",
                                  "Accept": "application/json"})
    assert headers["Content-Type"] == "application/json", (status, raw)
    return status, headers, json.loads(raw)


def verify_jws(token: str, jwks: dict) -> tuple[dict, dict]:
    """Check an RS256 JWS against the key its kid names; return (header, claims)."""
    head64, body64, sig64 = token.split(".")
    header = json.loads(b64url_decode(head64))
    assert header["alg"] == "RS256"
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    key = rsa.RSAPublicNumbers(int.from_bytes(b64url_decode(jwk["e"]), "big"),
                               int.from_bytes(b64url_decode(jwk["n"]), "big")).public_key()
    key.verify(b64url_decode(sig64), f"{head64}.{body64}".encode(), padding.PKCS1v15(),
               hashes.SHA256())
    return header, json.loads(b64url_decode(body64))


class OIDCClient:
    """What CloudLogin does after SUCCESS, written from Okta's documentation."""

    def __init__(self, server, client_id: str, redirect_uri: str = REDIRECT_URI,
                 authorization_server: str = "default"):
        self.server, self.client_id, self.redirect_uri = server, client_id, redirect_uri
        status, self.meta = get_json(server, f"{server.base_url}/oauth2/{authorization_server}"
                                             "/.well-known/openid-configuration")
        assert status == 200

    def authorize(self, session_token: str | None, scope: str = "openid profile groups",
                  **overrides):
        self.verifier, challenge = pkce_pair()
        self.state, self.nonce = b64url(os.urandom(16)), b64url(os.urandom(16))
        params = {"client_id": self.client_id, "response_type": "code", "response_mode": "query",
                  "scope": scope, "redirect_uri": self.redirect_uri, "state": self.state,
                  "nonce": self.nonce, "code_challenge": challenge,
                  "code_challenge_method": "S256", "prompt": "none",
                  "sessionToken": session_token}
        params.update(overrides)
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return https(self.server, "GET", f"{self.meta['authorization_endpoint']}?{query}")

    def redirect_params(self, response) -> dict:
        status, headers, raw = response
        assert status == 302 and raw == b"", (status, raw)
        location = headers["Location"]
        assert location.startswith(self.redirect_uri + "?"), location
        assert headers["Referrer-Policy"] == "no-referrer"
        pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query,
                                       keep_blank_values=True)
        assert len(pairs) == len(dict(pairs))
        return dict(pairs)

    def code(self, session_token: str, **overrides) -> str:
        got = self.redirect_params(self.authorize(session_token, **overrides))
        assert list(got) == ["code", "state"] and got["state"] == self.state
        return got["code"]

    def token(self, code: str, **overrides):
        fields = {"grant_type": "authorization_code", "code": code,
                  "redirect_uri": self.redirect_uri, "client_id": self.client_id,
                  "code_verifier": self.verifier}
        fields.update(overrides)
        return post_form(self.server, self.meta["token_endpoint"],
                         {k: v for k, v in fields.items() if v is not None})

    def jwks(self) -> dict:
        status, jwks = get_json(self.server, self.meta["jwks_uri"])
        assert status == 200
        return jwks


def signed_in(okta, client, login: str) -> str:
    status, _, body = client.authn(login, "Secret123")
    assert status == 200 and body["status"] == "SUCCESS", body
    return body["sessionToken"]


def assert_oauth_error(response, status: int, error: str, description: str | None = None):
    got_status, _, body = response
    assert got_status == status, body
    assert list(body) == ["error", "error_description"] and body["error"] == error, body
    if description is not None:
        assert body["error_description"] == description


def test_oidc_discovery_documents(okta):
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    issuer = okta.issuer()
    assert issuer == okta.base_url + "/oauth2/default"
    status, meta = get_json(okta, issuer + "/.well-known/openid-configuration")
    assert status == 200
    assert list(meta)[:6] == ["issuer", "authorization_endpoint", "token_endpoint",
                              "userinfo_endpoint", "registration_endpoint", "jwks_uri"]
    assert meta["issuer"] == issuer
    for key, path in (("authorization_endpoint", "/v1/authorize"), ("token_endpoint", "/v1/token"),
                      ("jwks_uri", "/v1/keys"), ("userinfo_endpoint", "/v1/userinfo")):
        assert meta[key] == issuer + path
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in meta["response_types_supported"]
    assert "query" in meta["response_modes_supported"]
    assert "authorization_code" in meta["grant_types_supported"]
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    assert {"openid", "profile", "email", "groups"} <= set(meta["scopes_supported"])
    # ?client_id= is accepted; an unknown one is refused
    assert get_json(okta, f"{issuer}/.well-known/openid-configuration?client_id={cid}")[1] == meta
    status, body = get_json(okta, issuer + "/.well-known/openid-configuration?client_id=0oaNOPE")
    assert status == 400 and body["errorCode"] == "invalid_client"
    status, oauth_meta = get_json(okta, issuer + "/.well-known/oauth-authorization-server")
    assert status == 200 and oauth_meta["issuer"] == issuer
    assert "userinfo_endpoint" not in oauth_meta
    # two published keys; unknown servers are 404 E0000007
    status, jwks = get_json(okta, meta["jwks_uri"])
    assert status == 200 and len(jwks["keys"]) == 2
    for k in jwks["keys"]:
        assert list(k) == ["kty", "alg", "kid", "use", "e", "n"] and len(k["kid"]) == 43
    for path in ("/oauth2/nosuch/.well-known/openid-configuration", "/oauth2/v1/keys"):
        status, headers, raw = https(okta, "GET", okta.base_url + path)
        assert status == 404 and json.loads(raw)["errorCode"] == "E0000007"
    assert json.loads(https(okta, "GET", okta.base_url + "/oauth2/nosuch/v1/keys")[2])[
        "errorSummary"] == "Not found: Resource not found: nosuch (AuthorizationServer)"
    status, headers, raw = https(okta, "GET", meta["token_endpoint"])
    assert status == 405 and headers["Allow"] == "POST"


def test_oidc_full_flow(okta, client):
    login = new_login("oidc")
    uid = okta.add_user(login, "Secret123", first_name="Olive", last_name="Dee",
                        groups=["Admins", "Staff"])
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    oidc = OIDCClient(okta, cid)
    mark = okta.mark()

    status, _, success = client.authn(login, "Secret123")
    assert status == 200 and success["status"] == "SUCCESS"
    assert success["_embedded"]["user"]["id"] == uid
    response = oidc.authorize(success["sessionToken"], scope="openid profile email groups")
    assert response[1]["Set-Cookie"].startswith("sid=")
    code = oidc.redirect_params(response)["code"]

    status, headers, tokens = oidc.token(code)
    assert status == 200, tokens
    assert headers["Content-Type"] == "application/json"
    assert list(tokens) == ["token_type", "expires_in", "access_token", "scope", "id_token"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["scope"] == "openid profile email groups"

    jwks = oidc.jwks()
    header, claims = verify_jws(tokens["id_token"], jwks)
    assert list(header) == ["kid", "alg"]
    assert header["kid"] == jwks["keys"][-1]["kid"]          # not simply the first key
    assert list(claims) == ["sub", "name", "email", "ver", "iss", "aud", "iat", "exp", "jti",
                            "amr", "idp", "nonce", "preferred_username", "auth_time", "at_hash",
                            "groups"]
    assert claims["sub"] == uid == success["_embedded"]["user"]["id"]
    assert claims["iss"] == oidc.meta["issuer"] == okta.issuer()
    assert claims["aud"] == cid                                # a string, not a list
    assert claims["nonce"] == oidc.nonce
    assert claims["groups"] == ["Admins", "Staff"]
    assert claims["preferred_username"] == login and claims["email"] == login
    assert claims["name"] == "Olive Dee" and claims["ver"] == 1
    assert claims["amr"] == ["pwd"] and claims["idp"].startswith("00o")
    assert claims["jti"].startswith("ID.") and len(claims["jti"]) == 46
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60 and claims["auth_time"] <= claims["iat"]
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == b64url(digest[:16])
    # the access token is a JWT of the same server; a changed byte breaks the signature
    _, at = verify_jws(tokens["access_token"], jwks)
    assert at["cid"] == cid and at["uid"] == uid and at["sub"] == login
    assert at["aud"] == "api://default" and at["scp"] == ["openid", "profile", "email", "groups"]
    head, body, sig = tokens["id_token"].split(".")
    forged = b64url(json.dumps({**claims, "groups": ["Admins", "Root"]}).encode())
    with pytest.raises(InvalidSignature):
        verify_jws(f"{head}.{forged}.{sig}", jwks)

    # userinfo with the access token
    status, headers, raw = https(okta, "GET", oidc.meta["userinfo_endpoint"],
                                 headers={"Authorization": "Bearer " + tokens["access_token"]})
    info = json.loads(raw)
    assert status == 200 and info["sub"] == uid and info["groups"] == ["Admins", "Staff"]
    status, headers, _ = https(okta, "GET", oidc.meta["userinfo_endpoint"],
                               headers={"Authorization": "Bearer nope"})
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]

    # the code is spent; the request log shows the flow
    assert_oauth_error(oidc.token(code), 400, "invalid_grant",
                       "The authorization code is invalid or has expired.")
    got = [(r["method"], r["path"], r["status"]) for r in okta.requests_since(mark)]
    assert got[:4] == [("POST", "/api/v1/authn", 200),
                       ("GET", "/oauth2/default/v1/authorize", 302),
                       ("POST", "/oauth2/default/v1/token", 200),
                       ("GET", "/oauth2/default/v1/keys", 200)]
    authorize = okta.requests_since(mark)[1]
    query = dict(urllib.parse.parse_qsl(authorize["query"]))
    assert query["sessionToken"] == success["sessionToken"] and query["prompt"] == "none"
    token_request = okta.requests_since(mark)[2]
    assert token_request["body"]["code_verifier"] == oidc.verifier
    assert token_request["response"]["token_type"] == "Bearer"


def test_oidc_scopes_groups_and_mfa_amr(okta, client):
    login = new_login("oidcmfa")
    uid = okta.add_user(login, "Secret123", factors=["totp"], groups=["Staff"])
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    oidc = OIDCClient(okta, cid)
    _, _, tx = client.authn(login, "Secret123")
    _, _, done = client.follow(pick(tx, "token:software:totp")["_links"]["verify"],
                               tx["stateToken"], passCode="123456")
    status, _, tokens = oidc.token(oidc.code(done["sessionToken"], scope="openid"))
    _, claims = verify_jws(tokens["id_token"], oidc.jwks())
    assert status == 200 and claims["sub"] == uid
    assert claims["amr"] == ["pwd", "mfa", "otp"]
    # no profile/email/groups scope: none of their claims
    assert not {"name", "email", "preferred_username", "groups"} & set(claims)
    # groups follow set_groups; an empty list leaves the claim out
    login = new_login("oidcgroups")
    okta.add_user(login, "Secret123", groups=["Staff"])
    okta.set_groups(login, ["Staff", "Ops"])
    _, _, tokens = oidc.token(oidc.code(signed_in(okta, client, login)))
    assert verify_jws(tokens["id_token"], oidc.jwks())[1]["groups"] == ["Staff", "Ops"]
    okta.set_groups(login, [])
    _, _, tokens = oidc.token(oidc.code(signed_in(okta, client, login)))
    assert "groups" not in verify_jws(tokens["id_token"], oidc.jwks())[1]
    # without openid: an access token only
    _, _, tokens = oidc.token(oidc.code(signed_in(okta, client, login), scope="profile"))
    assert "id_token" not in tokens and tokens["scope"] == "profile"


def test_oidc_reused_session_token_is_login_required(okta, client):
    login = new_login("oidcreuse")
    okta.add_user(login, "Secret123")
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    oidc = OIDCClient(okta, cid)
    session_token = signed_in(okta, client, login)
    oidc.code(session_token)
    login_required = {"error": "login_required", "error_description":
                      "The client specified not to prompt, but the user is not logged in."}
    got = oidc.redirect_params(oidc.authorize(session_token))
    assert got == {**login_required, "state": oidc.state}
    assert list(got) == ["error", "error_description", "state"]
    # an unknown, a missing and an expired sessionToken: the same
    for token in ("20111" + "x" * 50, None):
        assert oidc.redirect_params(oidc.authorize(token)) == {**login_required,
                                                               "state": oidc.state}
    fresh = signed_in(okta, client, login)
    okta.expire_session_tokens()
    assert oidc.redirect_params(oidc.authorize(fresh))["error"] == "login_required"
    # without prompt=none Okta would show its sign-in page (no redirect)
    status, headers, raw = oidc.authorize(signed_in(okta, client, login) + "x", prompt=None)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "Location" not in headers


def test_oidc_wrong_code_verifier_is_invalid_grant(okta, client):
    login = new_login("oidcpkce")
    okta.add_user(login, "Secret123")
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    oidc = OIDCClient(okta, cid)
    code = oidc.code(signed_in(okta, client, login))
    wrong, _ = pkce_pair()
    assert_oauth_error(oidc.token(code, code_verifier=wrong), 400, "invalid_grant",
                       "PKCE verification failed.")
    # the code was spent by that attempt
    assert_oauth_error(oidc.token(code), 400, "invalid_grant",
                       "The authorization code is invalid or has expired.")
    # other refusals
    code = oidc.code(signed_in(okta, client, login))
    assert_oauth_error(oidc.token(code, redirect_uri=REDIRECT_URI + "/other"), 400,
                       "invalid_grant", "The 'redirect_uri' does not match the redirection URI "
                       "used in the authorization request.")
    code = oidc.code(signed_in(okta, client, login))
    assert_oauth_error(oidc.token(code, code_verifier=None), 400, "invalid_request")
    code = oidc.code(signed_in(okta, client, login))
    okta.expire_codes()
    assert_oauth_error(oidc.token(code), 400, "invalid_grant",
                       "The authorization code is invalid or has expired.")
    assert_oauth_error(oidc.token("nope", grant_type="password"), 400, "unauthorized_client",
                       "The client is not authorized to use the provided grant type. "
                       "Configured grant types: [authorization_code].")
    assert_oauth_error(oidc.token("nope", grant_type="urn:x"), 400, "unsupported_grant_type")
    assert_oauth_error(oidc.token("nope", client_id=None), 401, "invalid_client",
                       "No client credentials found.")
    status, _, body = oidc.token("nope", client_id="0oaUNKNOWN")
    assert status == 400 and body["errorCode"] == "invalid_client"
    assert body["errorSummary"] == "Invalid value for 'client_id' parameter."


def test_oidc_unregistered_redirect_uri_or_client_is_an_error_page(okta, client):
    login = new_login("oidcredir")
    okta.add_user(login, "Secret123")
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    oidc = OIDCClient(okta, cid)
    session_token = signed_in(okta, client, login)
    bad_redirect = b"The &#x27;redirect_uri&#x27; parameter must be a Login redirect URI"
    for overrides, text in (({"redirect_uri": "http://localhost:8400/evil"}, bad_redirect),
                            ({"redirect_uri": REDIRECT_URI + "/"}, bad_redirect),
                            ({"redirect_uri": None}, bad_redirect),
                            ({"client_id": "0oaUNKNOWN"},
                             b"Invalid value for &#x27;client_id&#x27; parameter."),
                            ({"client_id": None}, b"client_id")):
        status, headers, raw = oidc.authorize(session_token, **overrides)
        assert status == 400 and "Location" not in headers, overrides
        assert headers["Content-Type"].startswith("text/html")
        assert b"400 Bad Request" in raw and text in raw, raw
    # those did not spend the sessionToken
    oidc.code(session_token)


def test_oidc_authorize_errors_are_redirects(okta, client):
    login = new_login("oidcerr")
    okta.add_user(login, "Secret123")
    cid = new_client_id()
    okta.add_oidc_client(cid, REDIRECT_URI)
    okta.add_authorization_server("other")
    oidc = OIDCClient(okta, cid)
    session_token = signed_in(okta, client, login)
    cases = [({"scope": "openid bogus"}, "invalid_scope",
              "One or more scopes are not configured for the authorization server resource."),
             ({"scope": None}, "invalid_scope", None),
             ({"code_challenge": None}, "invalid_request", "PKCE code challenge is required when "
              "the token endpoint authentication method is 'NONE'."),
             ({"code_challenge_method": "plain"}, "invalid_request", None),
             ({"code_challenge_method": None}, "invalid_request", None),
             ({"code_challenge": "short"}, "invalid_request", None),
             ({"response_type": "token"}, "unauthorized_client", None),
             ({"response_type": "bogus"}, "unsupported_response_type", None),
             ({"response_mode": "bogus"}, "unsupported_response_mode", None),
             ({"prompt": "none login"}, "invalid_request", None)]
    for overrides, error, description in cases:
        got = oidc.redirect_params(oidc.authorize(session_token, **overrides))
        assert got["error"] == error and got["state"] == oidc.state, (overrides, got)
        assert description is None or got["error_description"] == description, got
        assert "code" not in got
    got = oidc.redirect_params(oidc.authorize(session_token, state=None))
    assert got["error"] == "invalid_request" and "state" not in got
    # fragment mode puts the answer after '#'
    status, headers, _ = oidc.authorize(session_token, response_mode="fragment", scope="bad")
    assert status == 302 and headers["Location"].startswith(REDIRECT_URI + "#error=invalid_scope")
    # an authorization server whose policy does not include the app
    other = OIDCClient(okta, cid, authorization_server="other")
    got = other.redirect_params(other.authorize(session_token))
    assert got["error"] == "access_denied" and got["state"] == other.state
    # none of that spent the sessionToken; the app's own server still answers with a code
    status, _, tokens = oidc.token(oidc.code(session_token))
    assert status == 200
    # a code from one server is refused by another
    code = oidc.code(signed_in(okta, client, login))
    status, _, body = post_form(okta, other.meta["token_endpoint"], {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": cid, "code_verifier": oidc.verifier})
    assert status == 400 and body["error"] == "invalid_grant"


# ------------------------------------------------------------- malformed input


def test_malformed_requests(okta, client):
    url = okta.base_url + "/api/v1/authn"
    for raw in (b"{not json", b"", b"[1, 2]", b"\xff\xfe", b'"string"'):
        status, headers, body = client.request(url, raw=raw)
        assert_error(status, headers, body, 400, "E0000003", "The request body was not well-formed.")
    status, headers, body = client.request(url, method="GET")
    assert_error(status, headers, body, 405, "E0000022")
    assert headers["Allow"] == "POST"
    status, headers, body = client.request(okta.base_url + "/api/v1/nothing", {})
    assert_error(status, headers, body, 404, "E0000007")
    status, headers, body = client.request(url, {"username": ["x"], "password": {"a": 1}})
    assert_error(status, headers, body, 401, "E0000004")
    # raw garbage on the socket, then a plain-HTTP request: the server stays up
    for junk in (b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", okta.port), timeout=5) as s:
            s.sendall(junk)
            try:
                s.recv(100)
            except OSError:
                pass
    ctx = okta.ssl_context()
    with socket.create_connection(("127.0.0.1", okta.port), timeout=5) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="127.0.0.1") as s:
            s.sendall(b"POST /api/v1/authn HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{")
            reply = b""
            while chunk := s.recv(4096):   # the server closes the connection after this
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 400 ") and b'"E0000003"' in reply
    login = new_login("alive")
    uid = okta.add_user(login, "Secret123")
    assert_success(*client.authn(login, "Secret123"), okta, login, uid)


# ----------------------------------------------------------------- inspection


def test_request_log(okta, client):
    login = new_login("log")
    okta.add_user(login, "Secret123", factors=["totp"])
    mark = okta.mark()
    _, _, tx = client.authn(login, "Secret123")
    client.follow(pick(tx, "token:software:totp")["_links"]["verify"], tx["stateToken"],
                  passCode="999999")
    client.follow(tx["_links"]["cancel"], tx["stateToken"])
    got = okta.requests_since(mark)
    assert [(r["method"], r["status"]) for r in got] == [("POST", 200), ("POST", 403), ("POST", 200)]
    assert got[0]["path"] == "/api/v1/authn"
    assert got[0]["body"]["username"] == login
    assert got[1]["path"].startswith("/api/v1/authn/factors/")
    assert got[2]["path"] == "/api/v1/authn/cancel"
    assert got[0]["response"]["status"] == "MFA_REQUIRED"
    assert okta.requests()[mark:] == got
    lines = okta.request_log_file.read_text().splitlines()
    assert json.loads(lines[-1])["path"] == "/api/v1/authn/cancel"


def test_stop_and_restart_keeps_port_ca_and_transactions(tmp_path):
    server = OktaServer(tmp_path / "okta2")
    with server:
        client = Client(server)
        login = new_login("restart")
        uid = server.add_user(login, "Secret123", factors=["totp"])
        _, _, tx = client.authn(login, "Secret123")
        base, ca = server.base_url, server.ca_file.read_bytes()
        server.stop()
        with pytest.raises(urllib.error.URLError):
            client.authn(login, "Secret123")
        server.start()
        assert server.base_url == base and server.ca_file.read_bytes() == ca
        totp = pick(tx, "token:software:totp")
        assert_success(*client.follow(totp["_links"]["verify"], tx["stateToken"],
                                      passCode="123456"), server, login, uid)


def test_documented_link_style(tmp_path):
    with OktaServer(tmp_path / "doc", link_style="documented") as server:
        client = Client(server)
        login = new_login("doc")
        uid = server.add_user(login, "Secret123", factors=["push", "sms"], push_wait_polls=1)
        _, _, tx = client.authn(login, "Secret123")
        push = pick(tx, "push")
        assert push["_links"]["verify"]["href"] == \
            f"{server.base_url}/api/v1/authn/factors/{push['id']}/verify"
        _, _, ch = client.follow(push["_links"]["verify"], tx["stateToken"])
        assert ch["_links"]["next"]["href"] == push["_links"]["verify"]["href"]  # as documented
        time.sleep(0.5)
        _, _, ch = client.follow(ch["_links"]["next"], tx["stateToken"])
        assert ch["factorResult"] == "WAITING"
        time.sleep(0.5)
        assert_success(*client.follow(ch["_links"]["next"], tx["stateToken"]), server, login, uid)


def test_serve_command(tmp_path):
    workdir = tmp_path / "served"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "okta.py"), "serve", "--workdir", str(workdir),
         "--port", "0", "--user", "carol@example.com:Secret123:totp,push",
         "--user", "dave@example.com:Secret123::PASSWORD_EXPIRED",
         "--group", "dave@example.com:Admins", "--oidc-client", "0oaSERVED," + REDIRECT_URI],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["base_url"].startswith("https://127.0.0.1:")
        assert set(info["users"]) == {"carol@example.com", "dave@example.com"}
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        req = urllib.request.Request(info["base_url"] + "/api/v1/authn", data=json.dumps(
            {"username": "carol@example.com", "password": "Secret123"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "MFA_REQUIRED"
        assert body["_embedded"]["user"]["id"] == info["users"]["carol@example.com"]
        assert json.loads((workdir / "server.json").read_text())["base_url"] == info["base_url"]
        issuer = info["oidc_clients"]["0oaSERVED"]["issuer"]
        assert issuer == info["base_url"] + "/oauth2/default"
        with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", context=ctx,
                                    timeout=10) as r:
            assert json.loads(r.read())["issuer"] == issuer
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
