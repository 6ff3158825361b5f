"""Proves the Glewlwyd harness (glewlwyd.py): a real OpenID provider on 127.0.0.1 over HTTPS
that checks a password with the password grant and completes a sign-in with the OAuth 2.0
Device Authorization Grant (RFC 8628), approved as the user with the calls Glewlwyd's login
page makes. Plain HTTPS requests; no CloudLogin code.

Run (as `make integration-test` does, inside the sandbox):
    Tests/Integration/accounts/run-in-sandbox python3 -m pytest -q -p no:cacheprovider \
        Tests/Integration/support/test_glewlwyd_harness.py
"""

from __future__ import annotations

import base64
import http.client
import json
import pathlib
import re
import ssl
import sys
import time
import urllib.parse

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from glewlwyd import (DEVICE_CODE_GRANT, Glewlwyd, GlewlwydError, HttpSession,  # noqa: E402
                      _free_port)

SCOPE = "openid"
# Short, so the polling tests take seconds; the default (5 s) is checked on its own server.
INTERVAL = 2


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    server = Glewlwyd(tmp_path_factory.mktemp("glewlwyd"), device_interval=INTERVAL)
    server.start()
    server.add_user("alice", "alice-pw", name="Alice Example", email="alice@example.com")
    server.add_user("dave", "dave-pw", name="Dave Disabled")
    server.set_disabled("dave")
    yield server
    server.stop()


def request(idp, method, url, form=None, headers=None, context=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port,
                                       context=context or idp.ssl_context(), timeout=10)
    try:
        hdrs = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data
    return resp.status, parsed


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def client_auth(idp, client, form, auth="basic"):
    """The form and headers for a client: HTTP Basic, client_secret_post, or (public) client_id."""
    client_id, secret = idp.clients[client]
    if secret is None or auth == "none":
        return {**form, "client_id": client_id}, {}
    if auth == "post":
        return {**form, "client_id": client_id, "client_secret": secret}, {}
    return form, basic(client_id, secret)


def password_grant(idp, username, password, scope=SCOPE, client="confidential", auth="basic"):
    form, headers = client_auth(idp, client, {"grant_type": "password", "username": username,
                                              "password": password, "scope": scope}, auth)
    return request(idp, "POST", idp.token_endpoint, form, headers)


def device_authorization(idp, scope=SCOPE, client="confidential"):
    form, headers = client_auth(idp, client, {"scope": scope})
    return request(idp, "POST", idp.device_authorization_endpoint, form, headers)


def poll(idp, device_code, client="confidential"):
    form, headers = client_auth(idp, client, {"grant_type": DEVICE_CODE_GRANT,
                                              "device_code": device_code})
    return request(idp, "POST", idp.token_endpoint, form, headers)


def b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_id_token(idp, token: str, client_id: str) -> dict:
    head_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64url(head_b64))
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    status, jwks = request(idp, "GET", idp.jwks_uri)
    assert status == 200
    (jwk,) = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
    assert jwk["kty"] == "RSA" and jwk["use"] == "sig" and jwk["alg"] == "RS256"
    assert "d" not in jwk  # only the public half is published
    pub = rsa.RSAPublicNumbers(int.from_bytes(b64url(jwk["e"]), "big"),
                               int.from_bytes(b64url(jwk["n"]), "big")).public_key()
    pub.verify(b64url(sig_b64), f"{head_b64}.{payload_b64}".encode(),
               padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(b64url(payload_b64))
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == client_id  # a string, not an array
    assert claims["azp"] == client_id
    assert claims["iat"] <= time.time() + 5 < claims["exp"]
    return claims


def wait_interval(seconds: float = INTERVAL) -> None:
    # Glewlwyd compares whole seconds since the last poll; waiting the interval plus a little
    # is what a client honouring `interval` does.
    time.sleep(seconds + 0.2)


# ---------------------------------------------------------------------------------- discovery

def test_discovery(idp):
    status, disco = request(idp, "GET", idp.discovery_url)
    assert status == 200
    assert idp.discovery_url == idp.issuer + "/.well-known/openid-configuration"
    assert disco["issuer"] == idp.issuer == f"https://127.0.0.1:{idp.port}/api/oidc"
    assert disco["token_endpoint"] == idp.token_endpoint == idp.issuer + "/token"
    assert disco["jwks_uri"] == idp.jwks_uri
    assert disco["userinfo_endpoint"] == idp.userinfo_endpoint
    assert disco["device_authorization_endpoint"] == idp.issuer + "/device_authorization"
    assert DEVICE_CODE_GRANT in disco["grant_types_supported"]
    # Measured: the password grant works (below) but discovery does not list it.
    assert "password" not in disco["grant_types_supported"]
    assert "RS256" in disco["id_token_signing_alg_values_supported"]


def test_ca_is_not_trusted_by_default(idp):
    with pytest.raises(ssl.SSLCertVerificationError):
        request(idp, "GET", idp.jwks_uri, context=ssl.create_default_context())


def test_listens_on_loopback_only(idp):
    conns = pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]
    port_hex = f"{idp.port:04X}"
    listening = [c.split()[1] for c in conns if c.split()[3] == "0A"
                 and c.split()[1].endswith(":" + port_hex)]
    assert listening == [f"0100007F:{port_hex}"]  # 127.0.0.1, nothing on 0.0.0.0


# ------------------------------------------------------------------------------ password grant

def test_password_grant_gives_rs256_id_token(idp):
    status, tok = password_grant(idp, "alice", "alice-pw")
    assert status == 200, tok
    assert tok["token_type"] == "bearer" and tok["access_token"] and tok["refresh_token"]
    assert tok["scope"] == "openid" and tok["expires_in"] == 3600
    claims = verify_id_token(idp, tok["id_token"], "linux-login")
    assert re.fullmatch(r"[A-Za-z0-9]{32}", claims["sub"])  # not the login
    assert claims["name"] == "Alice Example"
    assert claims["email"] == "alice@example.com"
    assert claims["amr"] == ["password"]
    # The same subject every time.
    assert verify_id_token(idp, password_grant(idp, "alice", "alice-pw")[1]["id_token"],
                           "linux-login")["sub"] == claims["sub"]


def test_client_secret_post(idp):
    status, tok = password_grant(idp, "alice", "alice-pw", auth="post")
    assert status == 200, tok
    verify_id_token(idp, tok["id_token"], "linux-login")


@pytest.mark.parametrize("username,password", [
    ("alice", "wrong-pw"),    # wrong password
    ("nobody", "alice-pw"),   # unknown user
    ("dave", "dave-pw"),      # disabled user, right password
])
def test_refused_password_is_403_without_a_body(idp, username, password):
    assert password_grant(idp, username, password) == (403, None)


def test_client_errors_have_no_body_either(idp):
    client_id, _ = idp.clients["confidential"]
    form = {"grant_type": "password", "username": "alice", "password": "alice-pw",
            "scope": SCOPE}
    assert request(idp, "POST", idp.token_endpoint, form, basic(client_id, "nope")) == (400, None)
    assert request(idp, "POST", idp.token_endpoint,
                   {**form, "client_id": client_id, "client_secret": "nope"}) == (400, None)
    assert password_grant(idp, "alice", "alice-pw", scope="") == (400, None)
    # The public client may use the device grant (below), not the password grant.
    assert password_grant(idp, "alice", "alice-pw", client="public") == (403, None)


def test_set_password_and_disable_are_live(idp):
    idp.add_user("erin", "old-pw", name="Erin")
    assert password_grant(idp, "erin", "old-pw")[0] == 200
    idp.set_password("erin", "new-pw")
    assert password_grant(idp, "erin", "old-pw") == (403, None)
    assert password_grant(idp, "erin", "new-pw")[0] == 200
    idp.set_disabled("erin")
    assert password_grant(idp, "erin", "new-pw") == (403, None)
    idp.set_disabled("erin", False)
    assert password_grant(idp, "erin", "new-pw")[0] == 200
    with pytest.raises(KeyError):
        idp.set_password("no-such-user", "x")


# -------------------------------------------------------------------------------- device grant

def test_device_authorization_answer(idp):
    status, dev = device_authorization(idp)
    assert status == 200, dev
    assert set(dev) == {"device_code", "user_code", "verification_uri",
                        "verification_uri_complete", "expires_in", "interval"}
    assert re.fullmatch(r"[A-Za-z0-9]{32}", dev["device_code"])
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", dev["user_code"])
    assert dev["verification_uri"] == idp.verification_uri == idp.issuer + "/device"
    assert dev["verification_uri_complete"] == f"{idp.verification_uri}?code={dev['user_code']}"
    assert (dev["expires_in"], dev["interval"]) == (600, INTERVAL)


def test_password_then_device_grant_names_the_same_subject(idp):
    """The building block of MFA for every provider: the password grant checks the password,
    the device grant completes the sign-in after the user approves it."""
    status, tok = password_grant(idp, "alice", "alice-pw")
    assert status == 200, tok
    sub = verify_id_token(idp, tok["id_token"], "linux-login")["sub"]

    status, dev = device_authorization(idp)
    assert status == 200, dev
    assert poll(idp, dev["device_code"]) == (400, {"error": "authorization_pending"})
    # Polled again at once: faster than `interval`.
    assert poll(idp, dev["device_code"]) == (400, {"error": "slow_down"})
    wait_interval()
    assert poll(idp, dev["device_code"]) == (400, {"error": "authorization_pending"})

    assert idp.approve_device(dev["user_code"], "alice", "alice-pw") == "deviceComplete"
    wait_interval()
    status, tok = poll(idp, dev["device_code"])
    assert status == 200, tok
    assert tok["token_type"] == "bearer" and tok["access_token"] and tok["scope"] == "openid"
    claims = verify_id_token(idp, tok["id_token"], "linux-login")
    assert claims["sub"] == sub
    assert claims["name"] == "Alice Example"

    # A device code gives tokens once; then it is refused like an unknown one.
    wait_interval()
    assert poll(idp, dev["device_code"]) == (400, {"error": "access_denied"})
    # Its user code cannot be approved again.
    assert idp.approve_device(dev["user_code"], "alice", "alice-pw") == "deviceCodeError"


def test_public_client_device_grant(idp):
    status, dev = device_authorization(idp, client="public")
    assert status == 200, dev
    assert poll(idp, dev["device_code"], client="public") == (
        400, {"error": "authorization_pending"})
    assert idp.approve_device(dev["user_code"], "alice", "alice-pw") == "deviceComplete"
    wait_interval()
    status, tok = poll(idp, dev["device_code"], client="public")
    assert status == 200, tok
    verify_id_token(idp, tok["id_token"], "linux-public")


def test_expired_device_code(idp):
    status, dev = device_authorization(idp)
    assert status == 200
    assert idp.expire_device_codes() >= 1
    assert poll(idp, dev["device_code"]) == (400, {"error": "expired_token"})
    assert idp.approve_device(dev["user_code"], "alice", "alice-pw") == "deviceCodeError"


def test_disabled_or_unknown_device_code_is_access_denied(idp):
    status, dev = device_authorization(idp)
    assert status == 200
    assert idp.disable_device_codes() >= 1
    assert poll(idp, dev["device_code"]) == (400, {"error": "access_denied"})
    assert poll(idp, "x" * 32) == (400, {"error": "access_denied"})


def test_approval_refused(idp):
    status, dev = device_authorization(idp)
    assert status == 200
    with pytest.raises(GlewlwydError, match="answered 401"):
        idp.approve_device(dev["user_code"], "alice", "wrong-pw")
    with pytest.raises(GlewlwydError, match="answered 401"):
        idp.approve_device(dev["user_code"], "dave", "dave-pw")  # disabled
    assert idp.approve_device("ABCD-EFGH", "alice", "alice-pw") == "deviceCodeError"
    assert idp.approve_device("ABCD", "alice", "alice-pw") == "deviceCodeError"
    # Still pending: nothing above approved it.
    wait_interval()
    assert poll(idp, dev["device_code"]) == (400, {"error": "authorization_pending"})


def test_device_authorization_errors(idp):
    # A client registered without the device grant, a wrong secret: 403 unauthorized_client
    # (not RFC 6749's 401 invalid_client); no scope: 400 invalid_scope.
    assert device_authorization(idp, client="no-device-grant") == (
        403, {"error": "unauthorized_client"})
    client_id, _ = idp.clients["confidential"]
    assert request(idp, "POST", idp.device_authorization_endpoint, {"scope": SCOPE},
                   basic(client_id, "nope")) == (403, {"error": "unauthorized_client"})
    assert request(idp, "POST", idp.device_authorization_endpoint, {},
                   basic(*idp.clients["confidential"])) == (400, {"error": "invalid_scope"})
    # The client without the device grant still has the password grant.
    assert password_grant(idp, "alice", "alice-pw", client="no-device-grant")[0] == 200


# ---------------------------------------------------------------------------------- lifecycle

def test_defaults_and_restart_keep_users_and_subject(tmp_path):
    idp = Glewlwyd(tmp_path / "idp")  # default interval and expiry
    t0 = time.monotonic()
    idp.start()
    first_start = time.monotonic() - t0
    try:
        assert first_start < 10, first_start
        assert (tmp_path / "idp" / "glewlwyd.sqlite").exists()
        idp.add_user("frank", "frank-pw")
        status, dev = device_authorization(idp)
        assert status == 200 and (dev["expires_in"], dev["interval"]) == (600, 5)
        status, tok = password_grant(idp, "frank", "frank-pw")
        assert status == 200
        sub = verify_id_token(idp, tok["id_token"], "linux-login")["sub"]
    finally:
        idp.stop()
    with pytest.raises(ConnectionRefusedError):
        request(idp, "GET", idp.jwks_uri)
    idp.stop()  # idempotent

    again = Glewlwyd(tmp_path / "idp")  # state.json: same port, secret, key and admin password
    with again:
        assert again.port == idp.port
        status, tok = password_grant(again, "frank", "frank-pw")
        assert status == 200, tok
        assert verify_id_token(again, tok["id_token"], "linux-login")["sub"] == sub
    with pytest.raises(ConnectionRefusedError):
        request(idp, "GET", idp.jwks_uri)

    # Another port and interval: the plugin instance is re-initialised with the new issuer.
    moved = Glewlwyd(tmp_path / "idp", port=_free_port(), device_interval=3)
    with moved:
        assert moved.port != idp.port
        assert moved.discovery["issuer"] == f"https://127.0.0.1:{moved.port}/api/oidc"
        status, dev = device_authorization(moved)
        assert status == 200 and dev["interval"] == 3
        assert dev["verification_uri"].startswith(moved.issuer)
        status, tok = password_grant(moved, "frank", "frank-pw")
        assert status == 200, tok
        assert verify_id_token(moved, tok["id_token"], "linux-login")["sub"] == sub


def test_schema_admin_password_is_replaced(idp):
    status, _, _ = HttpSession(idp).request(
        "POST", "/api/auth/", json_body={"username": "admin", "password": "password"})
    assert status == 401
