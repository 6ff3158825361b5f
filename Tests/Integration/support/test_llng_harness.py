"""Proves the LemonLDAP::NG harness (llng.py) and the idp-server script.

Run: python3 -m pytest -q Tests/Integration/support/test_llng_harness.py
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import pathlib
import ssl
import subprocess
import sys
import urllib.parse

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from llng import LemonLDAP  # noqa: E402

SCOPE = "openid profile email"


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    server = LemonLDAP(tmp_path_factory.mktemp("llng"))
    server.start()
    server.add_user("alice", "alice-pw", name="Alice Example", email="alice@example.com",
                    groups=["staff", "linux-admins"])
    server.add_user("dave", "dave-pw", name="Dave Disabled", email="dave@example.com")
    server.set_disabled("dave")
    yield server
    server.stop()


def request(idp, method, url, body=None, headers=None, context=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port,
                                       context=context or idp.ssl_context(), timeout=10)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            body = urllib.parse.urlencode(body)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, u.path, body=body, headers=hdrs)
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


def grant(idp, username, password, scope=SCOPE, auth="basic", client="confidential"):
    client_id, secret = idp.clients[client]
    body = {"grant_type": "password", "username": username, "password": password,
            "scope": scope}
    headers = {}
    if auth == "basic":
        headers = basic(client_id, secret)
    elif auth == "post":
        body.update(client_id=client_id, client_secret=secret)
    elif auth == "none":
        body["client_id"] = client_id
    return request(idp, "POST", idp.token_endpoint, body, headers)


def b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_id_token(idp, token: str, client_id: str) -> dict:
    head_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64url(head_b64))
    assert header["alg"] == "RS256"
    status, jwks = request(idp, "GET", idp.jwks_uri)
    assert status == 200
    (jwk,) = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
    assert jwk["kty"] == "RSA" and jwk["use"] == "sig" and "alg" not in jwk
    pub = rsa.RSAPublicNumbers(int.from_bytes(b64url(jwk["e"]), "big"),
                               int.from_bytes(b64url(jwk["n"]), "big")).public_key()
    pub.verify(b64url(sig_b64), f"{head_b64}.{payload_b64}".encode(),
               padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(b64url(payload_b64))
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == [client_id]
    assert claims["azp"] == client_id
    return claims


def test_discovery(idp):
    status, disco = request(idp, "GET", idp.issuer + "/.well-known/openid-configuration")
    assert status == 200
    assert "password" in disco["grant_types_supported"]
    assert disco["issuer"] == idp.issuer == f"https://127.0.0.1:{idp.port}"
    assert disco["token_endpoint"] == idp.token_endpoint
    assert disco["userinfo_endpoint"] == idp.userinfo_endpoint
    assert disco["jwks_uri"] == idp.jwks_uri


def test_ca_is_not_trusted_by_default(idp):
    with pytest.raises(ssl.SSLCertVerificationError):
        request(idp, "GET", idp.jwks_uri, context=ssl.create_default_context())


def test_password_grant_basic_gives_id_token_with_claims(idp):
    mark = idp.mark()
    status, tok = grant(idp, "alice", "alice-pw")
    assert status == 200, tok
    assert tok["token_type"] == "Bearer" and tok["access_token"]
    assert idp.requests_since(mark) == ["POST /oauth2/token 200"]
    claims = verify_id_token(idp, tok["id_token"], "linux-login")
    assert claims["sub"] == "alice"
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Example"
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["staff", "linux-admins"]


def test_client_secret_post(idp):
    status, tok = grant(idp, "alice", "alice-pw", auth="post")
    assert status == 200, tok
    verify_id_token(idp, tok["id_token"], "linux-login")


def test_public_client_with_client_id_only(idp):
    assert idp.clients["public"] == ("linux-public", None)
    status, tok = grant(idp, "alice", "alice-pw", auth="none", client="public")
    assert status == 200, tok
    claims = verify_id_token(idp, tok["id_token"], "linux-public")
    assert claims["sub"] == "alice"


def test_single_group_is_still_an_array_and_no_groups_means_no_claim(idp):
    idp.add_user("carol", "carol-pw", name="Carol", email="carol@example.com",
                 groups=["solo"])
    idp.add_user("bob", "bob-pw", name="Bob")
    _, tok = grant(idp, "carol", "carol-pw")
    assert verify_id_token(idp, tok["id_token"], "linux-login")["groups"] == ["solo"]
    _, tok = grant(idp, "bob", "bob-pw")
    claims = verify_id_token(idp, tok["id_token"], "linux-login")
    assert "groups" not in claims and "email" not in claims and claims["name"] == "Bob"


@pytest.mark.parametrize("username,password", [
    ("alice", "wrong-pw"),    # wrong password
    ("nobody", "alice-pw"),   # unknown user
    ("dave", "dave-pw"),      # disabled user, right password
    ("Alice", "alice-pw"),    # logins are case-sensitive
])
def test_bad_user_credentials_are_invalid_grant(idp, username, password):
    mark = idp.mark()
    status, body = grant(idp, username, password)
    assert (status, body) == (400, {"error": "invalid_grant"})
    assert idp.requests_since(mark) == ["POST /oauth2/token 400"]


def test_set_password_and_disable_are_live(idp):
    idp.add_user("erin", "old-pw", name="Erin")
    assert grant(idp, "erin", "old-pw")[0] == 200
    idp.set_password("erin", "new-pw")
    assert grant(idp, "erin", "old-pw") == (400, {"error": "invalid_grant"})
    assert grant(idp, "erin", "new-pw")[0] == 200
    idp.set_disabled("erin")
    assert grant(idp, "erin", "new-pw") == (400, {"error": "invalid_grant"})
    idp.set_disabled("erin", False)
    assert grant(idp, "erin", "new-pw")[0] == 200
    with pytest.raises(KeyError):
        idp.set_password("no-such-user", "x")


def test_wrong_client_secret_is_invalid_client(idp):
    # LLNG answers 401 (with "WWW-Authenticate: Basic") only when the client
    # used HTTP Basic; a wrong client_secret_post secret gets 400.
    body = {"grant_type": "password", "username": "alice", "password": "alice-pw",
            "scope": SCOPE}
    mark = idp.mark()
    status, err = request(idp, "POST", idp.token_endpoint, body, basic("linux-login", "nope"))
    assert (status, err) == (401, {"error": "invalid_client"})
    status, err = request(idp, "POST", idp.token_endpoint,
                          {**body, "client_id": "linux-login", "client_secret": "nope"})
    assert (status, err) == (400, {"error": "invalid_client"})
    assert idp.requests_since(mark) == ["POST /oauth2/token 401", "POST /oauth2/token 400"]


def test_scope_without_openid_gives_access_token_for_userinfo(idp):
    mark = idp.mark()
    status, tok = grant(idp, "alice", "alice-pw", scope="profile")
    assert status == 200, tok
    assert "id_token" not in tok and tok["access_token"]
    status, info = request(idp, "GET", idp.userinfo_endpoint,
                           headers={"Authorization": "Bearer " + tok["access_token"]})
    assert status == 200
    assert info == {"sub": "alice", "preferred_username": "alice", "name": "Alice Example",
                    "email": "alice@example.com", "groups": ["staff", "linux-admins"]}
    assert idp.requests_since(mark) == ["POST /oauth2/token 200", "GET /oauth2/userinfo 200"]


def test_request_log_counts_each_grant_once(idp):
    mark = idp.mark()
    for _ in range(3):
        assert grant(idp, "alice", "alice-pw")[0] == 200
    grant(idp, "alice", "bad")
    assert idp.requests_since(mark) == ["POST /oauth2/token 200"] * 3 + ["POST /oauth2/token 400"]
    assert idp.request_log()[-4:] == idp.requests_since(mark)


def test_stop_refuses_connections_and_restart_keeps_users(tmp_path):
    idp = LemonLDAP(tmp_path / "idp")
    with idp:
        idp.add_user("frank", "frank-pw")
        assert grant(idp, "frank", "frank-pw")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        request(idp, "GET", idp.jwks_uri)
    idp.stop()  # idempotent
    idp.start()
    try:
        assert idp.request_log() == []  # the readiness probes are not counted
        assert grant(idp, "frank", "frank-pw")[0] == 200
    finally:
        idp.stop()
    with pytest.raises(ConnectionRefusedError):
        request(idp, "GET", idp.jwks_uri)


def test_idp_server_script(tmp_path):
    script = HERE / "idp-server"
    workdir = tmp_path / "demo"
    run = lambda *a: subprocess.run([str(script), *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=60)
    res = run("start", "--workdir", str(workdir),
              "--user", "alice:pw:Alice Example:alice@example.com:g1,g2")
    try:
        assert res.returncode == 0, res.stderr
        info = dict(line.split("=", 1) for line in res.stdout.splitlines())
        assert (workdir / "issuer").read_text().strip() == info["issuer"]
        assert info["ca_file"] == str(workdir / "ca.pem")
        pid = int((workdir / "pid").read_text())
        assert os.path.exists(f"/proc/{pid}")
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        u = urllib.parse.urlsplit(info["token_endpoint"])
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
        conn.request("POST", u.path, urllib.parse.urlencode({
            "grant_type": "password", "username": "alice", "password": "pw",
            "scope": "openid"}), {**basic(info["client_id"], info["client_secret"]),
                                  "Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        tok = json.loads(resp.read())
        assert resp.status == 200, tok
        claims = json.loads(b64url(tok["id_token"].split(".")[1]))
        assert claims["groups"] == ["g1", "g2"] and claims["name"] == "Alice Example"
        # A second start is a no-op that reports the same server.
        again = run("start", "--workdir", str(workdir))
        assert again.returncode == 0 and f"pid={pid}" in again.stdout
    finally:
        res = run("stop", "--workdir", str(workdir))
    assert res.returncode == 0, res.stderr
    assert not (workdir / "pid").exists()
    with pytest.raises(ConnectionRefusedError):
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=5)
        conn.request("GET", "/")
