"""Fault injection: a hostile IdP over TLS (support/hostile_idp.py) against the release
pam_cloudlogin.so in real libpam (pamdriver).

Every case checks what a user and an admin see: the PAM code the README's table documents, the
message, that the module answered within `timeout` + 1 s, that the driver did not crash, and that
/etc/passwd, shadow, group and gshadow are byte for byte unchanged. The offline rule decides the
code of an unavailable or misconfigured IdP: PAM_AUTHINFO_UNAVAIL (pam_unix may check the synced
password) only for a managed user within max_days; PAM_AUTH_ERR for anyone else. So each fault is
run for `hank` (signed in online once) and for `nora` (never signed in).

A refusal is not a fault: an answer that says no to this attempt (an OAuth error code CloudLogin
does not know, an account blocked or disabled at the IdP) is PAM_AUTH_ERR for everyone and never
leads to the offline rule; the answers that are the IdP's word that the account may not sign in
also revoke offline sign-in until the next online success (`test_refusal_...`).
"""
from __future__ import annotations

import json
import pathlib
import re
import socket
import subprocess
import threading
import time

import pytest

from cltest import Site
from hostile_idp import Drip, Hang, HostileIdP, Huge, Raw, Status
from sandbox import account_files_changed, snapshot_account_files

TIMEOUT = 2            # [idp] timeout in the config
BOUND = TIMEOUT + 1.0  # the module must have answered by then
MANAGED, NEVER_ONLINE = "hank", "nora"
PASSWORD = {"hank": "Hank's pw 1", "nora": "Nora pw 1"}

STATE = pathlib.Path("/var/lib/cloudlogin/users")  # state_dir as configured: the default

UNAVAILABLE = "Identity provider unreachable; trying offline sign-in."
MISCONFIGURED = "Cloud sign-in is misconfigured; tell your administrator."


class HTTPTrap:
    """A plain-http listener that only counts who comes (a redirect target nobody may follow)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.hits += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self._stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    idp = HostileIdP(tmp_path_factory.mktemp("hostile-idp"))
    idp.add_user(MANAGED, PASSWORD[MANAGED])
    idp.add_user(NEVER_ONLINE, PASSWORD[NEVER_ONLINE])
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def trap():
    t = HTTPTrap()
    yield t
    t.close()


@pytest.fixture(scope="module")
def fsite(tmp_path_factory, syslog_shim, hostile) -> Site:
    site = Site(tmp_path_factory.mktemp("fault-site"), syslog_shim, hostile)
    configure(site)
    run = site.pam(site.module_only(), MANAGED, PASSWORD[MANAGED])
    assert run.code == "PAM_SUCCESS", run  # hank is now managed, with discovery and keys cached
    return site


def configure(site: Site, **overrides: str) -> None:
    site.write_config(timeout=str(TIMEOUT), connect_timeout="1", **overrides)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connect() is refused
    return port


def age_cache(site: Site, kind: str, seconds: int) -> None:
    """Makes the cached document look `seconds` old (first line: "cloudlogin-cache 1 <fetched-at>")."""
    for path in (site.dir / "cache").glob(f"*.{kind}.json"):
        head, _, body = path.read_bytes().partition(b"\n")
        fetched = int(head.split()[2]) - seconds
        path.write_bytes(f"cloudlogin-cache 1 {fetched}\n".encode() + body)


# Each case: what to break, and what it is: "unavailable", "misconfigured" or "success".
def _set(attr, value):
    return lambda idp, site, trap: setattr(idp, attr, value)


def _id_token(**shape):
    return _set("id_token", shape)


def _now():
    return int(time.time())


CASES = {
    "connection_refused": (lambda idp, site, trap: configure(site, token_endpoint=f"https://127.0.0.1:{closed_port()}/token"), "unavailable"),
    "accepted_never_answered": (_set("token", Hang()), "unavailable"),
    "slow_drip": (_set("token", Drip(b'{"access_token":"a","token_type":"Bearer"}' + b" " * 200, 0.2)), "unavailable"),
    "http_500": (_set("token", Status(500, b'{"error":"server_error"}')), "unavailable"),
    "http_502_html": (_set("token", Status(502, b"<html><body>Bad Gateway</body></html>", "text/html")), "unavailable"),
    "http_503": (_set("token", Status(503, b"", headers=(("Retry-After", "120"),))), "unavailable"),
    "http_429": (_set("token", Status(429, b'{"errorCode":"E0000047"}', headers=(("Retry-After", "30"),))), "unavailable"),
    "http_429_rate_limit_auth0": (_set("token", Status(429, b'{"error":"too_many_requests","error_description":"Global limit has been reached"}')), "unavailable"),
    "http_408": (_set("token", Status(408, b"")), "unavailable"),
    # The client-side OAuth codes, a wrong endpoint and a proxy's page: misconfigured, offline rule.
    "invalid_client": (_set("token", Status(401, b'{"error":"invalid_client","error_description":"Client authentication failed"}')), "misconfigured"),
    "unauthorized_client": (_set("token", Status(400, b'{"error":"unauthorized_client"}')), "misconfigured"),
    "unsupported_grant_type": (_set("token", Status(400, b'{"error":"unsupported_grant_type"}')), "misconfigured"),
    "entra_client_secret_expired_7000222": (_set("token", Status(401, b'{"error":"invalid_client","error_codes":[7000222]}')), "misconfigured"),
    "http_404": (_set("token", Status(404, b"")), "misconfigured"),
    "http_403_proxy_page": (_set("token", Status(403, b"<html><body>Access denied by policy</body></html>", "text/html")), "misconfigured"),
    "ok_with_error_body": (_set("token", Status(200, b'{"error":"invalid_grant"}')), "misconfigured"),
    "ok_with_html_body": (_set("token", Status(200, b"<!doctype html><title>Sign in</title><form></form>", "text/html")), "misconfigured"),
    "truncated_json": (_set("token", Status(200, b'{"access_token":"abc","token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1')), "misconfigured"),
    "connection_closed_mid_body": (_set("token", Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n{\"access_token\":")), "unavailable"),
    "body_10_mib_announced": (_set("token", Huge(10 << 20)), "misconfigured"),
    "body_10_mib_chunked": (_set("token", Huge(10 << 20, chunked=True)), "misconfigured"),
    "deeply_nested_json": (_set("token", Status(200, b"[" * 200_000 + b"]" * 200_000)), "misconfigured"),
    "deeply_nested_objects": (_set("token", Status(200, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)), "misconfigured"),
    "invalid_utf8": (_set("token", Status(200, b'{"access_token":"\xff\xfe\xc0\xaf","token_type":"Bearer"}')), "misconfigured"),
    "id_token_wrong_iss": (_id_token(claims={"iss": "https://evil.example"}), "misconfigured"),
    "id_token_wrong_aud": (_id_token(claims={"aud": ["someone-else"], "azp": "someone-else"}), "misconfigured"),
    "id_token_extra_aud_without_azp": (_id_token(claims={"aud": ["linux-login", "someone-else"]}, drop=["azp"]), "misconfigured"),
    "id_token_wrong_azp": (_id_token(claims={"azp": "someone-else"}), "misconfigured"),
    "id_token_expired": (lambda idp, site, trap: setattr(idp, "id_token", {"claims": {"exp": _now() - 600, "iat": _now() - 900}}), "misconfigured"),
    "id_token_iat_in_future": (lambda idp, site, trap: setattr(idp, "id_token", {"claims": {"iat": _now() + 3600, "exp": _now() + 7200}}), "misconfigured"),
    "id_token_alg_none": (_id_token(sign="none"), "misconfigured"),
    "id_token_hs256_with_public_key": (_id_token(sign="hs256-public-key"), "misconfigured"),
    "id_token_unknown_kid_not_in_refreshed_jwks": (_id_token(header={"kid": "not-published"}), "misconfigured"),
    "id_token_without_sub": (_id_token(drop=["sub"]), "misconfigured"),
    "wrong_ca": (_set("tls", "wrong_ca"), "unavailable"),
    "hostname_mismatch": (_set("tls", "wrong_host"), "unavailable"),
    "redirect_to_http": (lambda idp, site, trap: setattr(idp, "token", Status(307, b"", headers=(("Location", f"http://127.0.0.1:{trap.port}/token"),))), "misconfigured"),
    "jwks_down_nothing_cached": (lambda idp, site, trap: (configure(site, cache_dir=str(site.dir / f"empty-cache-{time.monotonic_ns()}")),
                                                          setattr(idp, "jwks", Status(503))), "unavailable"),
}


def run_case(site: Site, user: str):
    started = time.monotonic()
    run = site.pam(site.module_only(), user, PASSWORD[user], timeout=30)
    return run, time.monotonic() - started


def check_no_damage(run, elapsed: float, before: dict) -> None:
    assert "RESULT auth" in run.stdout, f"the driver did not finish (crash?):\n{run.stdout}\n{run.stderr}"
    assert elapsed < BOUND, f"the module took {elapsed:.2f} s with timeout = {TIMEOUT}"
    assert account_files_changed(before) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_fault_gives_the_documented_code_in_bounded_time_and_changes_nothing(case, fsite: Site, hostile: HostileIdP, trap: HTTPTrap):
    setup, kind = CASES[case]
    assert kind in ("unavailable", "misconfigured")
    hits = trap.hits
    try:
        for user in (MANAGED, NEVER_ONLINE):
            setup(hostile, fsite, trap)
            before = snapshot_account_files()
            run, elapsed = run_case(fsite, user)
            check_no_damage(run, elapsed, before)
            if user == MANAGED:
                # The offline rule lets pam_unix check hank's synced password.
                assert run.code == "PAM_AUTHINFO_UNAVAIL", run
                assert run.messages == [("info: " + UNAVAILABLE) if kind == "unavailable" else ("error: " + MISCONFIGURED)], run
                label = "IdP unavailable" if kind == "unavailable" else "IdP misconfigured"
                assert any(f"authentication {label}, offline sign-in allowed" in line for line in run.syslog), run.syslog
            else:
                assert run.code == "PAM_AUTH_ERR", run
                assert any("offline sign-in is not possible" in m for m in run.messages), run
            hostile.reset()
            configure(fsite)
    finally:
        hostile.reset()
        configure(fsite)
    assert trap.hits == hits, "the module followed a redirect to plain http"
    # Nothing lasting: with a healthy IdP, hank signs in again (offline was not revoked either).
    assert fsite.pam(fsite.module_only(), MANAGED, PASSWORD[MANAGED]).code == "PAM_SUCCESS"


# Refusals: (what the token endpoint answers, the reason in the syslog line, whether offline
# sign-in is revoked). Error shapes as Auth0 and Entra document them (IdPClassifier.swift).
REFUSALS = {
    # An OAuth error CloudLogin does not know: a refusal of this attempt. It used to count as
    # "misconfigured", which let pam_unix check hank's synced password.
    "unknown_oauth_error_400": (Status(400, b'{"error":"something_new","error_description":"whatever"}'),
                                "refused by the identity provider (an error CloudLogin does not know)", False),
    "auth0_user_blocked_403": (Status(403, b'{"error":"unauthorized","error_description":"user is blocked"}'),
                               "blocked by the identity provider", True),
    "auth0_access_denied_403": (Status(403, b'{"error":"access_denied","error_description":"Unauthorized"}'),
                                "blocked by the identity provider", True),
    "auth0_too_many_attempts_429": (Status(429, b'{"error":"too_many_attempts","error_description":"Your account has been blocked '
                                                b'after multiple consecutive login attempts."}'),
                                    "blocked by the identity provider", True),
    "entra_50053_locked": (Status(400, b'{"error":"invalid_grant","error_description":"AADSTS50053: The account is locked.",'
                                       b'"error_codes":[50053]}'),
                           "blocked by the identity provider", True),
    "entra_53003_conditional_access": (Status(400, b'{"error":"interaction_required","error_description":"AADSTS53003: Access has '
                                                   b'been blocked by Conditional Access policies.","error_codes":[53003]}'),
                                       "refused by access policy", True),
    "entra_50057_disabled": (Status(400, b'{"error":"invalid_grant","error_codes":[50057]}'), "user disabled", True),
}


def record(user: str) -> dict:
    return json.loads((STATE / user).read_text())


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_is_auth_err_never_offline_and_revokes_only_when_definite(case, fsite: Site, hostile: HostileIdP):
    answer, reason, revokes = REFUSALS[case]
    # Each case starts from an online success: hank's record says accepted.
    assert fsite.pam(fsite.module_only(), MANAGED, PASSWORD[MANAGED]).code == "PAM_SUCCESS"
    assert record(MANAGED)["last_verdict"] == "accepted"
    try:
        for user in (MANAGED, NEVER_ONLINE):
            hostile.token = answer
            before = snapshot_account_files()
            run, elapsed = run_case(fsite, user)
            check_no_damage(run, elapsed, before)
            # Within max_days and with the synced password, hank would get PAM_AUTHINFO_UNAVAIL
            # from an outage or a misconfiguration: a refusal never does.
            assert run.code == "PAM_AUTH_ERR", run
            assert run.messages == ["error: Sign-in failed."], run
            assert any(f"authentication rejected ({reason}); PAM_AUTH_ERR; online" in line for line in run.syslog), run.syslog
        assert record(MANAGED)["last_verdict"] == ("revoked" if revokes else "accepted")
        # What hank gets from an outage now.
        hostile.token = Status(503)
        run, elapsed = run_case(fsite, MANAGED)
        if revokes:
            assert run.code == "PAM_AUTH_ERR", run
            assert any("refused this account since its last online sign-in" in m for m in run.messages), run
        else:
            assert run.code == "PAM_AUTHINFO_UNAVAIL", run
            assert run.messages == ["info: " + UNAVAILABLE], run
    finally:
        hostile.reset()
    # The next online success restores offline sign-in.
    assert fsite.pam(fsite.module_only(), MANAGED, PASSWORD[MANAGED]).code == "PAM_SUCCESS"
    assert record(MANAGED)["last_verdict"] == "accepted"


def test_wrong_password_at_a_hostile_idp_is_a_plain_no(fsite: Site, hostile: HostileIdP):
    before = snapshot_account_files()
    run = fsite.pam(fsite.module_only(), MANAGED, "not hank's password")
    assert run.code == "PAM_AUTH_ERR" and run.messages == ["error: Sign-in failed."]
    assert account_files_changed(before) == []


def test_key_rotation_unknown_kid_fetches_the_jwks_once_and_succeeds(fsite: Site, hostile: HostileIdP):
    hostile.rotate_keys()
    before = snapshot_account_files()
    mark = hostile.mark()
    run, elapsed = run_case(fsite, MANAGED)
    check_no_damage(run, elapsed, before)
    assert run.code == "PAM_SUCCESS", run
    assert hostile.requests_since(mark) == ["POST /token 200", "GET /jwks 200"]
    mark = hostile.mark()
    assert run_case(fsite, MANAGED)[0].code == "PAM_SUCCESS"
    assert hostile.requests_since(mark) == ["POST /token 200"], "the new keys were not cached"


def test_jwks_endpoint_down_with_keys_cached_still_signs_in(fsite: Site, hostile: HostileIdP):
    age_cache(fsite, "jwks", 2 * 86400)  # past the daily refresh: the module asks for the JWKS
    hostile.jwks = Status(503)
    before = snapshot_account_files()
    mark = hostile.mark()
    try:
        run, elapsed = run_case(fsite, MANAGED)
    finally:
        hostile.reset()
    check_no_damage(run, elapsed, before)
    assert run.code == "PAM_SUCCESS", run
    # The refresh of the key set is started beside the grant (over HTTP/1.1 on the one
    # connection: before it).
    assert sorted(hostile.requests_since(mark)) == ["GET /jwks 503", "POST /token 200"]
    assert any("using the cached copy" in line for line in run.syslog), run.syslog


def test_connections_per_steady_state_login(fsite: Site, hostile: HostileIdP):
    assert run_case(fsite, MANAGED)[0].code == "PAM_SUCCESS"
    connections, mark = hostile.connections, hostile.mark()
    assert run_case(fsite, MANAGED)[0].code == "PAM_SUCCESS"
    assert hostile.requests_since(mark) == ["POST /token 200"]
    assert hostile.connections - connections == 1
