"""Proves the MFA-API test server (mfa_api.py) by walking each flow with plain HTTPS requests,
as a client would: discovery, the password grant, the challenge and the mfa-otp / mfa-oob
grants, in both dialects (Okta direct authentication, Auth0's MFA API), against the JSON the
documentation shows (docs/facts.md, "The MFA API on the password grant").

Run (outside the account sandbox; --confcutdir keeps Tests/Integration/conftest.py, which
refuses to run outside run-in-sandbox, out of this standalone run):

    python3 -m pytest -q -p no:cacheprovider --confcutdir=Tests/Integration/support \
        Tests/Integration/support/test_mfa_api_server.py

Inside the sandbox (`make test`) it also runs as part of Tests/Integration.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import pathlib
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mfa_api import MFA_OOB, MFA_OTP, MFAAPIServer, totp_code  # noqa: E402

CLIENT = "0oaCLOUDLOGINTEST"
SECRET = "s3cret-value"
OKTA_MFA_TEXT = "Verify with an additional authenticator to complete the sign-in process."
OKTA_PENDING = ("No user response received on the out-of-band authenticator yet. Continue "
                "polling to wait for a response.")
A0_PENDING = "Authorization pending: please repeat the request in a few seconds."
_ids = itertools.count(1)


def new_login(tag: str) -> str:
    return f"{tag}{next(_ids)}-{os.getpid()}@example.com"


# ------------------------------------------------------------------------ a plain client


def call(server: MFAAPIServer, method: str, url: str, *, form: dict | None = None,
         json_body: dict | None = None, headers: dict | None = None):
    """One HTTPS request trusting only the run's CA: (status, headers, parsed JSON or None)."""
    assert url.startswith(server.base_url + "/"), url
    hdrs = {"Accept": "application/json", **(headers or {})}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, context=server.ssl_context(), timeout=10) as r:
            status, rheaders, payload = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, rheaders, payload = e.code, e.headers, e.read()
    parsed = json.loads(payload) if payload and rheaders.get("Content-Type", "").startswith(
        "application/json") else None
    return status, rheaders, parsed


def basic(client_id: str, secret: str) -> dict:
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_id_token(server: MFAAPIServer, token: str) -> tuple[dict, dict]:
    """Check the RS256 signature with the key of the JWKS named by `kid`; (header, claims)."""
    h, p, s = token.split(".")
    header, claims = json.loads(b64url_decode(h)), json.loads(b64url_decode(p))
    _, _, jwks = call(server, "GET", server.jwks_uri)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    pub = rsa.RSAPublicNumbers(int.from_bytes(b64url_decode(key["e"]), "big"),
                               int.from_bytes(b64url_decode(key["n"]), "big")).public_key()
    pub.verify(b64url_decode(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return header, claims


def assert_error(resp, status: int, error: str, description: str | None = None):
    got_status, headers, body = resp
    assert got_status == status, body
    assert headers["Content-Type"] == "application/json"
    assert list(body) == ["error", "error_description"], body
    assert body["error"] == error, body
    if description is not None:
        assert body["error_description"] == description


def assert_tokens(server: MFAAPIServer, resp, login: str, client_id: str = CLIENT,
                  scope: str = "openid profile email") -> dict:
    status, _, body = resp
    assert status == 200, body
    if server.dialect == "okta":   # [OK-OTP] member order
        assert list(body) == ["token_type", "expires_in", "access_token", "scope", "id_token"]
        assert body["expires_in"] == 3600
    else:                          # [A0-OTP] member order
        assert list(body) == ["id_token", "access_token", "expires_in", "scope", "token_type"]
    assert body["token_type"] == "Bearer" and body["scope"] == scope
    header, claims = verify_id_token(server, body["id_token"])
    assert header["alg"] == "RS256"
    assert claims["iss"] == server.issuer and claims["aud"] == client_id
    assert claims["preferred_username"] == login and claims["email"] == login
    assert claims["exp"] > claims["iat"] >= int(time.time()) - 5
    assert {"sub", "name", "groups"} <= set(claims)
    return claims


class Flow:
    """The client side of one dialect: the requests CloudLogin will make."""

    def __init__(self, server: MFAAPIServer, client_id: str = CLIENT, secret: str | None = SECRET):
        self.s, self.client_id, self.secret = server, client_id, secret

    def _auth(self, fields: dict) -> tuple[dict, dict]:
        if self.secret is None:
            return {"client_id": self.client_id, **fields}, {}
        return fields, basic(self.client_id, self.secret)

    def token(self, **fields):
        form, headers = self._auth(fields)
        return call(self.s, "POST", self.s.token_endpoint, form=form, headers=headers)

    def password(self, login: str, password: str = "Secret123",
                 scope: str = "openid profile email"):
        return self.token(grant_type="password", username=login, password=password, scope=scope)

    def mfa_token(self, login: str) -> str:
        status, _, body = self.password(login)
        assert status == 403, body
        assert list(body) == ["error", "error_description", "mfa_token"], body
        assert body["error"] == "mfa_required"
        return body["mfa_token"]

    def otp(self, mfa_token: str, otp: str):
        return self.token(grant_type=MFA_OTP, mfa_token=mfa_token, otp=otp)

    def oob(self, mfa_token: str | None, oob_code: str, binding_code: str | None = None):
        fields = {"grant_type": MFA_OOB, "oob_code": oob_code}
        if mfa_token is not None:
            fields["mfa_token"] = mfa_token
        if binding_code is not None:
            fields["binding_code"] = binding_code
        return self.token(**fields)

    def okta_challenge(self, mfa_token: str, types: str = MFA_OOB, hint: str | None = "push"):
        fields = {"mfa_token": mfa_token, "challenge_types_supported": types}
        if hint is not None:
            fields["channel_hint"] = hint
        form, headers = self._auth(fields)
        return call(self.s, "POST", self.s.challenge_endpoint, form=form, headers=headers)

    def auth0_authenticators(self, mfa_token: str):
        return call(self.s, "GET", self.s.authenticators_endpoint,
                    headers={"Authorization": f"Bearer {mfa_token}"})

    def auth0_challenge(self, mfa_token: str, challenge_type: str | None = "oob",
                        authenticator_id: str | None = None):
        body = {"client_id": self.client_id, "mfa_token": mfa_token}   # JSON, as [A0-SMS]
        if self.secret is not None:
            body["client_secret"] = self.secret
        if challenge_type is not None:
            body["challenge_type"] = challenge_type
        if authenticator_id is not None:
            body["authenticator_id"] = authenticator_id
        return call(self.s, "POST", self.s.challenge_endpoint, json_body=body)


@pytest.fixture(scope="module")
def okta(tmp_path_factory):
    server = MFAAPIServer(tmp_path_factory.mktemp("okta-da"), dialect="okta", client_id=CLIENT,
                          client_secret=SECRET, interval=1)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth0(tmp_path_factory):
    server = MFAAPIServer(tmp_path_factory.mktemp("auth0"), dialect="auth0", client_id=CLIENT,
                          client_secret=SECRET, interval=1)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["okta", "auth0"])
def idp(request, okta, auth0) -> MFAAPIServer:
    return okta if request.param == "okta" else auth0


# ----------------------------------------------------------------------------- basics


def test_tls_trusts_only_the_run_ca(idp):
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(idp.discovery_url, context=ssl.create_default_context(),
                               timeout=10)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)


def test_discovery_documents(okta, auth0):
    status, _, doc = call(okta, "GET", okta.discovery_url)
    assert status == 200
    assert okta.issuer == okta.base_url + "/oauth2/default" == doc["issuer"]
    assert doc["token_endpoint"] == okta.issuer + "/v1/token" == okta.token_endpoint
    assert doc["jwks_uri"] == okta.issuer + "/v1/keys"
    assert okta.challenge_endpoint == okta.issuer + "/v1/challenge"   # [OK-SDK]: /token's sibling
    assert {MFA_OTP, MFA_OOB} <= set(doc["grant_types_supported"])

    status, _, doc = call(auth0, "GET", auth0.discovery_url)
    assert status == 200
    assert doc["issuer"] == auth0.base_url + "/" == auth0.issuer      # Auth0's trailing slash
    assert auth0.discovery_url == auth0.base_url + "/.well-known/openid-configuration"
    assert doc["token_endpoint"] == auth0.base_url + "/oauth/token"
    assert doc["mfa_challenge_endpoint"] == auth0.base_url + "/mfa/challenge"
    assert doc["jwks_uri"] == auth0.base_url + "/.well-known/jwks.json"
    assert "grant_types_supported" not in doc


def test_jwks_has_two_keys_and_the_second_signs(idp):
    login = new_login("nomfa")
    idp.add_user(login, "Secret123")
    resp = Flow(idp).password(login)
    header, _ = verify_id_token(idp, resp[2]["id_token"])
    _, _, jwks = call(idp, "GET", idp.jwks_uri)
    assert len(jwks["keys"]) == 2 and header["kid"] == jwks["keys"][1]["kid"]
    assert all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig"
               for k in jwks["keys"])


def test_user_without_mfa_gets_tokens_from_the_password_grant(idp):
    login = new_login("plain")
    sub = idp.add_user(login, "Secret123", name="Plain User", groups=["staff", "wheel"])
    claims = assert_tokens(idp, Flow(idp).password(login), login)
    assert claims["sub"] == sub and claims["name"] == "Plain User"
    assert claims["groups"] == ["staff", "wheel"]
    if idp.dialect == "okta":
        assert claims["amr"] == ["pwd"] and sub.startswith("00u")
    else:
        assert sub.startswith("auth0|") and "amr" not in claims


def test_wrong_password_and_unknown_user(idp):
    login = new_login("pw")
    idp.add_user(login, "Secret123", otp="123456")
    want = ((400, "The credentials provided were invalid.") if idp.dialect == "okta"
            else (403, "Wrong email or password."))
    for who, pw in ((login, "wrong"), (new_login("ghost"), "Secret123")):
        assert_error(Flow(idp).password(who, pw), want[0], "invalid_grant", want[1])


def test_non_ascii_password_secret_and_code(tmp_path):
    """A password, client secret and code with characters beyond ASCII are compared like any
    other (hmac.compare_digest alone refuses such str and the handler would fail): right ones
    pass, wrong ones are refused, and the connection always gets an answer."""
    server = MFAAPIServer(tmp_path, dialect="auth0", client_id=CLIENT, client_secret="s\u00e9cret \u2603")
    server.start()
    try:
        login = new_login("utf8")
        server.add_user(login, "Mot de passe \u00e9t\u00e9", otp="c\u00f6de")
        flow = Flow(server, secret="s\u00e9cret \u2603")
        assert_error(flow.password(login, "Mot de passe ete"), 403, "invalid_grant")
        status, _, body = flow.password(login, "Mot de passe \u00e9t\u00e9")
        assert status == 403 and body["error"] == "mfa_required", body
        mfa = body["mfa_token"]
        assert_error(flow.otp(mfa, "code"), 403, "invalid_grant")
        assert_tokens(server, flow.otp(mfa, "c\u00f6de"), login)
        assert_error(Flow(server, secret="s\u00e9cret").password(login, "x"), 401, "invalid_client")
    finally:
        server.stop()


def test_client_authentication(idp):
    login = new_login("client")
    idp.add_user(login, "Secret123")
    assert_error(Flow(idp, secret="wrong").password(login), 401, "invalid_client")
    assert_error(Flow(idp, secret=None).password(login), 401, "invalid_client")
    assert_error(Flow(idp, client_id="someone-else").password(login), 401, "invalid_client")
    # client_secret_post works as well as Basic
    resp = call(idp, "POST", idp.token_endpoint, form={
        "grant_type": "password", "username": login, "password": "Secret123",
        "scope": "openid profile email", "client_id": CLIENT, "client_secret": SECRET})
    assert_tokens(idp, resp, login)
    token_calls = [r for r in idp.requests() if r["endpoint"] == "token"]
    assert token_calls[-1]["client_auth"] == "post"
    assert token_calls[-1]["params"]["client_secret"] == "<redacted>"


def test_mfa_required_body(okta, auth0):
    login = new_login("mfareq")
    okta.add_user(login, "Secret123", otp="123456")
    status, headers, body = Flow(okta).password(login)
    assert status == 403 and headers["Content-Type"] == "application/json"
    assert body == {"error": "mfa_required", "error_description": OKTA_MFA_TEXT,
                    "mfa_token": body["mfa_token"]}
    auth0.add_user(login, "Secret123", otp="123456")
    status, _, body = Flow(auth0).password(login)
    assert status == 403
    assert body == {"error": "mfa_required",
                    "error_description": "Multifactor authentication required",
                    "mfa_token": body["mfa_token"]}


# ------------------------------------------------------------------------------- OTP


def test_okta_otp_right_and_wrong(okta):
    """[OK-OTP]: no /challenge call; mfa-otp with otp and mfa_token."""
    login = new_login("otp")
    okta.add_user(login, "Secret123", otp="246810")
    flow = Flow(okta)
    mfa = flow.mfa_token(login)
    assert_error(flow.otp(mfa, "000000"), 400, "invalid_grant")
    claims = assert_tokens(okta, flow.otp(mfa, "246810"), login)
    assert claims["amr"] == ["pwd", "mfa", "otp"]


def test_okta_challenge_for_otp(okta):
    login = new_login("otpch")
    okta.add_user(login, "Secret123", otp="246810")
    flow = Flow(okta)
    mfa = flow.mfa_token(login)
    status, _, body = flow.okta_challenge(mfa, types=MFA_OTP, hint=None)
    assert (status, body) == (200, {"challenge_type": MFA_OTP})
    assert_error(flow.okta_challenge(mfa, types=MFA_OOB, hint="push"), 400,
                 "invalid_challenge_types_supported")


def test_auth0_otp_right_and_wrong(auth0):
    """[A0-OTP]: authenticators list, optional challenge, mfa-otp."""
    login = new_login("otp")
    auth0.add_user(login, "Secret123", otp="135791")
    flow = Flow(auth0)
    mfa = flow.mfa_token(login)
    status, _, listed = flow.auth0_authenticators(mfa)
    ids = auth0.authenticator_ids(login)
    assert status == 200
    assert listed == [{"id": ids["recovery-code"], "authenticator_type": "recovery-code",
                       "active": True},
                      {"id": ids["totp"], "authenticator_type": "otp", "active": True}]
    assert ids["totp"].startswith("totp|dev_")
    status, _, body = flow.auth0_challenge(mfa, "otp", ids["totp"])
    assert (status, body) == (200, {"challenge_type": "otp"})
    assert_error(flow.otp(mfa, "000000"), 403, "invalid_grant", "Invalid otp_code.")
    claims = assert_tokens(auth0, flow.otp(mfa, "135791"), login)
    assert claims["amr"] == ["mfa"]


def test_totp_secret_codes_once_per_step(idp):
    login = new_login("totp")
    secret = "JBSWY3DPEHPK3PXP"
    idp.add_user(login, "Secret123", totp_secret=secret)
    assert totp_code(secret, 59) == "996554"          # RFC 6238 style: a known vector
    flow = Flow(idp)
    mfa = flow.mfa_token(login)
    code = idp.totp(login)
    assert_tokens(idp, flow.otp(mfa, code), login)
    mfa = flow.mfa_token(login)
    assert flow.otp(mfa, code)[2]["error"] == "invalid_grant"   # used already


def test_auth0_too_many_wrong_codes(tmp_path):
    with MFAAPIServer(tmp_path, dialect="auth0", client_id=CLIENT, client_secret=SECRET,
                      max_failed_attempts=3) as server:
        login = new_login("many")
        server.add_user(login, "Secret123", otp="111111")
        flow = Flow(server)
        mfa = flow.mfa_token(login)
        for _ in range(3):
            assert_error(flow.otp(mfa, "000000"), 403, "invalid_grant", "Invalid otp_code.")
        assert_error(flow.otp(mfa, "111111"), 429, "too_many_attempts")
        server.reset_attempts(login)
        assert_tokens(server, flow.otp(mfa, "111111"), login)


# ------------------------------------------------------------------------------ push


def okta_push(okta, login, **user):
    okta.add_user(login, "Secret123", **user)
    flow = Flow(okta)
    mfa = flow.mfa_token(login)
    status, _, body = flow.okta_challenge(mfa)
    assert status == 200, body
    return flow, mfa, body


def test_okta_push_approved_after_pending_polls(okta):
    login = new_login("push")
    flow, mfa, ch = okta_push(okta, login, push="approve", push_polls=2)
    # [OK-PUSH], member for member
    assert ch == {"challenge_type": MFA_OOB, "oob_code": ch["oob_code"], "expires_in": 300,
                  "interval": 1, "channel": "push", "binding_method": "none"}
    for _ in range(2):
        assert_error(flow.oob(mfa, ch["oob_code"]), 400, "authorization_pending", OKTA_PENDING)
    claims = assert_tokens(okta, flow.oob(mfa, ch["oob_code"]), login)
    assert claims["amr"] == ["pwd", "mfa", "swk"]


def test_okta_push_number_challenge(okta):
    login = new_login("number")
    flow, mfa, ch = okta_push(okta, login, push="approve", push_polls=1, number_challenge="42")
    assert ch["binding_method"] == "transfer" and ch["binding_code"] == "42"
    assert list(ch) == ["challenge_type", "oob_code", "expires_in", "interval", "channel",
                        "binding_method", "binding_code"]
    assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "authorization_pending"
    assert_tokens(okta, flow.oob(mfa, ch["oob_code"]), login)


def test_okta_push_without_channel_hint_like_okta_sdk(okta):
    login = new_login("nohint")
    okta.add_user(login, "Secret123", push="approve", push_polls=0, sms="555555")
    flow = Flow(okta)
    mfa = flow.mfa_token(login)
    status, _, ch = flow.okta_challenge(mfa, hint=None)
    assert status == 200 and ch["channel"] == "push"
    assert_tokens(okta, flow.oob(mfa, ch["oob_code"]), login)
    assert_error(flow.okta_challenge(mfa, hint="carrier-pigeon"), 400, "invalid_request",
                 "carrier-pigeon is not a valid channel hint")


@pytest.mark.parametrize("dialect_status", [("okta", 400), ("auth0", 403)])
def test_push_rejected_is_final_invalid_grant(okta, auth0, dialect_status):
    dialect, status = dialect_status
    login = new_login("reject")
    if dialect == "okta":
        flow, mfa, ch = okta_push(okta, login, push="reject", push_polls=1)
        server, description = okta, None
    else:
        server = auth0
        server.add_user(login, "Secret123", push="reject", push_polls=1)
        flow = Flow(auth0)
        mfa = flow.mfa_token(login)
        ch = flow.auth0_challenge(mfa, "oob", auth0.authenticator_ids(login)["push"])[2]
        description = "MFA Authorization rejected."
    assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "authorization_pending"
    for _ in range(2):   # final: the same answer again
        assert_error(flow.oob(mfa, ch["oob_code"]), status, "invalid_grant", description)


def test_push_never_answered_stays_pending_then_expires(idp):
    login = new_login("never")
    idp.add_user(login, "Secret123", push="never")
    flow = Flow(idp)
    mfa = flow.mfa_token(login)
    ch = (flow.okta_challenge(mfa) if idp.dialect == "okta"
          else flow.auth0_challenge(mfa, "oob"))[2]
    pending_status = 400
    for _ in range(4):
        assert_error(flow.oob(mfa, ch["oob_code"]), pending_status, "authorization_pending",
                     OKTA_PENDING if idp.dialect == "okta" else A0_PENDING)
    idp.expire_oob_codes(login)
    assert_error(flow.oob(mfa, ch["oob_code"]), 400 if idp.dialect == "okta" else 403,
                 "expired_token")


def test_slow_down_on_demand(idp):
    login = new_login("slow")
    idp.add_user(login, "Secret123", push="approve", push_polls=1)
    flow = Flow(idp)
    mfa = flow.mfa_token(login)
    ch = (flow.okta_challenge(mfa) if idp.dialect == "okta"
          else flow.auth0_challenge(mfa, "oob"))[2]
    idp.slow_down(login, 2)
    for _ in range(2):
        assert_error(flow.oob(mfa, ch["oob_code"]), 400 if idp.dialect == "okta" else 429,
                     "slow_down")
    assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "authorization_pending"
    assert_tokens(idp, flow.oob(mfa, ch["oob_code"]), login)


def test_slow_down_when_polling_faster_than_interval(tmp_path):
    with MFAAPIServer(tmp_path, dialect="okta", client_id=CLIENT, client_secret=SECRET,
                      interval=1, enforce_interval=True) as server:
        login = new_login("fast")
        flow, mfa, ch = okta_push(server, login, push="approve", push_polls=1)
        assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "authorization_pending"
        assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "slow_down"
        time.sleep(1.1)
        assert_tokens(server, flow.oob(mfa, ch["oob_code"]), login)


def test_set_push_changes_a_push_in_flight(okta):
    login = new_login("change")
    flow, mfa, ch = okta_push(okta, login, push="never")
    assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "authorization_pending"
    okta.set_push(login, "approve", push_polls=0)
    assert_tokens(okta, flow.oob(mfa, ch["oob_code"]), login)


def test_auth0_push_flow_with_authenticators(auth0):
    """[A0-PUSH]: list (recovery code, push, the Guardian OTP), challenge, poll."""
    login = new_login("guardian")
    auth0.add_user(login, "Secret123", push="approve", push_polls=1)
    flow = Flow(auth0)
    mfa = flow.mfa_token(login)
    ids = auth0.authenticator_ids(login)
    _, _, listed = flow.auth0_authenticators(mfa)
    assert [a["id"] for a in listed] == [ids["recovery-code"], ids["push"], ids["totp"]]
    push = listed[1]
    assert push == {"id": ids["push"], "authenticator_type": "oob", "active": True,
                    "oob_channel": "auth0", "name": push["name"]}
    status, _, ch = flow.auth0_challenge(mfa, "oob", ids["push"])
    assert status == 200 and list(ch) == ["challenge_type", "oob_code"]
    assert ch["challenge_type"] == "oob"
    assert_error(flow.oob(mfa, ch["oob_code"]), 400, "authorization_pending", A0_PENDING)
    assert_tokens(auth0, flow.oob(mfa, ch["oob_code"]), login)
    # The Guardian OTP works too ([A0-PUSH]: push users are also enrolled in OTP).
    assert_tokens(auth0, flow.otp(flow.mfa_token(login), auth0.totp(login)), login)


# ------------------------------------------------------------------------------- SMS


def test_okta_sms_with_binding_code(okta):
    """[OK-SMS]: binding_method prompt, the code comes back as binding_code."""
    login = new_login("sms")
    okta.add_user(login, "Secret123", sms="436575")
    flow = Flow(okta)
    mfa = flow.mfa_token(login)
    status, _, ch = flow.okta_challenge(mfa, hint="sms")
    assert status == 200
    assert ch == {"challenge_type": MFA_OOB, "oob_code": ch["oob_code"], "expires_in": 300,
                  "channel": "sms", "binding_method": "prompt"}
    assert okta.sms_sent(login) == ["436575"]
    assert_error(flow.oob(mfa, ch["oob_code"]), 400, "invalid_request")   # no binding_code
    assert_error(flow.oob(mfa, ch["oob_code"], "000000"), 400, "invalid_grant")
    # The documented request carries no mfa_token ([OK-SMS]).
    claims = assert_tokens(okta, flow.oob(None, ch["oob_code"], "436575"), login)
    assert claims["amr"] == ["pwd", "mfa", "sms"]


def test_auth0_sms_with_binding_code(auth0):
    login = new_login("sms")
    auth0.add_user(login, "Secret123", sms="987654")
    flow = Flow(auth0)
    mfa = flow.mfa_token(login)
    ids = auth0.authenticator_ids(login)
    _, _, listed = flow.auth0_authenticators(mfa)
    assert listed[1] == {"id": ids["sms"], "authenticator_type": "oob", "active": True,
                         "oob_channel": "sms", "name": "XXXXXXXX8730"}
    status, _, ch = flow.auth0_challenge(mfa, "oob", ids["sms"])
    assert status == 200
    assert ch == {"challenge_type": "oob", "oob_code": ch["oob_code"], "binding_method": "prompt"}
    assert_error(flow.oob(mfa, ch["oob_code"]), 400, "invalid_request", "binding_code is required")
    assert_error(flow.oob(mfa, ch["oob_code"], "000000"), 403, "invalid_grant",
                 "Invalid binding_code.")
    assert_tokens(auth0, flow.oob(mfa, ch["oob_code"], "987654"), login)


def test_auth0_challenge_errors(auth0):
    login = new_login("chal")
    auth0.add_user(login, "Secret123", otp="123456")
    flow = Flow(auth0)
    mfa = flow.mfa_token(login)
    assert_error(flow.auth0_challenge(mfa, "oob"), 400, "unsupported_challenge_type")
    status, _, body = flow.auth0_challenge(mfa, challenge_type=None)
    assert (status, body) == (200, {"challenge_type": "otp"})
    assert_error(flow.auth0_challenge(mfa, "otp", auth0.authenticator_ids(login)["recovery-code"]),
                 400, "unsupported_challenge_type")


# ------------------------------------------------------------------------- mfa_token


def test_expired_mfa_token(okta, auth0):
    for server in (okta, auth0):
        login = new_login("exp")
        server.add_user(login, "Secret123", otp="123456", push="approve")
        flow = Flow(server)
        mfa = flow.mfa_token(login)
        server.expire_mfa_tokens(login)
        if server.dialect == "okta":
            assert_error(flow.otp(mfa, "123456"), 400, "invalid_grant")
            assert_error(flow.okta_challenge(mfa), 400, "invalid_grant")
        else:
            for resp in (flow.otp(mfa, "123456"), flow.auth0_challenge(mfa, "oob"),
                         flow.auth0_authenticators(mfa)):
                assert_error(resp, 403, "expired_token", "mfa_token is expired")
        # a fresh sign-in works
        assert_tokens(server, flow.otp(flow.mfa_token(login), "123456"), login)


def test_unknown_mfa_token_and_other_client(okta, auth0):
    okta.add_client("another-app", None)
    auth0.add_client("another-app", None)
    for server in (okta, auth0):
        login = new_login("tok")
        server.add_user(login, "Secret123", otp="123456")
        flow = Flow(server)
        want = (400, None) if server.dialect == "okta" else (403, "Malformed mfa_token")
        assert_error(flow.otp("not-a-token", "123456"), want[0], "invalid_grant", want[1])
        mfa = flow.mfa_token(login)
        other = Flow(server, client_id="another-app", secret=None)
        assert_error(other.otp(mfa, "123456"), 400, "invalid_request")
        # tokens go to the client that asked: aud = its client_id
        assert_tokens(server, other.otp(other.mfa_token(login), "123456"), login,
                      client_id="another-app")


def test_org_authorization_server_paths(tmp_path):
    with MFAAPIServer(tmp_path, dialect="okta", client_id=CLIENT, authorization_server="") as s:
        assert s.issuer == s.base_url and s.token_endpoint == s.base_url + "/oauth2/v1/token"
        assert s.challenge_endpoint == s.base_url + "/oauth2/v1/challenge"
        assert call(s, "GET", s.base_url + "/.well-known/openid-configuration")[2]["issuer"] \
            == s.base_url
        login = new_login("org")
        s.add_user(login, "Secret123", otp="123456")
        flow = Flow(s, secret=None)
        assert_tokens(s, flow.otp(flow.mfa_token(login), "123456"), login)


# ------------------------------------------------------------------- test hooks, log


def test_request_log_shows_the_flow_without_secrets(okta):
    login = new_login("log")
    flow, mfa, ch = okta_push(okta, login, push="approve", push_polls=1)
    mark = okta.mark() - 2
    flow.oob(mfa, ch["oob_code"])
    flow.oob(mfa, ch["oob_code"])
    log = okta.requests_since(mark)
    assert [(r["endpoint"], r["grant_type"], r["status"], r["error"]) for r in log] == [
        ("token", "password", 403, "mfa_required"),
        ("challenge", None, 200, None),
        ("token", MFA_OOB, 400, "authorization_pending"),
        ("token", MFA_OOB, 200, None)]
    assert all(r["user"] == login and r["client_auth"] == "basic" for r in log)
    assert log[0]["params"]["password"] == "<redacted>"
    assert log[1]["params"]["challenge_types_supported"] == MFA_OOB
    assert log[1]["params"]["channel_hint"] == "push"
    token_ref = log[1]["params"]["mfa_token"]
    assert token_ref.startswith("mfa_token#")
    assert {r["params"]["mfa_token"] for r in log[1:]} == {token_ref}
    assert log[2]["params"]["oob_code"] == log[3]["params"]["oob_code"]
    text = okta.request_log_file.read_text()
    for secret in ("Secret123", SECRET, mfa, ch["oob_code"]):
        assert secret not in text and secret not in json.dumps(log)


def test_issued_lists_every_secret_handed_out(idp):
    """issued(): the mfa_tokens, oob_codes, access and ID tokens the server gave a user, in
    order, for tests that search a client's output for them."""
    login, other = new_login("issued"), new_login("issued-other")
    idp.add_user(login, "Secret123", push="approve", push_polls=0)
    idp.add_user(other, "Secret123", otp="123456")
    flow = Flow(idp)
    mfa = flow.mfa_token(login)
    if idp.dialect == "okta":
        _, _, ch = flow.okta_challenge(mfa)
    else:
        _, _, ch = flow.auth0_challenge(mfa, "oob", idp.authenticator_ids(login)["push"])
    status, _, tokens = flow.oob(mfa, ch["oob_code"])
    assert status == 200, tokens
    other_mfa = flow.mfa_token(other)
    assert flow.otp(other_mfa, "123456")[0] == 200
    assert idp.issued(login) == {"mfa_token": [mfa], "oob_code": [ch["oob_code"]],
                                 "access_token": [tokens["access_token"]],
                                 "id_token": [tokens["id_token"]]}
    assert idp.issued(other)["mfa_token"] == [other_mfa]
    everyone = idp.issued()
    assert {mfa, other_mfa} <= set(everyone["mfa_token"])
    assert tokens["id_token"] in everyone["id_token"] and len(everyone["access_token"]) >= 2
    # Still never in the request log.
    log = json.dumps(idp.requests()) + idp.request_log_file.read_text()
    assert not any(value in log for values in idp.issued(login).values() for value in values)

def test_fail_next(idp):
    login = new_login("fail")
    idp.add_user(login, "Secret123", otp="123456")
    flow = Flow(idp)
    mfa = flow.mfa_token(login)
    idp.fail_next(503)
    status, headers, body = flow.otp(mfa, "123456")
    assert status == 503 and headers["Content-Type"] == "text/html" and body is None
    assert_tokens(idp, flow.otp(mfa, "123456"), login)


def test_stop_mid_mfa_then_start_again(tmp_path):
    server = MFAAPIServer(tmp_path, dialect="okta", client_id=CLIENT, client_secret=SECRET)
    server.start()
    try:
        login = new_login("gone")
        flow, mfa, ch = okta_push(server, login, push="approve", push_polls=1)
        port = server.port
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=server.ssl_context(),
                                           timeout=5)
        conn.request("GET", "/oauth2/default/v1/keys")
        assert conn.getresponse().read()
        server.stop()
        with pytest.raises(urllib.error.URLError):
            flow.oob(mfa, ch["oob_code"])
        with pytest.raises((OSError, http.client.HTTPException)):   # the kept-alive one too
            conn.request("GET", "/oauth2/default/v1/keys")
            conn.getresponse().read()
        server.start()
        assert server.port == port
        assert flow.oob(mfa, ch["oob_code"])[2]["error"] == "authorization_pending"
        assert_tokens(server, flow.oob(mfa, ch["oob_code"]), login)
    finally:
        server.stop()


def test_okta_wants_a_form_and_openid(okta):
    login = new_login("form")
    okta.add_user(login, "Secret123")
    status, _, body = call(okta, "POST", okta.token_endpoint, json_body={
        "grant_type": "password", "username": login, "password": "Secret123",
        "client_id": CLIENT, "client_secret": SECRET, "scope": "openid"})
    assert status == 400 and body["error"] == "invalid_request"
    assert_error(Flow(okta).password(login, scope="profile"), 400, "invalid_scope")
    status, _, body = call(okta, "GET", okta.token_endpoint)
    assert status == 405 and body["errorCode"] == "E0000022"


def test_auth0_accepts_json_at_the_token_endpoint(auth0):
    login = new_login("json")
    auth0.add_user(login, "Secret123")
    resp = call(auth0, "POST", auth0.token_endpoint, json_body={
        "grant_type": "password", "username": login, "password": "Secret123",
        "client_id": CLIENT, "client_secret": SECRET, "scope": "openid profile email"})
    assert_tokens(auth0, resp, login)


def test_serve_command(tmp_path):
    workdir = tmp_path / "served"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "mfa_api.py"), "serve", "--dialect", "okta",
         "--workdir", str(workdir), "--client-id", f"{CLIENT}:{SECRET}",
         "--user", "carol@example.com:Secret123:push=approve,push_polls=0,number_challenge=17",
         "--user", "dave@example.com:Secret123"],
        stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["issuer"] == info["base_url"] + "/oauth2/default"
        assert set(info["users"]) == {"carol@example.com", "dave@example.com"}
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        req = urllib.request.Request(info["token_endpoint"], data=urllib.parse.urlencode({
            "grant_type": "password", "username": "carol@example.com", "password": "Secret123",
            "scope": "openid"}).encode(), headers=basic(CLIENT, SECRET))
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        assert e.value.code == 403 and json.loads(e.value.read())["error"] == "mfa_required"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
