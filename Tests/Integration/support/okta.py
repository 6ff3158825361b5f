"""An HTTPS server that behaves like Okta's classic Authentication API (/api/v1/authn), and
the OIDC endpoints of Okta custom authorization servers that turn the API's one-time
sessionToken into an ID token (authorization code + PKCE, prompt=none, sessionToken).

Okta is a cloud service, so the integration tests run against this stand-in: it answers with
the JSON, status codes and headers that Okta documents, over HTTPS on 127.0.0.1 with a CA
generated for the run (not in the system trust store). It runs in a background thread of the
test process (so a test can inspect what it received), or on its own:

    python3 Tests/Integration/support/okta.py serve --workdir DIR --port N \\
        [--user LOGIN:PASSWORD[:FACTOR,FACTOR...[:STATE]]] [--link-style opaque|documented]
        [--group LOGIN:GROUP] [--oidc-client CLIENT_ID,REDIRECT_URI[,AUTHORIZATION_SERVER]]

Usage in a test::

    sys.path.insert(0, "Tests/Integration/support")
    from okta import OktaServer

    with OktaServer(tmp_path / "okta") as okta:
        uid = okta.add_user("alice@example.com", "Secret123", first_name="Alice",
                            factors=["push", "totp", "question"], push_number=42)
        ... client with okta_domain = okta.base_url, trusting only okta.ca_file ...
        assert [r["path"] for r in okta.requests()][0] == "/api/v1/authn"

    OIDC (reading the groups after a sign-in)::

        okta.add_user("bob@example.com", "Secret123", groups=["Admins", "Staff"])
        okta.add_oidc_client("0oaNATIVEAPP", "http://localhost:8400/callback")
        issuer = okta.issuer()    # {base_url}/oauth2/default
        # SUCCESS -> sessionToken; GET {issuer}/v1/authorize?client_id&response_type=code&
        #   response_mode=query&scope=openid profile groups&redirect_uri&state&nonce&
        #   code_challenge&code_challenge_method=S256&prompt=none&sessionToken
        #   -> 302 Location: {redirect_uri}?code=...&state=...
        # POST {issuer}/v1/token (form: grant_type=authorization_code, code, redirect_uri,
        #   client_id, code_verifier) -> {"token_type", "expires_in", "access_token", "scope",
        #   "id_token"}; the ID token verifies with {issuer}/v1/keys.

Sources (what each response shape was copied from)
--------------------------------------------------
[D]  Okta Authentication API reference, https://developer.okta.com/docs/reference/api/authn/
     (stored copy: okta/okta-developer-docs,
     packages/@okta/vuepress-site/docs/reference/api/authn/index.md). Used for: the primary
     authentication request/options; SUCCESS; 401 E0000004 "Authentication failed"; 429
     E0000047 with X-Rate-Limit-Limit/-Remaining/-Reset; LOCKED_OUT (no stateToken, only
     `_links.next` "unlock"); PASSWORD_EXPIRED (`_embedded.policy.complexity`, `_links.next`
     "changePassword"); MFA_REQUIRED (`_embedded.factors` array, `_links.verify` per factor,
     `_links.cancel`); MFA_ENROLL (factors with status NOT_SETUP and `_links.enroll`);
     PASSWORD_WARN (`_embedded.policy.expiration.passwordExpireDays`, `_links.skip` named
     "skip"); change_password (403 E0000014 "Update of credentials failed" with cause
     "oldPassword: The credentials provided were incorrect."); MFA_ENROLL_ACTIVATE (TOTP
     enroll: `_embedded.factor._embedded.activation`, `_links.next` "activate", `prev`);
     verify TOTP/SMS/call/question (403 E0000068 "Invalid Passcode/Answer" with errorCauses);
     SMS challenge (MFA_CHALLENGE, `_embedded.factor`, `_links.next` "verify", `resend`
     array); push (MFA_CHALLENGE + factorResult WAITING + `_links.next` "poll"; REJECTED and
     TIMEOUT with `_links.next` "verify"; 3-number challenge in
     `factor._embedded.challenge.correctAnswer`, "provided in the polling response");
     webauthn challenge (factorResult CHALLENGE); get transaction state; previous; skip;
     cancel; the transaction object; stateToken lifetime and 401 E0000011 "Invalid token
     provided"; 403 E0000079 "This operation is not allowed in the current authentication
     state."; sessionToken lifetime 5 minutes; RECOVERY (recovery token response);
     UNAUTHENTICATED (SP-initiated step-up: `type` SESSION_STEP_UP, `_embedded.target`,
     `_links.next` "authenticate").
[RL] https://developer.okta.com/docs/reference/rl-global-enduser and
     https://developer.okta.com/docs/reference/rl2-limits/: per-username limit "Authenticate
     the same user: /api/v1/authn 4 per second".
     https://developer.okta.com/docs/reference/rl-best-practices/: X-Rate-Limit-Limit (ceiling
     for this request), -Remaining (left in the window), -Reset (UTC epoch seconds).
[E]  https://developer.okta.com/reference/error_codes/: E0000003 "The request body was not
     well-formed." (400), E0000007 (404), E0000022 (405).
[AJ] okta/okta-auth-js test fixtures (test/support/xhr/): mfa-required.js (`factors` array,
     GOOGLE and OKTA totp), mfa-challenge-push.js (`_embedded.factor` singular in
     MFA_CHALLENGE, poll href = verify href), cancel.js (200 `{"relayState": ""}`),
     error-throttle.js, error-token.js, error-operation.js (E0000079 with errorCauses),
     password-warn.js, password-expired-error-incorrect.js; test/xhr/
     password-expired-error-complexity.js (403 E0000080 "The password does meet the
     complexity requirements of the current password policy." - sic); lib/constants.js
     (DEFAULT_POLLING_DELAY = 500 ms, the SDK's push poll interval).
[O]  Okta OpenID Connect & OAuth 2.0 API reference,
     https://developer.okta.com/docs/reference/api/oidc/
     (stored copy: okta/okta-developer-docs, .../docs/reference/api/oidc/index.md). Used for:
     custom authorization server URLs /oauth2/{id}/v1/...; /authorize parameters (sessionToken:
     "Okta one-time session token. This allows an API-based user sign-in flow"; prompt=none:
     "If an Okta session already exists, the user is silently authenticated. Otherwise, an
     error is returned."; state required; response_mode; Referrer-Policy: no-referrer); the
     code's 60-second lifetime; error ids (login_required "The request specified that no
     prompt should be shown but the user is currently not authenticated.", invalid_scope,
     unsupported_response_type, ...); /token parameters, response and error body
     {"error", "error_description"} (401 invalid_client "No client credentials found.");
     /keys (JWKS, several keys, "The order of keys in the result doesn't indicate which keys
     are used"); /userinfo (401 WWW-Authenticate invalid_token); well-known documents and their
     404 E0000007 "Not found: Resource not found: {id} (AuthorizationServer)"; access and ID
     token claims (base claims always present: amr, aud (a client id, String), auth_time, exp,
     iat, idp, iss, jti, sub, ver; scope-dependent: name and preferred_username (profile),
     email (email), groups (groups)); header alg RS256 + kid; at_hash; the groups claim.
[SC] "Work with Okta session cookies" (okta-developer-docs .../guides/session-cookie/main):
     the sessionToken from the Authentication API passed to /authorize with prompt=none;
     "The session token may only be used once"; the 302 with Set-Cookie sid=...; "You either
     obtain the requested tokens or an OAuth error response."
[KB] support.okta.com: "Okta Error 400 Bad Request - The 'redirect_uri' parameter must be a
     Login redirect URI in the client app settings" (an error page, no redirect, exact match);
     "Why am I redirected back to my app instead of being shown the Okta-hosted error pages":
     "Okta returns all errors that occur during the authorization request (/authorize
     endpoint) to the client application via the Redirect URI. The only exception is when the
     provided Redirect URI is invalid."
[C]  A real developer org's "default" server, captured in public test code: its
     openid-configuration (member order, values), /v1/keys (two keys; member order kty, alg,
     kid, use, e, n; 43-character kids), an ID token (header {"kid", "alg"}; claims in the
     order sub, name, email, ver, iss, aud, iat, exp, jti "ID."+43, amr, idp, nonce,
     preferred_username, auth_time, at_hash) and its access token (ver, jti "AT."+43, iss, aud
     "api://default", iat, exp, cid, uid, scp, auth_time, sub = login). Other captures and SDK
     code: "The client specified not to prompt, but the user is not logged in." (the
     login_required description), "PKCE verification failed.", "The authorization code is
     invalid or has expired.", "One or more scopes are not configured for the authorization
     server resource.", "The client is not authorized to use the provided grant type.
     Configured grant types: [...]", 400 {"errorCode": "invalid_client", "errorSummary":
     "Invalid value for 'client_id' parameter.", ...} for an unknown client_id.
[SW] okta/okta-signin-widget fixtures (test/unit/helpers/xhr/):
     MFA_CHALLENGE_push_with_number_challenge.js, MFA_CHALLENGE_push_rejected.js,
     MFA_REQUIRED_policy_time_based_min.js (`vendorName` on factors), CANCEL.js (200
     `{"_embedded": {}}`), ERROR_throttle.js.

Where this server knowingly differs from Okta (see also the README-style notes below)
-------------------------------------------------------------------------------------
* link_style="opaque" (default): factor verify hrefs are
  `/api/v1/authn/factors/{factorId}/verify/{random}` and push poll hrefs are
  `/api/v1/authn/factors/{factorId}/transactions/{random}/verify`, and the documented
  `/api/v1/authn/factors/{factorId}/verify` answers 404 E0000007. A client that builds URLs
  instead of following `_links` fails. link_style="documented" uses Okta's documented paths
  (poll href = verify href, as in [D] and [AJ]).
* Enrollment, activation and recovery operations are not implemented: their endpoints answer
  403 E0000079.
* The per-username limit (4/s) is applied to every /api/v1/authn* request attributed to the
  user (primary authentication by `username`, later calls by the stateToken's user), so a
  client that polls too fast gets 429 E0000047. X-Rate-Limit-* on other responses report an
  org-wide per-minute bucket (default 600/min, as Okta's headers report org-wide limits).
* `_embedded.user.profile` carries an extra unknown member `extra` (extra_members=True) so
  clients prove they ignore unknown members; factors carry `vendorName` (real, undocumented
  in the primary-auth example).
* Cancel answers 200 `{"_embedded": {}}` ([SW]; the reference documents no response body).
* Password policy: newPassword must have at least 8 characters (403 E0000080 otherwise, [AJ]);
  newPassword equal to the current password gives 403 E0000014.

OIDC: what is modelled, and where it differs from Okta
* Only custom authorization servers (/oauth2/{id}/...; add_oidc_client creates them, with two
  RS256 keys each; the second signs). The org authorization server (/oauth2/v1/...) and unknown
  ids answer 404 E0000007. Implemented: the two well-known documents, GET /v1/authorize,
  POST /v1/token (authorization_code only), GET /v1/keys, GET|POST /v1/userinfo. The documents
  also list introspect, revoke, logout, device/authorize and registration (as Okta's do); those
  answer 404 here.
* Apps are Native apps: public, PKCE S256 required, only the authorization_code grant, one
  redirect URI compared exactly. Only the app's own authorization server lets it in (others:
  access_denied, Okta's words for an access policy that does not match).
* There is no browser session: a request is authenticated only by a usable sessionToken (from
  a SUCCESS, unused, less than 5 minutes old); it is spent when a code is issued for it. Without
  one, prompt=none gets the login_required redirect and any other prompt Okta's sign-in page
  (200 HTML, nothing to sign in with). amr is ["pwd"], plus "mfa" and the factor's method
  (otp, sms, tel, kba, swk, hwk) after a factor verification.
* Error order at /authorize: client_id, then redirect_uri (both: 400 error page), then (as
  redirects, in the requested response_mode) response_mode, response_type, scope, state, PKCE,
  policy, prompt, sessionToken. The descriptions quoted in [O]/[C] are Okta's; the others
  ("The 'state' parameter is required.", code_challenge_method/code_challenge/prompt values,
  repeated parameters, response_type missing/unsupported, the token endpoint's content type and
  missing grant_type, "PKCE code verifier is required when the parameter code_challenge is
  included in the authorization request.") follow Okta's style but were not seen verbatim.
* A code is spent by any /token request that presents it (a wrong code_verifier burns it).
* The "groups" scope is configured on every server and published in scopes_supported (on a
  real "default" server an admin must add it, else scope=groups is invalid_scope). The groups
  claim carries the user's group names (no group filter, no "Everyone" unless given) and is
  left out when there are none; the 100-group limit is not enforced.
* Tokens: expires_in 3600; ID token exp = iat + 3600; no refresh tokens; keys never rotate.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime
import hashlib
import html
import json
import math
import os
import pathlib
import secrets
import signal
import socket
import ssl
import string
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from testpki import generate_pki, rsa_key

AUTHN = "/api/v1/authn"
STATE_TOKEN_LIFETIME = 300.0     # [D] sliding; we use 5 minutes
SESSION_TOKEN_LIFETIME = 300.0   # [D] "The lifetime of the sessionToken is 5 minutes."
MAX_BODY = 1 << 20
OAUTH2 = "/oauth2"
CODE_LIFETIME = 60.0             # [O] "The code has a lifetime of 60 seconds."
TOKEN_LIFETIME = 3600            # [O] expires_in 3600 (access token); ID token exp - iat = 3600 [C]
QUESTION_ANSWER = "mayonnaise"   # [D] verify security question example
POST_ONLY = ("POST",)

_ALNUM = string.ascii_letters + string.digits
_TOKEN_CHARS = _ALNUM + "-_"

KNOWN_FACTORS = ("totp", "google_totp", "sms", "push", "question", "call", "webauthn",
                 "hardware_token")

# kind -> (id prefix, factorType, provider)
_FACTOR_CATALOG = {
    "totp": ("ost", "token:software:totp", "OKTA"),
    "google_totp": ("uft", "token:software:totp", "GOOGLE"),
    "sms": ("sms", "sms", "OKTA"),
    "push": ("opf", "push", "OKTA"),
    "question": ("ufs", "question", "OKTA"),
    "call": ("clf", "call", "OKTA"),
    "webauthn": ("fwf", "webauthn", "FIDO"),
    "hardware_token": ("ykf", "token:hardware", "YUBICO"),
}

# Factor kind -> the amr value Okta adds (after "pwd", "mfa") when it was verified ([O] amr
# examples: "pwd", "mfa", "otp", "kba", "sms", "swk", "hwk"; RFC 8176 "tel" for a voice call).
_FACTOR_AMR = {"totp": "otp", "google_totp": "otp", "sms": "sms", "call": "tel", "question": "kba",
               "push": "swk", "webauthn": "hwk", "hardware_token": "hwk"}

# A custom authorization server's scopes: the reserved ones of Okta's "default" server ([C])
# plus "groups", which the admin adds to the server (and marks publicly discoverable) for the
# groups claim (without it Okta answers invalid_scope to scope=groups).
AS_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access", "device_sso",
             "groups")
_CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt",
                        "private_key_jwt", "none"]
_RESPONSE_TYPES = ["code", "id_token", "code id_token", "code token", "id_token token",
                   "code id_token token"]
_RESPONSE_MODES = ["query", "fragment", "form_post", "okta_post_message"]
_GRANT_TYPES = ["authorization_code", "implicit", "refresh_token", "password",
                "urn:ietf:params:oauth:grant-type:device_code"]
_ID_TOKEN_CLAIMS = ["iss", "ver", "sub", "aud", "iat", "exp", "jti", "auth_time", "amr", "idp",
                    "nonce", "name", "nickname", "preferred_username", "given_name",
                    "middle_name", "family_name", "email", "email_verified", "profile",
                    "zoneinfo", "locale", "address", "phone_number", "picture", "website",
                    "gender", "birthdate", "updated_at", "at_hash", "c_hash"]
_ACCESS_TOKEN_CLAIMS = ["ver", "jti", "iss", "aud", "iat", "exp", "cid", "uid", "scp", "sub"]
_REQUEST_OBJECT_ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                        "ES512"]
NATIVE_GRANT_TYPES = ["authorization_code"]   # what add_oidc_client's app may use

KNOWN_STATES = ("LOCKED_OUT", "LOCKED_OUT_HIDDEN", "MFA_ENROLL", "MFA_ENROLL_ACTIVATE",
                "PASSWORD_WARN", "PASSWORD_EXPIRED", "RECOVERY", "UNAUTHENTICATED")


def _rand(n: int, chars: str = _ALNUM) -> str:
    return "".join(secrets.choice(chars) for _ in range(n))


def _okta_id(prefix: str) -> str:
    """Okta ids are 20 characters: a 3-character type prefix and 17 random ones."""
    return prefix + _rand(17)


def _iso(t: float) -> str:
    d = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------------------- model


@dataclass
class _Factor:
    kind: str
    id: str
    factor_type: str
    provider: str
    profile: dict
    vkey: str  # random part of the opaque verify path


@dataclass
class _User:
    login: str
    password: str
    id: str
    first_name: str
    last_name: str
    factors: list
    totp_code: str
    sms_code: str
    push: str
    push_number: int | None
    push_wait_polls: int
    state: str | None
    password_expire_days: int
    factor_key: str
    password_changed: float
    email: str = ""
    groups: list = field(default_factory=list)


@dataclass
class _Tx:
    token: str
    login: str
    status: str
    steps: list              # statuses still to come after `status`
    expires: float
    alive: bool = True
    challenge: dict | None = None
    amr: list = field(default_factory=lambda: ["pwd"])   # methods verified so far


@dataclass
class _SessionToken:
    """A one-time sessionToken from a SUCCESS (redeemable once at /authorize, for 5 minutes)."""
    token: str
    login: str
    auth_time: int
    expires: float
    amr: list
    used: bool = False


@dataclass
class _OIDCClient:
    """A Native app: public client (token_endpoint_auth_method "none"), PKCE, grant
    authorization_code, one Sign-in redirect URI, allowed by `authorization_server`'s policy."""
    client_id: str
    redirect_uri: str
    authorization_server: str


@dataclass
class _AuthServer:
    id: str
    keys: list               # [(kid, private key)]; the last one signs
    scopes: tuple


@dataclass
class _Code:
    code: str
    client_id: str
    authorization_server: str
    redirect_uri: str
    login: str
    scopes: list
    nonce: str | None
    challenge: str
    auth_time: int
    amr: list
    expires: float
    used: bool = False


@dataclass
class _Response:
    status: int
    body: object = None                     # dict (JSON), str/bytes (raw) or None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"


def _error(status: int, code: str, summary: str, causes: list[str] = (),
           headers: dict | None = None) -> _Response:
    return _Response(status, {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + _rand(22, _TOKEN_CHARS),
        "errorCauses": [{"errorSummary": c} for c in causes],
    }, dict(headers or {}))


def _e0000004() -> _Response:
    return _error(401, "E0000004", "Authentication failed")


def _e0000011() -> _Response:
    return _error(401, "E0000011", "Invalid token provided")


def _e0000079() -> _Response:
    msg = "This operation is not allowed in the current authentication state."
    return _error(403, "E0000079", msg, [msg])


def _e0000003() -> _Response:
    return _error(400, "E0000003", "The request body was not well-formed.")


def _e0000007(what: str) -> _Response:
    return _error(404, "E0000007", f"Not found: Resource not found: {what}")


def _e0000068(cause: str) -> _Response:
    return _error(403, "E0000068", "Invalid Passcode/Answer", [cause])


PASSCODE_MISMATCH = "Your passcode doesn't match our records. Please try again."
ANSWER_MISMATCH = "Your answer doesn't match our records. Please try again."


# ------------------------------------------------------------------------------- JOSE


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _jwk(kid: str, key: rsa.RSAPrivateKey) -> dict:
    """The public JWK in the member order of Okta's /v1/keys ([C])."""
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS256", "kid": kid, "use": "sig", "e": _b64_uint(pub.e),
            "n": _b64_uint(pub.n)}


def _new_signing_key() -> tuple[str, rsa.RSAPrivateKey]:
    """An RS256 key and its kid: Okta kids are 43 base64url characters ([C]); here the RFC 7638
    thumbprint of the key."""
    key = rsa_key()
    pub = key.public_key().public_numbers()
    canonical = json.dumps({"e": _b64_uint(pub.e), "kty": "RSA", "n": _b64_uint(pub.n)},
                           separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest()), key


def _sign_jwt(kid: str, key: rsa.RSAPrivateKey, claims: dict) -> str:
    """JWS compact serialization, RS256, header {"kid", "alg"} (Okta's order, [C])."""
    header = _b64url(json.dumps({"kid": kid, "alg": "RS256"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


def _s256(verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())


_PKCE_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")


def _pkce_value_ok(value: str) -> bool:
    """RFC 7636 4.1/4.2: 43..128 characters of [A-Z a-z 0-9 - . _ ~]."""
    return 43 <= len(value) <= 128 and set(value) <= _PKCE_CHARS


def _content_type(headers: dict) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _parse_form(raw: bytes | str) -> tuple[dict, set] | None:
    """application/x-www-form-urlencoded -> ({name: first value}, {names given twice}), or None
    when it does not parse."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                                       errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    fields, dups = {}, set()
    for k, v in pairs:
        if k in fields:
            dups.add(k)
        else:
            fields[k] = v
    return fields, dups


def _oauth_error(status: int, error: str, description: str, headers: dict | None = None
                 ) -> _Response:
    """The /token error body ([O]): {"error": ..., "error_description": ...}."""
    return _Response(status, {"error": error, "error_description": description},
                     dict(headers or {}))


def _error_page(summary: str, code: str = "invalid_request") -> _Response:
    """Okta's hosted "400 Bad Request" page, shown (no redirect) when the client_id or the
    redirect_uri cannot be trusted ([KB])."""
    body = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Error</title></head>\n<body><div id=\"error-page\" class=\"error-content\">"
            "<h1>400 Bad Request</h1>\n"
            f"<p class=\"error-summary\">{html.escape(summary)}</p>\n"
            f"<p class=\"error-code\">Error Code: {html.escape(code)}</p>\n"
            "</div></body></html>\n")
    return _Response(400, body, {}, "text/html;charset=utf-8")


# ------------------------------------------------------------------------------ server


class OktaServer:
    """An Okta-shaped Authentication API on https://127.0.0.1:PORT (see module docstring)."""

    def __init__(self, workdir: pathlib.Path | str, port: int | None = None, *,
                 link_style: str = "opaque", user_rate_limit: int = 4,
                 org_rate_limit: int = 600, extra_members: bool = True):
        if link_style not in ("opaque", "documented"):
            raise ValueError("link_style must be 'opaque' or 'documented'")
        self.workdir = pathlib.Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or 0
        self.link_style = link_style
        self.user_rate_limit = user_rate_limit   # per username per second; 0 = off
        self.org_rate_limit = org_rate_limit     # per minute; 0 = off
        self.extra_members = extra_members
        self.ca_file = self.workdir / "ca.pem"
        self.cert_file = self.workdir / "server.pem"
        self.key_file = self.workdir / "server.key"
        self.request_log_file = self.workdir / "requests.jsonl"
        self.server_log = self.workdir / "server.log"
        self.base_url = ""

        self._lock = threading.RLock()
        self._users: dict[str, _User] = {}          # key: login.lower()
        self._txs: dict[str, _Tx] = {}
        self._routes: dict[str, tuple] = {}         # opaque path -> route
        self._log: list[dict] = []
        self._fail: collections.deque = collections.deque()
        self._user_hits: dict[str, collections.deque] = {}
        self._org_minute = (0, 0)                   # (minute, count)
        self.session_tokens: list[str] = []
        # OIDC ([O]): Native apps, custom authorization servers, sessionTokens, codes.
        self.code_lifetime = CODE_LIFETIME
        self.org_id = _okta_id("00o")               # the `idp` claim: Okta itself
        self._clients: dict[str, _OIDCClient] = {}
        self._auth_servers: dict[str, _AuthServer] = {}
        self._session_tokens: dict[str, _SessionToken] = {}
        self._codes: dict[str, _Code] = {}
        self._access_tokens: dict[str, dict] = {}   # token -> {"login", "scopes", "exp", "as"}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._httpd is not None:
            return
        if not self.ca_file.exists():
            generate_pki(self.ca_file, self.cert_file, self.key_file, "Okta")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        httpd = _HTTPServer(("127.0.0.1", self.port), _Handler, self, ctx)
        self.port = httpd.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"okta-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering: close the listening socket and every open connection. Users,
        transactions and the request log are kept; start() again serves the same port/CA."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stopping = True
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "OktaServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this run's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # ---------------------------------------------------------------------- users

    def add_user(self, login: str, password: str, *, first_name: str = "", last_name: str = "",
                 user_id: str | None = None, factors=(), totp_code: str = "123456",
                 sms_code: str = "654321", push: str = "approve", push_number: int | None = None,
                 push_wait_polls: int = 1, state: str | None = None,
                 password_expire_days: int = 5, factor_key: str = "factors",
                 groups=(), email: str | None = None) -> str:
        """Create or replace a user; return its Okta id ("00u" + 17 random characters).

        factors: enrolled factors, listed in this order under MFA_REQUIRED (any of
          KNOWN_FACTORS; "question", "call", "webauthn", "hardware_token" are there so a
          client can prove it hides what it does not support). Each gets a random Okta id.
        totp_code: the passCode accepted for totp, google_totp and hardware_token.
        sms_code: the passCode accepted for sms and call (after the challenge is sent).
        push: "approve" | "reject" | "timeout" | "never" (WAITING forever).
        push_wait_polls: polls answered WAITING before the final answer (the verify call
          that sends the push always answers WAITING).
        push_number: 3-number challenge; `_embedded.factor._embedded.challenge.correctAnswer`
          appears in the WAITING answers of polls (not in the first verify answer: Okta
          sends it once the user has opened the push), so it needs push_wait_polls >= 1.
        state: force a primary-authentication state: "LOCKED_OUT" (shown, any password),
          "LOCKED_OUT_HIDDEN" (401 E0000004, Okta's default), "MFA_ENROLL",
          "MFA_ENROLL_ACTIVATE", "PASSWORD_WARN" (needs options.warnBeforePasswordExpired;
          then MFA_REQUIRED if there are factors, then SUCCESS), "PASSWORD_EXPIRED" (after
          MFA_REQUIRED if there are factors), "RECOVERY", "UNAUTHENTICATED", or any other
          string (an unknown state, passed through as `status`).
        factor_key: "factors" (SDK fixtures, real captures, the reference's examples) or
          "factor": the key of the factor list in MFA_REQUIRED's `_embedded`.
        groups: names of the user's Okta groups: the `groups` claim of ID tokens issued for a
          `groups` scope (the claim is left out when the list is empty). Real orgs also put
          every user in "Everyone"; add it here if a test wants it.
        email: the profile email (`email` claim with the `email` scope); default: the login.
        """
        if push not in ("approve", "reject", "timeout", "never"):
            raise ValueError(f"push must be approve|reject|timeout|never, not {push!r}")
        if factor_key not in ("factors", "factor"):
            raise ValueError("factor_key must be 'factors' or 'factor'")
        uid = user_id or _okta_id("00u")
        flist = []
        for kind in factors:
            if kind not in _FACTOR_CATALOG:
                raise ValueError(f"unknown factor {kind!r}; known: {', '.join(KNOWN_FACTORS)}")
            prefix, ftype, provider = _FACTOR_CATALOG[kind]
            flist.append(_Factor(kind, _okta_id(prefix), ftype, provider,
                                 self._factor_profile(kind, login), _rand(12)))
        user = _User(login=login, password=password, id=uid, first_name=first_name,
                     last_name=last_name, factors=flist, totp_code=totp_code, sms_code=sms_code,
                     push=push, push_number=push_number, push_wait_polls=max(0, push_wait_polls),
                     state=state, password_expire_days=password_expire_days,
                     factor_key=factor_key, password_changed=time.time() - 86400 * 30,
                     email=email if email is not None else login,
                     groups=self._group_list(groups))
        with self._lock:
            old = self._users.get(login.lower())
            if old is not None:
                for f in old.factors:
                    self._routes.pop(self._verify_path(f), None)
            self._users[login.lower()] = user
            for f in flist:
                self._routes[self._verify_path(f)] = ("verify", login.lower(), f.id)
        return uid

    def set_password(self, login: str, password: str) -> None:
        with self._lock:
            user = self._users[login.lower()]
            user.password = password
            user.password_changed = time.time()

    def set_push(self, login: str, push: str) -> None:
        """What the person does on the phone from now on (a test approves or rejects a push
        while the client waits): "approve" | "reject" | "timeout" | "never". The next poll of a
        pending push, once past the user's push_wait_polls, answers accordingly; the push
        already sent, its transaction and the number to tap stay the same."""
        if push not in ("approve", "reject", "timeout", "never"):
            raise ValueError(f"push must be approve|reject|timeout|never, not {push!r}")
        with self._lock:
            self._users[login.lower()].push = push

    def set_state(self, login: str, state: str | None) -> None:
        with self._lock:
            self._users[login.lower()].state = state

    def set_groups(self, login: str, groups) -> None:
        """Replace the user's group names (seen by ID tokens issued from now on)."""
        with self._lock:
            self._users[login.lower()].groups = self._group_list(groups)

    @staticmethod
    def _group_list(groups) -> list[str]:
        if isinstance(groups, str):
            raise TypeError("groups must be a list of group names, not a string")
        names = [str(g) for g in groups]
        if any(not g for g in names):
            raise ValueError("group names must not be empty")
        return names

    # ----------------------------------------------------------------------- OIDC

    def add_oidc_client(self, client_id: str, redirect_uri: str,
                        authorization_server: str = "default") -> None:
        """Register a Native app (public client: no secret, PKCE S256 required, grant type
        authorization_code) with one Sign-in redirect URI, compared exactly. The custom
        authorization server `authorization_server` (created with its own signing keys on first
        use) lets this app in through its access policy; another server answers
        `access_denied` for it."""
        if not client_id or not redirect_uri:
            raise ValueError("client_id and redirect_uri are required")
        if not authorization_server or "/" in authorization_server:
            raise ValueError("authorization_server must be a single path segment")
        with self._lock:
            self._auth_server(authorization_server, create=True)
            self._clients[client_id] = _OIDCClient(client_id, redirect_uri, authorization_server)

    def add_authorization_server(self, authorization_server: str) -> None:
        """Create a custom authorization server no app is allowed to use (yet)."""
        with self._lock:
            self._auth_server(authorization_server, create=True)

    def issuer(self, authorization_server: str = "default") -> str:
        """The issuer (and base URL) of a custom authorization server: {base_url}/oauth2/{id}."""
        return f"{self.base_url}{OAUTH2}/{authorization_server}"

    def expire_session_tokens(self) -> None:
        """Every sessionToken issued so far becomes unusable (/authorize: login_required)."""
        with self._lock:
            for st in self._session_tokens.values():
                st.expires = 0.0

    def expire_codes(self) -> None:
        """Every authorization code issued so far expires (/token: invalid_grant)."""
        with self._lock:
            for c in self._codes.values():
                c.expires = 0.0

    def _auth_server(self, as_id: str, create: bool = False) -> _AuthServer | None:
        srv = self._auth_servers.get(as_id)
        if srv is None and create:
            # Two published keys, like Okta's JWKS ([C]); the second signs, so a client that
            # takes keys[0] instead of matching the kid fails.
            srv = _AuthServer(as_id, [_new_signing_key(), _new_signing_key()], AS_SCOPES)
            self._auth_servers[as_id] = srv
        return srv

    def factor_ids(self, login: str) -> dict[str, str]:
        """{kind: factor id} for a user (for assertions)."""
        with self._lock:
            return {f.kind: f.id for f in self._users[login.lower()].factors}

    @staticmethod
    def _factor_profile(kind: str, login: str) -> dict:
        if kind in ("totp", "google_totp"):
            return {"credentialId": login}
        if kind in ("sms", "call"):
            return {"phoneNumber": "+1 XXX-XXX-1337"}
        if kind == "push":
            return {"credentialId": login, "deviceType": "SmartPhone_IPhone", "name": "Gibson",
                    "platform": "IOS", "version": "9.0"}
        if kind == "question":
            return {"question": "disliked_food",
                    "questionText": "What is the food you least liked as a child?"}
        if kind == "webauthn":
            return {"credentialId": _rand(40, _TOKEN_CHARS), "authenticatorName": "MacBook Touch ID"}
        return {"credentialId": "000004102994"}  # token:hardware (YubiKey)

    # ------------------------------------------------------------------ test hooks

    def requests(self) -> list[dict]:
        """Every request received, in order: {"method", "path", "query", "body" (parsed JSON, or
        the fields of a form body as a dict, or None), "status", "time" (epoch seconds),
        "response" (parsed JSON or None)}."""
        with self._lock:
            return [dict(r) for r in self._log]

    def mark(self) -> int:
        with self._lock:
            return len(self._log)

    def requests_since(self, mark: int) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._log[mark:]]

    def fail_next(self, status: int, body: dict | str | None = None, headers: dict | None = None,
                  count: int = 1) -> None:
        """Answer the next `count` requests (any path) with this status instead. Defaults:
        429 -> E0000047 with X-Rate-Limit-* headers; 500 -> E0000009; other 5xx -> an HTML
        page (what a load balancer sends); others -> {}."""
        with self._lock:
            for _ in range(count):
                self._fail.append((status, body, dict(headers or {})))

    def expire_state_tokens(self) -> None:
        """Every existing stateToken becomes invalid (later calls get 401 E0000011)."""
        with self._lock:
            for tx in self._txs.values():
                tx.alive = False

    # --------------------------------------------------------------------- links

    def _href(self, path: str) -> str:
        return self.base_url + path

    def _link(self, path: str, name: str | None = None) -> dict:
        link = {}
        if name is not None:
            link["name"] = name
        link["href"] = self._href(path)
        link["hints"] = {"allow": ["POST"]}
        return link

    def _verify_path(self, f: _Factor) -> str:
        if self.link_style == "documented":
            return f"{AUTHN}/factors/{f.id}/verify"
        return f"{AUTHN}/factors/{f.id}/verify/{f.vkey}"

    def _poll_path(self, f: _Factor, ch: dict) -> str:
        if self.link_style == "documented":
            return self._verify_path(f)
        return f"{AUTHN}/factors/{f.id}/transactions/{ch['txid']}/verify"

    def _resend_path(self, f: _Factor) -> str:
        return self._verify_path(f) + "/resend"

    # ------------------------------------------------------------------ rendering

    def _user_obj(self, u: _User, recovery_question: bool = False) -> dict:
        profile = {"login": u.login, "firstName": u.first_name, "lastName": u.last_name,
                   "locale": "en_US", "timeZone": "America/Los_Angeles"}
        if self.extra_members:
            profile["extra"] = {"note": "unknown member: clients must ignore it", "n": [1, 2]}
        obj = {"id": u.id, "passwordChanged": _iso(u.password_changed), "profile": profile}
        if recovery_question:
            obj["recovery_question"] = {"question": "Who's a major player in the cowboy scene?"}
        return obj

    def _factor_obj(self, f: _Factor, with_links: bool) -> dict:
        obj = {"id": f.id, "factorType": f.factor_type, "provider": f.provider,
               "vendorName": f.provider, "profile": dict(f.profile)}
        if with_links:
            obj["_links"] = {"verify": {"href": self._href(self._verify_path(f)),
                                       "hints": {"allow": ["POST"]}}}
        return obj

    def _cancel(self) -> dict:
        return self._link(f"{AUTHN}/cancel")

    def _head(self, tx: _Tx) -> dict:
        return {"stateToken": tx.token, "expiresAt": _iso(tx.expires), "status": tx.status}

    def _render(self, tx: _Tx) -> dict:
        u = self._users[tx.login]
        st = tx.status
        if st == "MFA_REQUIRED":
            body = self._head(tx)
            embedded = {"user": self._user_obj(u),
                        u.factor_key: [self._factor_obj(f, True) for f in u.factors],
                        "policy": {"allowRememberDevice": False,
                                   "rememberDeviceLifetimeInMinutes": 0,
                                   "rememberDeviceByDefault": False,
                                   "factorsPolicyInfo": {
                                       f.id: {"autoPushEnabled": False}
                                       for f in u.factors if f.kind == "push"}}}
            body["_embedded"] = embedded
            body["_links"] = {"cancel": self._cancel()}
            return body
        if st == "MFA_CHALLENGE":
            return self._render_challenge(tx, u)
        if st == "PASSWORD_WARN":
            body = self._head(tx)
            body["_embedded"] = {"user": self._user_obj(u), "policy": {
                "expiration": {"passwordExpireDays": u.password_expire_days},
                "complexity": self._complexity()}}
            body["_links"] = {"next": self._link(f"{AUTHN}/credentials/change_password",
                                                 "changePassword"),
                              "skip": self._link(f"{AUTHN}/skip", "skip"),
                              "cancel": self._cancel()}
            return body
        if st == "PASSWORD_EXPIRED":
            body = self._head(tx)
            body["_embedded"] = {"user": self._user_obj(u),
                                 "policy": {"complexity": self._complexity()}}
            body["_links"] = {"next": self._link(f"{AUTHN}/credentials/change_password",
                                                 "changePassword"),
                              "cancel": self._cancel()}
            return body
        if st == "MFA_ENROLL":
            body = self._head(tx)
            enroll = {"enroll": self._link(f"{AUTHN}/factors")}
            body["_embedded"] = {"user": self._user_obj(u), "factors": [
                {"factorType": ftype, "provider": prov, "vendorName": prov,
                 "_links": enroll, "status": "NOT_SETUP", "enrollment": "REQUIRED"}
                for ftype, prov in (("token:software:totp", "OKTA"), ("sms", "OKTA"),
                                    ("push", "OKTA"), ("question", "OKTA"))]}
            body["_links"] = {"cancel": self._cancel()}
            return body
        if st == "MFA_ENROLL_ACTIVATE":
            body = self._head(tx)
            fid = tx.challenge["enroll_id"] if tx.challenge else _okta_id("ost")
            body["_embedded"] = {"user": self._user_obj(u), "factor": {
                "id": fid, "factorType": "token:software:totp", "provider": "OKTA",
                "vendorName": "OKTA", "profile": {"credentialId": u.login},
                "_embedded": {"activation": {
                    "timeStep": 30, "sharedSecret": _rand(16, string.ascii_uppercase + "234567"),
                    "encoding": "base32", "keyLength": 6,
                    "_links": {"qrcode": {
                        "href": self._href(f"/api/v1/users/{u.id}/factors/{fid}/qr/"
                                           + _rand(42, _TOKEN_CHARS)),
                        "type": "image/png"}}}}}}
            body["_links"] = {"next": self._link(f"{AUTHN}/factors/{fid}/lifecycle/activate",
                                                 "activate"),
                              "cancel": self._cancel(),
                              "prev": self._link(f"{AUTHN}/previous")}
            return body
        if st == "RECOVERY":
            body = self._head(tx)
            body["recoveryType"] = "PASSWORD"
            body["_embedded"] = {"user": self._user_obj(u, recovery_question=True)}
            body["_links"] = {"next": self._link(f"{AUTHN}/recovery/answer", "answer"),
                              "cancel": self._cancel()}
            return body
        if st == "UNAUTHENTICATED":
            return {"stateToken": tx.token, "type": "SESSION_STEP_UP",
                    "expiresAt": _iso(tx.expires), "status": "UNAUTHENTICATED",
                    "_embedded": {
                        "target": {"type": "APP", "name": "salesforce", "label": "Corporate SFDC",
                                   "_links": {"logo": {
                                       "name": "medium",
                                       "href": self._href("/assets/img/logos/salesforce.png"),
                                       "type": "image/png"}}},
                        "authentication": {"protocol": "SAML2.0", "issuer": {
                            "id": "0oa2x5jOopNCpswjo0g4", "name": "Corporate SFDC",
                            "uri": "exk2x5ixHmk9MBnqz0g4"}}},
                    "_links": {"next": self._link(AUTHN, "authenticate")}}
        # A state this server does not model: present it the way every transaction looks.
        body = self._head(tx)
        body["_embedded"] = {"user": self._user_obj(u)}
        body["_links"] = {"cancel": self._cancel()}
        return body

    def _render_challenge(self, tx: _Tx, u: _User) -> dict:
        ch = tx.challenge or {}
        f = self._factor(u, ch.get("factor"))
        body = self._head(tx)
        if ch.get("result"):
            body["factorResult"] = ch["result"]
        if f.kind == "webauthn":
            body["challengeType"] = "FACTOR"
        factor = self._factor_obj(f, False)
        if f.kind == "push" and ch.get("result") == "WAITING" and u.push_number is not None \
                and ch.get("polls", 0) >= 1:
            # [D]: "the correct answer of the challenge will be provided in the polling
            # response" once the user is on the 3-number view.
            factor["_embedded"] = {"challenge": {"correctAnswer": u.push_number}}
        if f.kind == "webauthn":
            factor["_embedded"] = {"challenge": {"challenge": ch.get("nonce", ""),
                                                 "userVerification": "preferred",
                                                 "extensions": {}}}
        body["_embedded"] = {"user": self._user_obj(u), "factor": factor}
        links = {}
        if f.kind == "push" and ch.get("result") == "WAITING":
            links["next"] = self._link(self._poll_path(f, ch), "poll")
        else:
            links["next"] = self._link(self._verify_path(f), "verify")
        links["cancel"] = self._cancel()
        links["prev"] = self._link(f"{AUTHN}/previous")
        if f.kind in ("sms", "call", "push"):
            links["resend"] = [dict(self._link(self._resend_path(f), f.kind))]
        body["_links"] = links
        return body

    @staticmethod
    def _complexity() -> dict:
        # What this server enforces (newPassword >= 8 characters).
        return {"minLength": 8, "minLowerCase": 0, "minUpperCase": 0, "minNumber": 0,
                "minSymbol": 0}

    @staticmethod
    def _factor(u: _User, fid) -> _Factor:
        for f in u.factors:
            if f.id == fid:
                return f
        raise KeyError(fid)

    # ------------------------------------------------------------------ the flow

    def _new_tx(self, u: _User, status: str, steps: list[str]) -> _Tx:
        tx = _Tx(token="00" + _rand(40, _TOKEN_CHARS), login=u.login.lower(), status=status,
                 steps=steps, expires=time.time() + STATE_TOKEN_LIFETIME)
        self._txs[tx.token] = tx
        return tx

    def _success(self, tx: _Tx | None, u: _User) -> _Response:
        if tx is not None:
            tx.alive = False   # the stateToken is spent: later use gets E0000011
            tx.challenge = None
        token = "20111" + _rand(50, _TOKEN_CHARS)
        self.session_tokens.append(token)
        now = time.time()
        self._session_tokens[token] = _SessionToken(
            token=token, login=u.login.lower(), auth_time=int(now),
            expires=now + SESSION_TOKEN_LIFETIME, amr=list(tx.amr) if tx is not None else ["pwd"])
        return _Response(200, {"expiresAt": _iso(time.time() + SESSION_TOKEN_LIFETIME),
                               "status": "SUCCESS", "sessionToken": token,
                               "_embedded": {"user": self._user_obj(u)}})

    def _show(self, tx: _Tx) -> _Response:
        if tx.status == "SUCCESS":
            return self._success(tx, self._users[tx.login])
        return _Response(200, self._render(tx))

    def _advance(self, tx: _Tx) -> _Response:
        tx.challenge = None
        tx.status = tx.steps.pop(0) if tx.steps else "SUCCESS"
        return self._show(tx)

    def _find_user(self, username: str) -> _User | None:
        u = self._users.get(username.lower())
        if u is not None:
            return u
        # Okta also accepts the non-qualified short name ([D] request parameters).
        matches = [v for v in self._users.values()
                   if "@" not in username and v.login.lower().split("@", 1)[0] == username.lower()]
        return matches[0] if len(matches) == 1 else None

    def _primary(self, body: dict) -> _Response:
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            return _e0000004()
        u = self._find_user(username)
        if u is None:
            return _e0000004()
        if u.state == "LOCKED_OUT_HIDDEN":
            return _e0000004()   # [D] default policy hides lockout failures
        if u.state == "LOCKED_OUT":
            return _Response(200, {"status": "LOCKED_OUT", "_links": {
                "next": self._link(f"{AUTHN}/recovery/unlock", "unlock")}})
        if not secrets.compare_digest(password.encode(), u.password.encode()):
            return _e0000004()
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        mfa = ["MFA_REQUIRED"] if u.factors else []
        state = u.state
        if state == "PASSWORD_WARN":
            # [D]: only with warnBeforePasswordExpired explicitly true.
            plan = (["PASSWORD_WARN"] if options.get("warnBeforePasswordExpired") is True else []) \
                + mfa
        elif state == "PASSWORD_EXPIRED":
            # [D]: "Users are challenged for MFA (MFA_REQUIRED) before PASSWORD_EXPIRED if
            # they have an active Factor enrollment."
            plan = mfa + ["PASSWORD_EXPIRED"]
        elif state:
            plan = [state]
        else:
            plan = mfa
        if not plan:
            return self._success(None, u)
        # After the last planned state comes SUCCESS (_advance). Forced dead-end states
        # (MFA_ENROLL, RECOVERY, unknown ones, ...) never advance: their operations give
        # E0000079.
        tx = self._new_tx(u, plan[0], plan[1:])
        if tx.status == "MFA_ENROLL_ACTIVATE":
            tx.challenge = {"enroll_id": _okta_id("ost")}
        return self._show(tx)

    def _tx_for(self, body: dict) -> tuple[_Tx | None, _Response | None]:
        token = body.get("stateToken")
        tx = self._txs.get(token) if isinstance(token, str) else None
        if tx is None or not tx.alive or time.time() > tx.expires:
            return None, _e0000011()
        tx.expires = time.time() + STATE_TOKEN_LIFETIME   # sliding expiration [D]
        return tx, None

    @staticmethod
    def _factor_passed(tx: _Tx, f: _Factor) -> None:
        for method in ("mfa", _FACTOR_AMR[f.kind]):
            if method not in tx.amr:
                tx.amr.append(method)

    def _verify(self, tx: _Tx, u: _User, f: _Factor, body: dict) -> _Response:
        if tx.status not in ("MFA_REQUIRED", "MFA_CHALLENGE"):
            return _e0000079()
        kind = f.kind
        if kind in ("totp", "google_totp", "hardware_token"):
            code = body.get("passCode")
            if not isinstance(code, str) or not secrets.compare_digest(code.encode(),
                                                                       u.totp_code.encode()):
                return _e0000068(PASSCODE_MISMATCH)
            self._factor_passed(tx, f)
            return self._advance(tx)
        if kind in ("sms", "call"):
            code = body.get("passCode")
            if code is None or code == "":
                # [D]: omit passCode to send an OTP -> MFA_CHALLENGE
                tx.status = "MFA_CHALLENGE"
                tx.challenge = {"factor": f.id}
                return self._show(tx)
            if not isinstance(code, str) or not secrets.compare_digest(code.encode(),
                                                                       u.sms_code.encode()):
                return _e0000068(ANSWER_MISMATCH)
            self._factor_passed(tx, f)
            return self._advance(tx)
        if kind == "question":
            if body.get("answer") != QUESTION_ANSWER:
                return _e0000068(ANSWER_MISMATCH)
            self._factor_passed(tx, f)
            return self._advance(tx)
        if kind == "webauthn":
            if tx.challenge and tx.challenge.get("factor") == f.id and "signatureData" in body:
                return _e0000068(PASSCODE_MISMATCH)   # no authenticator can answer here
            tx.status = "MFA_CHALLENGE"
            tx.challenge = {"factor": f.id, "result": "CHALLENGE", "nonce": _rand(20)}
            return self._show(tx)
        # push
        ch = tx.challenge
        if ch and ch.get("factor") == f.id and ch.get("result") == "WAITING":
            return self._poll(tx, u, f, ch)   # POST to verify again = poll [D]
        return self._start_push(tx, f)

    def _start_push(self, tx: _Tx, f: _Factor) -> _Response:
        ch = {"factor": f.id, "txid": "v2mst." + _rand(22, _TOKEN_CHARS), "polls": 0,
              "result": "WAITING"}
        tx.status = "MFA_CHALLENGE"
        tx.challenge = ch
        if self.link_style == "opaque":
            self._routes[self._poll_path(f, ch)] = ("poll", tx.token, f.id, ch["txid"])
        return self._show(tx)

    def _poll(self, tx: _Tx, u: _User, f: _Factor, ch: dict) -> _Response:
        if ch.get("result") != "WAITING":
            return self._show(tx)
        ch["polls"] += 1
        if u.push == "never" or ch["polls"] <= u.push_wait_polls:
            return self._show(tx)
        if u.push == "approve":
            self._factor_passed(tx, f)
            return self._advance(tx)
        ch["result"] = "REJECTED" if u.push == "reject" else "TIMEOUT"
        return self._show(tx)

    def _change_password(self, tx: _Tx, u: _User, body: dict) -> _Response:
        if tx.status not in ("PASSWORD_EXPIRED", "PASSWORD_WARN"):
            return _e0000079()
        old, new = body.get("oldPassword"), body.get("newPassword")
        if not isinstance(old, str) or not isinstance(new, str):
            return _error(400, "E0000001", "Api validation failed: password",
                          ["newPassword: Password is required"])
        if not secrets.compare_digest(old.encode(), u.password.encode()):
            return _error(403, "E0000014", "Update of credentials failed",
                          ["oldPassword: The credentials provided were incorrect."])
        if len(new) < 8:
            return _error(403, "E0000080", "The password does meet the complexity requirements "
                          "of the current password policy.",
                          ["Passwords must have at least 8 characters"])
        if new == old:
            return _error(403, "E0000014", "Update of credentials failed",
                          ["password: Password cannot be your current password"])
        u.password = new
        u.password_changed = time.time()
        if u.state in ("PASSWORD_EXPIRED", "PASSWORD_WARN"):
            u.state = None
        return self._advance(tx)

    # ------------------------------------------------------------ request handling

    def _rate_headers(self, now: float) -> dict:
        minute, count = self._org_minute
        if minute != int(now // 60):
            minute, count = int(now // 60), 0
        limit = self.org_rate_limit or 600
        return {"X-Rate-Limit-Limit": str(limit),
                "X-Rate-Limit-Remaining": str(max(0, limit - count)),
                "X-Rate-Limit-Reset": str((minute + 1) * 60)}

    def _check_rate(self, username: str | None, now: float) -> _Response | None:
        minute = int(now // 60)
        m, count = self._org_minute
        if m != minute:
            m, count = minute, 0
        if self.org_rate_limit and count >= self.org_rate_limit:
            self._org_minute = (m, count)
            return self._throttled({"X-Rate-Limit-Limit": str(self.org_rate_limit),
                                    "X-Rate-Limit-Remaining": "0",
                                    "X-Rate-Limit-Reset": str((m + 1) * 60)})
        if username and self.user_rate_limit:
            hits = self._user_hits.setdefault(username.lower(), collections.deque())
            while hits and hits[0] <= now - 1.0:
                hits.popleft()
            if len(hits) >= self.user_rate_limit:
                self._org_minute = (m, count)
                return self._throttled({"X-Rate-Limit-Limit": str(self.user_rate_limit),
                                        "X-Rate-Limit-Remaining": "0",
                                        "X-Rate-Limit-Reset": str(math.ceil(hits[0] + 1.0))})
            hits.append(now)
        self._org_minute = (m, count + 1)
        return None

    @staticmethod
    def _throttled(headers: dict) -> _Response:
        return _error(429, "E0000047", "API call exceeded rate limit due to too many requests.",
                      headers=headers)

    def _failure(self, status: int, body, headers: dict) -> _Response:
        now = time.time()
        if body is None:
            if status == 429:
                resp = self._throttled({"X-Rate-Limit-Limit": str(self.user_rate_limit or 4),
                                        "X-Rate-Limit-Remaining": "0",
                                        "X-Rate-Limit-Reset": str(math.ceil(now) + 1)})
                resp.headers.update(headers)
                return resp
            if status == 500:
                resp = _error(500, "E0000009", "Internal Server Error")
                resp.headers.update(headers)
                return resp
            if status >= 500:
                html = (f"<html><head><title>{status}</title></head><body><center><h1>{status}"
                        "</h1></center><hr><center>nginx</center></body></html>\n")
                return _Response(status, html, headers, "text/html")
            return _Response(status, {}, headers)
        if isinstance(body, (str, bytes)):
            return _Response(status, body, headers, headers.pop("Content-Type", "text/plain"))
        return _Response(status, body, headers)

    def handle(self, method: str, target: str, raw: bytes | None,
               headers: dict | None = None) -> _Response:
        """Answer one request (called by the HTTP handler; raw=None: unreadable body)."""
        now = time.time()
        split = urllib.parse.urlsplit(target)
        path, query = split.path, split.query
        hdrs = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                parsed = None
        logged = parsed
        if raw and parsed is None and _content_type(hdrs) == "application/x-www-form-urlencoded":
            form = _parse_form(raw)   # logged like a JSON body (token requests)
            logged = form[0] if form else None
        with self._lock:
            resp = self._dispatch(method, path, query, raw, parsed, hdrs, now)
            entry = {"method": method, "path": path, "query": query, "body": logged,
                     "status": resp.status, "time": now,
                     "response": resp.body if isinstance(resp.body, dict) else None}
            self._log.append(entry)
            try:
                with open(self.request_log_file, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")
            except OSError:
                pass
        return resp

    def _dispatch(self, method: str, path: str, query: str, raw: bytes | None, body,
                  headers: dict, now: float) -> _Response:
        if self._fail:
            status, fbody, fheaders = self._fail.popleft()
            return self._failure(status, fbody, dict(fheaders))
        if path.startswith(OAUTH2 + "/"):
            resp = self._oauth2(method, path, query, raw, headers, now)
        elif path == AUTHN or path.startswith(AUTHN + "/"):
            resp = self._authn(method, path, raw, body, now)
        else:
            return _e0000007(path)
        for k, v in self._rate_headers(now).items():
            resp.headers.setdefault(k, v)
        return resp

    def _authn(self, method: str, path: str, raw: bytes | None, body, now: float) -> _Response:
        # Factor verify paths (both link styles) and push poll paths (opaque style) are
        # registered in self._routes; anything else under /api/v1/authn is a fixed operation.
        route = self._routes.get(path)
        fixed = (path in (AUTHN, f"{AUTHN}/cancel", f"{AUTHN}/skip", f"{AUTHN}/previous",
                          f"{AUTHN}/credentials/change_password", f"{AUTHN}/factors")
                 or path.startswith(f"{AUTHN}/recovery/")
                 or (path.startswith(f"{AUTHN}/factors/") and "/lifecycle/" in path))
        is_resend = (route is None and path.endswith("/resend")
                     and self._routes.get(path[:-len("/resend")], ("",))[0] == "verify")
        if route is None and not fixed and not is_resend:
            return _e0000007(path)
        if method != "POST":
            resp = _error(405, "E0000022",
                          "The endpoint does not support the provided HTTP method")
            resp.headers["Allow"] = "POST"
            return resp
        if raw is None or not isinstance(body, dict):
            return _e0000003()

        # Whose request is it? (for the per-username limit)
        if path == AUTHN and "stateToken" not in body:
            uname = body.get("username") if isinstance(body.get("username"), str) else None
            found = self._find_user(uname) if uname else None
            key = found.login if found else uname
        else:
            tok = body.get("stateToken")
            tx0 = self._txs.get(tok) if isinstance(tok, str) else None
            key = tx0.login if tx0 else None
        limited = self._check_rate(key, now)
        if limited is not None:
            return limited

        if path == AUTHN:
            if "stateToken" in body and "password" not in body:
                tx, err = self._tx_for(body)   # get transaction state [D]
                return err or self._show(tx)
            return self._primary(body)

        tx, err = self._tx_for(body)
        if err:
            return err
        u = self._users[tx.login]
        if path == f"{AUTHN}/cancel":
            tx.alive = False
            tx.challenge = None
            return _Response(200, {"_embedded": {}})
        if path == f"{AUTHN}/skip":
            if tx.status != "PASSWORD_WARN":
                return _e0000079()
            return self._advance(tx)
        if path == f"{AUTHN}/previous":
            if tx.status != "MFA_CHALLENGE":
                return _e0000079()
            tx.status, tx.challenge = "MFA_REQUIRED", None
            return self._show(tx)
        if path == f"{AUTHN}/credentials/change_password":
            return self._change_password(tx, u, body)
        if is_resend:
            return self._resend(tx, u, self._routes[path[:-len("/resend")]])
        if route is None:   # enroll, activate, recovery: not modelled here
            return _e0000079()
        if route[0] == "verify":
            if route[1] != tx.login:
                return _e0000007(route[2] + " (UserFactor)")
            return self._verify(tx, u, self._factor(u, route[2]), body)
        # poll
        _, token, fid, txid = route
        ch = tx.challenge
        if token != tx.token or not ch or ch.get("txid") != txid:
            return _e0000079()
        return self._poll(tx, u, self._factor(u, fid), ch)

    def _resend(self, tx: _Tx, u: _User, route: tuple) -> _Response:
        f = self._factor(u, route[2])
        if tx.status != "MFA_CHALLENGE" or not tx.challenge \
                or tx.challenge.get("factor") != f.id:
            return _e0000079()
        if f.kind == "push":
            return self._start_push(tx, f)
        return self._show(tx)

    # ------------------------------------------------------------------ OIDC ([O])

    def _oauth2(self, method: str, path: str, query: str, raw: bytes | None, headers: dict,
                now: float) -> _Response:
        as_id, _, rest = path[len(OAUTH2) + 1:].partition("/")
        endpoint = "/" + rest
        srv = self._auth_servers.get(as_id)
        if srv is None:
            # [O] well-known error example; the org authorization server (/oauth2/v1/...) is
            # not modelled, so it lands here too.
            return _e0000007(f"{as_id} (AuthorizationServer)")
        allowed = {"/.well-known/openid-configuration": ("GET",),
                   "/.well-known/oauth-authorization-server": ("GET",),
                   "/v1/authorize": ("GET",), "/v1/token": ("POST",), "/v1/keys": ("GET",),
                   "/v1/userinfo": ("GET", "POST")}.get(endpoint)
        if allowed is None:
            return _e0000007(path)
        if method not in allowed:
            resp = _error(405, "E0000022", "The endpoint does not support the provided HTTP method")
            resp.headers["Allow"] = ", ".join(allowed)
            return resp
        if endpoint.startswith("/.well-known/"):
            q = _parse_form(query) or ({}, set())
            cid = q[0].get("client_id")
            if cid is not None and cid not in self._clients:
                return self._invalid_client_id()
            return _Response(200, self._metadata(srv, endpoint.endswith("openid-configuration")))
        if endpoint == "/v1/keys":
            return _Response(200, {"keys": [_jwk(kid, key) for kid, key in srv.keys]},
                             {"Cache-Control": "max-age=86400, must-revalidate"})
        if endpoint == "/v1/authorize":
            return self._authorize(srv, query, now)
        if endpoint == "/v1/token":
            return self._token(srv, raw, headers, now)
        return self._userinfo(srv, headers, now)

    def _metadata(self, srv: _AuthServer, openid: bool) -> dict:
        """/.well-known/openid-configuration (openid=True) or oauth-authorization-server, in the
        member order of a real "default" server's document ([C], [O])."""
        base = self.issuer(srv.id)
        doc = {"issuer": base,
               "authorization_endpoint": f"{base}/v1/authorize",
               "token_endpoint": f"{base}/v1/token"}
        if openid:
            doc["userinfo_endpoint"] = f"{base}/v1/userinfo"
        doc["registration_endpoint"] = f"{self.base_url}{OAUTH2}/v1/clients"
        doc["jwks_uri"] = f"{base}/v1/keys"
        doc["response_types_supported"] = list(_RESPONSE_TYPES)
        doc["response_modes_supported"] = list(_RESPONSE_MODES)
        doc["grant_types_supported"] = list(_GRANT_TYPES)
        if openid:
            doc["subject_types_supported"] = ["public"]
            doc["id_token_signing_alg_values_supported"] = ["RS256"]
        doc["scopes_supported"] = list(srv.scopes)
        doc["token_endpoint_auth_methods_supported"] = list(_CLIENT_AUTH_METHODS)
        doc["claims_supported"] = list(_ID_TOKEN_CLAIMS if openid else _ACCESS_TOKEN_CLAIMS)
        doc["code_challenge_methods_supported"] = ["S256"]
        doc["introspection_endpoint"] = f"{base}/v1/introspect"
        doc["introspection_endpoint_auth_methods_supported"] = list(_CLIENT_AUTH_METHODS)
        doc["revocation_endpoint"] = f"{base}/v1/revoke"
        doc["revocation_endpoint_auth_methods_supported"] = list(_CLIENT_AUTH_METHODS)
        doc["end_session_endpoint"] = f"{base}/v1/logout"
        doc["request_parameter_supported"] = True
        doc["request_object_signing_alg_values_supported"] = list(_REQUEST_OBJECT_ALGS)
        doc["device_authorization_endpoint"] = f"{base}/v1/device/authorize"
        return doc

    @staticmethod
    def _invalid_client_id() -> _Response:
        # What Okta sends for an unknown client_id outside /authorize (seen in captures): the
        # Okta error shape, not RFC 6749's.
        return _Response(400, {"errorCode": "invalid_client",
                               "errorSummary": "Invalid value for 'client_id' parameter.",
                               "errorLink": "invalid_client",
                               "errorId": "oae" + _rand(22, _TOKEN_CHARS), "errorCauses": []})

    def _authorize(self, srv: _AuthServer, query: str, now: float) -> _Response:
        """GET /v1/authorize. Until client_id and redirect_uri are trusted, errors are an Okta
        error page (400, no redirect, [KB]); after that every error goes back to the
        redirect_uri with error, error_description and state ([O], [KB])."""
        parsed = _parse_form(query)
        q, dups = parsed if parsed else ({}, set())
        client = self._clients.get(q.get("client_id") or "")
        if client is None or "client_id" in dups:
            return _error_page("Invalid value for 'client_id' parameter.", "invalid_client")
        if q.get("redirect_uri") != client.redirect_uri or "redirect_uri" in dups:
            return _error_page("The 'redirect_uri' parameter must be a Login redirect URI in "
                               "the client app settings.")
        redirect_uri = client.redirect_uri
        state = q.get("state")
        response_type = q.get("response_type") or ""
        rtypes = frozenset(response_type.split())
        mode = q.get("response_mode")
        default_mode = "query" if rtypes == {"code"} else "fragment"

        def fail(error: str, description: str) -> _Response:
            params = [("error", error), ("error_description", description)]
            if state:
                params.append(("state", state))
            use = mode if mode in _RESPONSE_MODES else default_mode
            return self._authorize_reply(redirect_uri, use, params)

        if mode is not None and mode not in _RESPONSE_MODES:
            return fail("unsupported_response_mode",
                        "The response mode is not supported by the authorization server.")
        if not response_type:
            return fail("invalid_request", "The 'response_type' parameter is required.")
        if rtypes not in {frozenset(t.split()) for t in _RESPONSE_TYPES + ["token"]}:
            return fail("unsupported_response_type",
                        "The response type is not supported by the authorization server.")
        if rtypes != {"code"}:
            # A Native app with only the authorization_code grant (no implicit).
            return fail("unauthorized_client", "The client is not authorized to use the "
                        "provided grant type. Configured grant types: [authorization_code].")
        if dups:
            return fail("invalid_request",
                        f"The '{sorted(dups)[0]}' parameter must not be repeated.")
        scope = q.get("scope") or ""
        scopes = list(dict.fromkeys(scope.split()))
        if not scopes:
            return fail("invalid_scope", "The authorization server resource does not have any "
                        "configured default scopes, 'scope' must be provided.")
        if any(sc not in srv.scopes for sc in scopes):
            return fail("invalid_scope", "One or more scopes are not configured for the "
                        "authorization server resource.")
        if not state:
            return fail("invalid_request", "The 'state' parameter is required.")
        challenge = q.get("code_challenge")
        if not challenge:
            return fail("invalid_request", "PKCE code challenge is required when the token "
                        "endpoint authentication method is 'NONE'.")
        if q.get("code_challenge_method") != "S256":
            return fail("invalid_request", "Invalid value for 'code_challenge_method' "
                        "parameter. Supported values: [S256].")
        if not _pkce_value_ok(challenge):
            return fail("invalid_request", "Invalid value for 'code_challenge' parameter.")
        if client.authorization_server != srv.id:
            return fail("access_denied", "Policy evaluation failed for this request, please "
                        "check the policy configurations.")
        prompts = set((q.get("prompt") or "").split())
        if not prompts <= {"none", "login", "consent"} or ("none" in prompts and len(prompts) > 1):
            return fail("invalid_request", "Invalid value for 'prompt' parameter.")
        st = self._session_tokens.get(q.get("sessionToken") or "")
        usable = (st is not None and not st.used and now < st.expires
                  and st.login in self._users)
        if not usable:
            if "none" in prompts:
                return fail("login_required",
                            "The client specified not to prompt, but the user is not logged in.")
            return self._sign_in_page()   # interactive sign-in: nobody here to do it
        st.used = True                    # [SC] a sessionToken establishes one session, once
        code = _rand(43, _TOKEN_CHARS)
        self._codes[code] = _Code(
            code=code, client_id=client.client_id, authorization_server=srv.id,
            redirect_uri=redirect_uri, login=st.login, scopes=scopes, nonce=q.get("nonce"),
            challenge=challenge, auth_time=st.auth_time, amr=list(st.amr),
            expires=now + self.code_lifetime)
        return self._authorize_reply(redirect_uri, mode or default_mode,
                                     [("code", code), ("state", state)], session=True)

    @staticmethod
    def _authorize_reply(redirect_uri: str, mode: str, params: list, session: bool = False
                         ) -> _Response:
        headers = {}
        if session:
            # [SC] "Set-Cookie: sid=...; Path=/" on the redirect that used the sessionToken.
            headers["Set-Cookie"] = f"sid={_rand(25, _TOKEN_CHARS)}; Path=/; Secure; HttpOnly"
        if mode in ("query", "fragment"):
            sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
            headers["Location"] = redirect_uri + sep + urllib.parse.urlencode(params)
            headers["Referrer-Policy"] = "no-referrer"   # [O] response_mode details
            return _Response(302, "", headers, "text/html;charset=utf-8")
        if mode == "form_post":
            fields = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                             f'value="{html.escape(v)}"/>' for k, v in params)
            body = ("<!DOCTYPE html>\n<html><head><title>Redirecting</title></head>"
                    '<body onload="document.forms[0].submit()">'
                    f'<form method="post" action="{html.escape(redirect_uri)}">{fields}'
                    "</form></body></html>\n")
            return _Response(200, body, headers, "text/html;charset=utf-8")
        split = urllib.parse.urlsplit(redirect_uri)   # okta_post_message
        origin = f"{split.scheme}://{split.netloc}"
        body = ("<!DOCTYPE html>\n<html><head><title>Okta</title></head><body><script>"
                f"window.parent.postMessage({json.dumps(dict(params))}, {json.dumps(origin)});"
                "</script></body></html>\n")
        return _Response(200, body, headers, "text/html;charset=utf-8")

    @staticmethod
    def _sign_in_page() -> _Response:
        """Where Okta would show its hosted sign-in page (no usable session, prompt not none)."""
        body = ("<!DOCTYPE html>\n<html><head><title>Sign In</title></head><body>"
                '<div id="okta-sign-in">Sign In</div></body></html>\n')
        return _Response(200, body, {}, "text/html;charset=utf-8")

    def _token(self, srv: _AuthServer, raw: bytes | None, headers: dict, now: float
               ) -> _Response:
        """POST /v1/token, grant_type=authorization_code with PKCE, public client ([O])."""
        if _content_type(headers) != "application/x-www-form-urlencoded" or raw is None:
            return _oauth_error(400, "invalid_request", "The request must use the "
                                "application/x-www-form-urlencoded content type.")
        parsed = _parse_form(raw)
        if parsed is None:
            return _oauth_error(400, "invalid_request", "The request body is not well-formed.")
        form, dups = parsed
        client_id = form.get("client_id")
        if not client_id:
            return _oauth_error(401, "invalid_client", "No client credentials found.")
        client = self._clients.get(client_id)
        if client is None:
            return self._invalid_client_id()
        if dups:
            return _oauth_error(400, "invalid_request",
                                f"The '{sorted(dups)[0]}' parameter must not be repeated.")
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "The 'grant_type' parameter is required.")
        if grant_type not in _GRANT_TYPES + ["client_credentials"]:
            return _oauth_error(400, "unsupported_grant_type", "The authorization grant type is "
                                "not supported by the authorization server. Configured grant "
                                f"types: [{', '.join(_GRANT_TYPES)}].")
        if grant_type not in NATIVE_GRANT_TYPES:
            return _oauth_error(400, "unauthorized_client", "The client is not authorized to use "
                                "the provided grant type. Configured grant types: "
                                f"[{', '.join(NATIVE_GRANT_TYPES)}].")
        rec = self._codes.get(form.get("code") or "")
        invalid_code = "The authorization code is invalid or has expired."
        if rec is None or rec.used:
            return _oauth_error(400, "invalid_grant", invalid_code)
        rec.used = True          # one use: any presentation spends it
        if now >= rec.expires or rec.client_id != client_id \
                or rec.authorization_server != srv.id:
            return _oauth_error(400, "invalid_grant", invalid_code)
        if form.get("redirect_uri") != rec.redirect_uri:
            return _oauth_error(400, "invalid_grant", "The 'redirect_uri' does not match the "
                                "redirection URI used in the authorization request.")
        verifier = form.get("code_verifier")
        if not verifier:
            return _oauth_error(400, "invalid_request", "PKCE code verifier is required when the "
                                "parameter code_challenge is included in the authorization "
                                "request.")
        if not _pkce_value_ok(verifier) or not secrets.compare_digest(_s256(verifier),
                                                                      rec.challenge):
            return _oauth_error(400, "invalid_grant", "PKCE verification failed.")
        u = self._users.get(rec.login)
        if u is None:
            return _oauth_error(400, "invalid_grant", invalid_code)
        return _Response(200, self._issue_tokens(srv, client, u, rec, now))

    def _issue_tokens(self, srv: _AuthServer, client: _OIDCClient, u: _User, rec: _Code,
                      now: float) -> dict:
        kid, key = srv.keys[-1]
        issuer = self.issuer(srv.id)
        iat = int(now)
        exp = iat + TOKEN_LIFETIME
        # Access token of a custom authorization server ([O] payload, [C]).
        access_token = _sign_jwt(kid, key, {
            "ver": 1, "jti": "AT." + _rand(43, _TOKEN_CHARS), "iss": issuer,
            "aud": f"api://{srv.id}", "iat": iat, "exp": exp, "cid": client.client_id,
            "uid": u.id, "scp": list(rec.scopes), "auth_time": rec.auth_time, "sub": u.login})
        self._access_tokens[access_token] = {"login": u.login.lower(), "scopes": list(rec.scopes),
                                             "exp": exp, "as": srv.id}
        body = {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                "access_token": access_token, "scope": " ".join(rec.scopes)}
        if "openid" in rec.scopes:
            body["id_token"] = _sign_jwt(kid, key, self._id_token_claims(
                u, rec, issuer, client.client_id, iat, exp, access_token))
        return body

    def _id_token_claims(self, u: _User, rec: _Code, issuer: str, aud: str, iat: int, exp: int,
                         access_token: str) -> dict:
        """The claims, in the order of a real Okta ID token ([C]): scope-dependent ones ([O])
        only for their scope; `groups` (names) for the groups scope, when there are any."""
        scopes = rec.scopes
        claims: dict = {"sub": u.id}
        name = " ".join(p for p in (u.first_name, u.last_name) if p)
        if "profile" in scopes and name:
            claims["name"] = name
        if "email" in scopes:
            claims["email"] = u.email
        claims.update({"ver": 1, "iss": issuer, "aud": aud, "iat": iat, "exp": exp,
                       "jti": "ID." + _rand(43, _TOKEN_CHARS), "amr": list(rec.amr),
                       "idp": self.org_id})
        if rec.nonce is not None:
            claims["nonce"] = rec.nonce
        if "profile" in scopes:
            claims["preferred_username"] = u.login
        claims["auth_time"] = rec.auth_time
        # OIDC Core 3.1.3.6: left half of SHA-256 of the access token's ASCII octets.
        claims["at_hash"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16])
        if "groups" in scopes and u.groups:
            claims["groups"] = list(u.groups)
        return claims

    def _userinfo(self, srv: _AuthServer, headers: dict, now: float) -> _Response:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        rec = self._access_tokens.get(token)
        if rec is None or now >= rec["exp"] or rec["as"] != srv.id \
                or rec["login"] not in self._users:
            return _Response(401, None, {"WWW-Authenticate": 'Bearer error="invalid_token", '
                                         'error_description="The access token is invalid."'})
        u, scopes = self._users[rec["login"]], rec["scopes"]
        if "openid" not in scopes:
            return _Response(403, None, {"WWW-Authenticate": 'Bearer error="insufficient_scope", '
                                         'error_description="The access token must provide '
                                         'access to at least one of these scopes - profile, '
                                         'email, address or phone"'})
        claims: dict = {"sub": u.id}
        if "profile" in scopes:
            name = " ".join(p for p in (u.first_name, u.last_name) if p)
            claims.update({"name": name, "locale": "en_US", "preferred_username": u.login,
                           "given_name": u.first_name, "family_name": u.last_name,
                           "zoneinfo": "America/Los_Angeles",
                           "updated_at": int(u.password_changed)})
        if "email" in scopes:
            claims.update({"email": u.email, "email_verified": True})
        if "groups" in scopes and u.groups:
            claims["groups"] = list(u.groups)
        return _Response(200, claims)


# ------------------------------------------------------------------------ HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, okta: OktaServer, ctx: ssl.SSLContext):
        self.okta = okta
        self.ctx = ctx
        self.stopping = False
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # The TLS handshake happens in the connection's own thread (first read).
        ssock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._conns_lock:
            self._conns.add(ssock)
        return ssock, addr

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return   # client went away, bad handshake, ...
        try:
            import traceback
            with open(self.okta.server_log, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} error serving {client_address}:\n")
                traceback.print_exc(file=f)
        except OSError:
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    timeout = 30

    def version_string(self) -> str:
        return "nginx"

    def log_message(self, format, *args) -> None:
        pass

    def _read_body(self) -> bytes | None:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return None
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        data = self.rfile.read(n)
        return data if len(data) == n else None

    def _serve(self) -> None:
        srv: _HTTPServer = self.server
        if srv.stopping:
            self.close_connection = True
            return
        raw = self._read_body()
        if raw is None:
            self.close_connection = True
        resp = srv.okta.handle(self.command, self.path, raw, dict(self.headers.items()))
        if srv.stopping:
            self.close_connection = True
            return
        if isinstance(resp.body, dict) or isinstance(resp.body, list):
            payload = json.dumps(resp.body).encode()
        elif isinstance(resp.body, str):
            payload = resp.body.encode()
        elif isinstance(resp.body, bytes):
            payload = resp.body
        else:
            payload = b""
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Okta-Request-Id", _rand(27, _TOKEN_CHARS))
        if "Cache-Control" not in resp.headers:
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Pragma", "no-cache")
            self.send_header("Expires", "0")
        for k, v in resp.headers.items():
            self.send_header(k, str(v))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


# ---------------------------------------------------------------------------------- CLI


def _parse_user(spec: str) -> dict:
    fields = spec.split(":")
    if len(fields) < 2 or len(fields) > 4 or not fields[0] or not fields[1]:
        raise argparse.ArgumentTypeError(
            f"--user {spec!r}: expected LOGIN:PASSWORD[:FACTOR,FACTOR...[:STATE]]")
    fields += [""] * (4 - len(fields))
    return {"login": fields[0], "password": fields[1],
            "factors": [f for f in fields[2].split(",") if f], "state": fields[3] or None}


def _parse_oidc_client(spec: str) -> tuple:
    fields = spec.split(",")
    if len(fields) not in (2, 3) or not all(fields):
        raise argparse.ArgumentTypeError(
            f"--oidc-client {spec!r}: expected CLIENT_ID,REDIRECT_URI[,AUTHORIZATION_SERVER]")
    return tuple(fields)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="serve until SIGTERM/SIGINT")
    sp.add_argument("--workdir", required=True)
    sp.add_argument("--port", type=int, default=0)
    sp.add_argument("--user", action="append", type=_parse_user, default=[])
    sp.add_argument("--link-style", choices=("opaque", "documented"), default="opaque")
    sp.add_argument("--user-rate-limit", type=int, default=4)
    sp.add_argument("--group", action="append", default=[], metavar="LOGIN:GROUP",
                    help="add GROUP to the groups of --user LOGIN")
    sp.add_argument("--oidc-client", action="append", type=_parse_oidc_client, default=[],
                    metavar="CLIENT_ID,REDIRECT_URI[,AUTHORIZATION_SERVER]")
    args = ap.parse_args(argv)

    server = OktaServer(args.workdir, args.port or None, link_style=args.link_style,
                        user_rate_limit=args.user_rate_limit)
    users = {}
    for u in args.user:
        groups = [g.split(":", 1)[1] for g in args.group
                  if ":" in g and g.split(":", 1)[0] == u["login"]]
        users[u["login"]] = server.add_user(u["login"], u["password"], factors=u["factors"],
                                            state=u["state"], groups=groups)
    for login in {g.split(":", 1)[0] for g in args.group} - set(users):
        ap.error(f"--group {login}:...: no --user {login}")
    for client in args.oidc_client:
        server.add_oidc_client(*client)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    info = {"base_url": server.base_url, "ca_file": str(server.ca_file),
            "request_log": str(server.request_log_file), "pid": os.getpid(), "users": users,
            "factors": {login: server.factor_ids(login) for login in users},
            "oidc_clients": {c[0]: {"redirect_uri": c[1], "issuer": server.issuer(*c[2:])}
                             for c in args.oidc_client}}
    (server.workdir / "server.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info), flush=True)
    while not done.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
