"""An HTTPS server that behaves like "the MFA API on the password grant": the token endpoint
answers a correct password with `mfa_required` and an `mfa_token`, and the client finishes the
sign-in with a challenge and the `http://auth0.com/oauth/grant-type/mfa-otp` or `.../mfa-oob`
grant. Two dialects:

* dialect="okta": Okta Identity Engine "direct authentication" on a custom authorization server
  (issuer `{base}/oauth2/default`; `authorization_server=""` gives the org server, issuer
  `{base}`, endpoints `{base}/oauth2/v1/...`): `POST {issuer}/v1/token`, `POST
  {issuer}/v1/challenge` with `challenge_types_supported` and `channel_hint`, Okta Verify push
  with or without a number challenge (`binding_method` `transfer`), SMS (`prompt`), OTP.
* dialect="auth0": Auth0's "Authenticate using the Resource Owner Password Flow with MFA"
  (issuer `{base}/`, with the trailing slash Auth0 uses): `POST /oauth/token`, `GET
  /mfa/authenticators` (Bearer mfa_token), `POST /mfa/challenge`, Guardian push, SMS, OTP.

Like okta.py it is a stand-in for a cloud service: HTTPS on 127.0.0.1 with a CA made for the run
(testpki.py; not in the system trust store), documented JSON member for member, per-user scripted
state, and a request log a test can assert on. It runs in a background thread of the test
process, or on its own:

    python3 Tests/Integration/support/mfa_api.py serve --dialect okta --workdir DIR [--port N]
        [--client-id ID[:SECRET]] [--user LOGIN:PASSWORD[:KEY=VALUE,...]]
    (KEY: otp, totp_secret, push, push_polls, number_challenge, sms, groups=A+B, name, email)

Usage in a test::

    sys.path.insert(0, "Tests/Integration/support")
    from mfa_api import MFAAPIServer, MFA_OTP, MFA_OOB

    with MFAAPIServer(tmp_path / "idp", dialect="okta", client_id="0oaCLOUDLOGIN") as idp:
        idp.add_user("alice@example.com", "Secret123")                  # no MFA: 200 tokens
        idp.add_user("bob@example.com", "Secret123", otp="123456")       # OTP, a fixed code
        idp.add_user("carol@example.com", "Secret123", push="approve", push_polls=2,
                     number_challenge="42")                            # Okta Verify, 3rd poll ok
        idp.add_user("dave@example.com", "Secret123", sms="654321")      # SMS: binding_code
        ... client with issuer = idp.issuer, trusting only idp.ca_file ...
        assert [r["grant_type"] for r in idp.requests() if r["endpoint"] == "token"] == [...]

Test hooks: set_push(), set_otp(), slow_down(), expire_mfa_tokens(), expire_oob_codes(),
fail_next(), stop()/start() (the server goes away mid-MFA and comes back on the same port with
the same state), totp(), sms_sent(), issued() (every mfa_token, oob_code, access and ID token
handed out, so a test can search a client's output for them), requests()/mark()/
requests_since().

Sources (what each answer follows; cited again next to each handler)
--------------------------------------------------------------------
[OK-OTP] Okta, "Configure direct authentication grant types", MFA OTP flow:
     https://developer.okta.com/docs/guides/configure-direct-auth-grants/bmfaotp/main/
     (stored copy: okta/okta-developer-docs, packages/@okta/vuepress-site/docs/guides/
     configure-direct-auth-grants/main/bmfaotp/use-flow.md). Password grant request (form:
     client_id, scope, grant_type=password, username, password); HTTP 403 {"error":
     "mfa_required", "error_description": "Verify with an additional authenticator to complete
     the sign-in process.", "mfa_token"}; second request grant_type=mfa-otp with otp and
     mfa_token (no /challenge call); token answer {"token_type", "expires_in": 3600,
     "access_token", "scope", "id_token"}.
[OK-PUSH] Same guide, "Okta Verify Push with MFA":
     https://developer.okta.com/docs/guides/configure-direct-auth-grants/dmfaoobov/main/
     (.../main/dmfaoobov/use-flow.md). POST /oauth2/v1/challenge (form: client_id, mfa_token,
     challenge_types_supported=http://auth0.com/oauth/grant-type/mfa-oob, channel_hint=push);
     200 {"challenge_type", "oob_code", "expires_in": 300, "interval": 5, "channel": "push",
     "binding_method": "none"} or, with number challenge, "binding_method": "transfer",
     "binding_code": "95"; polls with grant_type=mfa-oob, oob_code, mfa_token; HTTP 400
     {"error": "authorization_pending", "error_description": "No user response received on the
     out-of-band authenticator yet. Continue polling to wait for a response."}; "Supported
     values: http://auth0.com/oauth/grant-type/mfa-otp and .../mfa-oob"; "If the access policy
     requires factors that aren't included, an error is returned."
[OK-SMS] Same guide, "Phone authenticator with MFA using SMS or Voice":
     https://developer.okta.com/docs/guides/configure-direct-auth-grants/fmfaoobsv/main/
     (.../main/fmfaoobsv/use-flow.md). channel_hint sms|voice; 200 {"challenge_type",
     "oob_code", "expires_in": 300, "channel": "sms", "binding_method": "prompt"} (no
     interval); the token request carries oob_code and binding_code (the example has no
     mfa_token, so it is optional here).
[OK-PR] okta/okta-developer-docs pull request 4351 ("number challenge update"): interval "in
     seconds to poll (default is 5)".
[OK-SDK] Okta's own Direct Authentication SDKs: okta/okta-mobile-swift
     (Sources/OktaDirectAuth/Internal/Requests/ChallengeRequest.swift: the challenge endpoint
     is the token endpoint with /token replaced by /challenge, and the SDK sends no
     channel_hint; .../Step Handlers/OOBStepHandler.swift: poll on authorization_pending, add
     5 s on slow_down, anything else is final; AuthFoundation's OAuth2ServerError knows the
     codes "invalid_challenge_types_supported", "oob_rejected", "invalid_otp",
     "direct_auth_authorization_pending"); okta/okta-mobile-kotlin's direct-auth test
     fixtures ({"challenge_type": ".../mfa-otp"} as the challenge answer for OTP; "abc is not
     a valid channel hint").
[A0-ROPG] Auth0, "Authenticate Using the Resource Owner Password Flow with MFA":
     https://auth0.com/docs/secure/multi-factor-authentication/authenticate-using-ropg-flow-with-mfa
     (stored copy: auth0/docs-v2, main/docs/secure/multi-factor-authentication/
     authenticate-using-ropg-flow-with-mfa.mdx). {"error": "mfa_required", "error_description":
     "Multifactor authentication required", "mfa_token"}; GET /mfa/authenticators with
     "authorization: Bearer MFA_TOKEN" answers an array of {"id", "authenticator_type",
     "active", "oob_channel", "name"}; mfa-audience tokens live 10 minutes; OTP codes expire
     after 5 minutes, cannot be used twice, and wrong codes are limited by a bucket of 10
     attempts refilled once every 6 minutes.
[A0-OTP] https://auth0.com/docs/secure/multi-factor-authentication/authenticate-using-ropg-flow-with-mfa/enroll-and-challenge-otp-authenticators
     ({"id": "totp|dev_...", "authenticator_type": "otp", "active": true}; grant mfa-otp with
     client_id, client_secret, mfa_token, otp; answer {"id_token", "access_token",
     "expires_in": 600, "scope", "token_type"}).
[A0-SMS] .../enroll-challenge-sms-voice-authenticators ({"id": "sms|dev_...",
     "authenticator_type": "oob", "active": true, "oob_channel": "sms", "name":
     "XXXXXXXX8730"}; POST /mfa/challenge JSON {client_id, client_secret, challenge_type: "oob",
     authenticator_id, mfa_token} -> {"challenge_type": "oob", "oob_code", "binding_method":
     "prompt"}; grant mfa-oob with oob_code and binding_code).
[A0-PUSH] .../enroll-and-challenge-push-authenticators ({"id": "push|dev_...",
     "authenticator_type": "oob", "active": true, "oob_channel": "auth0", "name": "user's
     device name"}; push users are also enrolled in OTP; challenge answer {"challenge_type":
     "oob", "oob_code"}; polling: authorization_pending {"error_description": "Authorization
     pending: please repeat the request in a few seconds."}, slow_down "if the polling is too
     frequent", tokens, invalid_grant "if the challenge has been rejected").
[A0-API] Auth0 Authentication API reference: https://auth0.com/docs/api/authentication/multi-factor-authentication/request-mfa-challenge
     (challenge_type is a whitespace-separated list of oob/otp; authenticator_id optional;
     unsupported_challenge_type), .../verify-with-out-of-band (rejected -> invalid_grant, final;
     pending -> authorization_pending; too frequent -> slow_down), .../verify-mfa-with-otp,
     .../list-authenticators.
[A0-SDK] auth0/Auth0.Android, AuthenticationException.kt (pull request 664, "tested
     manually"): invalid_grant "Invalid otp_code.", "Invalid binding_code.", "MFA Authorization
     rejected."; expired_token "mfa_token is expired"; invalid_grant "Malformed mfa_token";
     too_many_attempts; invalid_grant "Wrong email or password.". Auth0.swift's tests use the
     same strings.
[A0-DRAFT] fiddur/docs OauthMfaErrors.md (a draft of Auth0's MFA error list): invalid_request
     "binding_code is required", "mfa_token not issued to this client"; expired_token
     "${tokenName} is expired" (403); unsupported_challenge_type.
[A0-DISC] Auth0 tenants' /.well-known/openid-configuration as captured in public code: issuer
     with a trailing slash, token_endpoint {domain}/oauth/token, mfa_challenge_endpoint
     {domain}/mfa/challenge, jwks_uri {domain}/.well-known/jwks.json, no grant_types_supported.
[C]  okta.py's sources for Okta's discovery document, /v1/keys and ID-token shapes.

Where this server knowingly differs or guesses (docs/facts.md, "The MFA API on the password
grant", marks the same things as inferred)
* HTTP statuses the pages do not give: see STATUS below (Okta: RFC 6749/8628's 400 for every
  token-endpoint error; Auth0: 403 for invalid_grant/expired_token, 400 for
  authorization_pending, 429 for slow_down and too_many_attempts). A client must branch on
  `error`, not on the status; `status_overrides` changes any of them.
* Okta's answers to a rejected push, a wrong OTP or binding code, an expired mfa_token or
  oob_code are not documented: here invalid_grant (rejection: `reject_error`, default
  invalid_grant, can be set to "oob_rejected"/"access_denied" to prove a client treats any
  other error as final), expired_token for an oob_code past expires_in, invalid_grant for an
  expired or unknown mfa_token; Okta's descriptions here are this server's words.
* Auth0's descriptions for slow_down, too_many_attempts and an expired oob_code are this
  server's words (the codes are documented).
* Access tokens are opaque random strings; no refresh tokens; no userinfo; JWKS keys carry no
  x5c. The recovery-code authenticator is listed (Auth0 lists it) but its grant is not modelled
  (400 unsupported_grant_type).
* Too many wrong codes (Auth0): after `max_failed_attempts` (10) wrong otp/binding_codes of a
  user, every otp/binding_code answer is 429 too_many_attempts until reset_attempts(); the
  bucket never refills. Okta: no limit.
* A fixed `otp` code can be used again (a test sets it); a `totp_secret` code cannot be used
  twice in the same 30-second step ([A0-ROPG] "cannot be used again").
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import hmac
import itertools
import json
import os
import pathlib
import secrets
import signal
import socket
import ssl
import string
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from testpki import generate_pki, rsa_key

MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
MFA_OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
MFA_RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
PASSWORD = "password"
DIALECTS = ("auth0", "okta")
PUSH_OUTCOMES = ("approve", "reject", "never")
MAX_BODY = 1 << 20

# HTTP status per error code and dialect (see the module docstring: only Okta's 403
# mfa_required and 400 authorization_pending are documented, [OK-OTP] [OK-PUSH]).
STATUS = {
    "okta": {"mfa_required": 403, "authorization_pending": 400, "slow_down": 400,
             "invalid_grant": 400, "expired_token": 400, "invalid_request": 400,
             "invalid_client": 401, "unsupported_grant_type": 400, "invalid_scope": 400,
             "invalid_challenge_types_supported": 400, "oob_rejected": 400, "access_denied": 400,
             "unauthorized_client": 400},
    "auth0": {"mfa_required": 403, "authorization_pending": 400, "slow_down": 429,
              "invalid_grant": 403, "expired_token": 403, "invalid_request": 400,
              "invalid_client": 401, "unsupported_grant_type": 400, "too_many_attempts": 429,
              "unsupported_challenge_type": 400, "access_denied": 403, "oob_rejected": 403,
              "unauthorized_client": 403},
}

# Descriptions. Documented ones carry their source; the others are this server's words.
TEXT = {
    "okta": {
        "mfa_required": "Verify with an additional authenticator to complete the sign-in "
                        "process.",                                              # [OK-OTP]
        "pending": "No user response received on the out-of-band authenticator yet. Continue "
                   "polling to wait for a response.",                            # [OK-PUSH]
        "bad_password": "The credentials provided were invalid.",
        "slow_down": "The client is polling too quickly. Slow down.",
        "bad_otp": "The one-time passcode is invalid.",
        "bad_binding": "The binding code is invalid.",
        "rejected": "The user rejected the out-of-band authentication request.",
        "mfa_token": "The mfa_token is invalid or has expired.",
        "oob_expired": "The oob_code has expired.",
        "oob_unknown": "The oob_code is invalid.",
        "binding_required": "The 'binding_code' parameter is required.",
        "other_client": "The mfa_token was not issued to this client.",
    },
    "auth0": {
        "mfa_required": "Multifactor authentication required",                   # [A0-ROPG]
        # [A0-PUSH]
        "pending": "Authorization pending: please repeat the request in a few seconds.",
        "bad_password": "Wrong email or password.",                              # [A0-SDK]
        "slow_down": "You are polling faster than allowed. Try again in a few seconds.",
        "bad_otp": "Invalid otp_code.",                                          # [A0-SDK]
        "bad_binding": "Invalid binding_code.",                                  # [A0-SDK]
        "rejected": "MFA Authorization rejected.",                               # [A0-SDK]
        "mfa_token": "mfa_token is expired",                                     # [A0-SDK]
        "malformed": "Malformed mfa_token",                                      # [A0-SDK]
        "oob_expired": "oob_code is expired",                                    # [A0-DRAFT]
        "oob_unknown": "Invalid oob_code.",
        "binding_required": "binding_code is required",                          # [A0-DRAFT]
        "other_client": "mfa_token not issued to this client",                   # [A0-DRAFT]
        "too_many": "Too many failed attempts. Please try again later.",
    },
}

SECRET_FIELDS = frozenset({"password", "client_secret", "otp", "binding_code", "recovery_code",
                           "client_assertion"})
_ALNUM = string.ascii_letters + string.digits
_TOKEN_CHARS = _ALNUM + "-_"


def _rand(n: int, chars: str = _ALNUM) -> str:
    return "".join(secrets.choice(chars) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _same(a: str, b: str) -> bool:
    """A constant-time comparison of two strings; hmac.compare_digest refuses str with non-ASCII
    characters (a password "é" would make the handler fail and the connection close empty)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def totp_code(secret_b32: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (HMAC-SHA-1, 30-second steps, 6 digits) for a base32 secret."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


# ------------------------------------------------------------------------------- model


@dataclass
class _User:
    login: str
    password: str
    sub: str
    name: str
    email: str
    groups: list
    otp: str | None            # a fixed code
    totp_secret: str | None    # base32: RFC 6238 codes
    push: str | None           # approve | reject | never
    push_polls: int            # polls answered authorization_pending before the outcome
    number_challenge: str | None
    sms: str | None            # the code "sent" by SMS (binding_code)
    ids: dict                  # authenticator kind -> id
    failed: int = 0
    used_steps: set = field(default_factory=set)

    @property
    def has_mfa(self) -> bool:
        return bool(self.otp or self.totp_secret or self.push or self.sms)

    @property
    def has_otp(self) -> bool:
        return bool(self.otp or self.totp_secret)


@dataclass
class _MfaToken:
    token: str
    n: int                     # fingerprint shown in the request log
    login: str
    client_id: str
    scope: str
    expires: float


@dataclass
class _Oob:
    code: str
    n: int
    login: str
    client_id: str
    mfa_token: str
    kind: str                  # push | sms
    expires: float
    binding_code: str | None   # transfer (number challenge) or the SMS code (prompt)
    polls: int = 0
    last_poll: float = 0.0
    outcome: str | None = None  # approved | rejected (sticky once reached)
    push: str = "approve"
    push_polls: int = 0


@dataclass
class _Client:
    client_id: str
    secret: str | None


@dataclass
class _Response:
    status: int
    body: object = None        # dict/list (JSON), str/bytes (raw), None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"


# ------------------------------------------------------------------------------ server


class MFAAPIServer:
    """The MFA API on the password grant, Okta or Auth0 dialect, on https://127.0.0.1:PORT."""

    def __init__(self, workdir: pathlib.Path | str, port: int | None = None, *,
                 dialect: str = "auth0", client_id: str = "cloudlogin-test",
                 client_secret: str | None = None, authorization_server: str = "default",
                 interval: int = 5, oob_expires_in: int = 300,
                 mfa_token_lifetime: float | None = None, reject_error: str = "invalid_grant",
                 enforce_interval: bool = False, max_failed_attempts: int = 10,
                 status_overrides: dict | None = None):
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}")
        if authorization_server and "/" in authorization_server:
            raise ValueError("authorization_server must be a single path segment or empty")
        self.workdir = pathlib.Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dialect = dialect
        self.port = port or 0
        self.authorization_server = authorization_server if dialect == "okta" else ""
        self.interval = interval                  # [OK-PUSH] "interval": 5
        self.oob_expires_in = oob_expires_in      # [OK-PUSH] "expires_in": 300
        # [A0-ROPG] mfa-audience tokens live 10 minutes; Okta does not say (5 minutes here).
        self.mfa_token_lifetime = (mfa_token_lifetime if mfa_token_lifetime is not None
                                   else (600.0 if dialect == "auth0" else 300.0))
        self.reject_error = reject_error
        self.enforce_interval = enforce_interval
        self.max_failed_attempts = max_failed_attempts if dialect == "auth0" else 0
        self.status = dict(STATUS[dialect])
        self.status.update(status_overrides or {})
        self.text = TEXT[dialect]
        self.ca_file = self.workdir / "ca.pem"
        self.cert_file = self.workdir / "server.pem"
        self.key_file = self.workdir / "server.key"
        self.request_log_file = self.workdir / "requests.jsonl"
        self.server_log = self.workdir / "server.log"
        self.base_url = ""

        self._lock = threading.RLock()
        self._clients: dict[str, _Client] = {}
        self._users: dict[str, _User] = {}        # key: login.lower()
        self._mfa_tokens: dict[str, _MfaToken] = {}
        self._oobs: dict[str, _Oob] = {}
        self._ids = itertools.count(1)
        self._log: list[dict] = []
        self._fail: collections.deque = collections.deque()
        self._slow_down: dict[str, int] = {}      # login.lower() -> polls still to slow down
        self._sms_sent: dict[str, list] = collections.defaultdict(list)
        self._issued: list[tuple[str, str, str]] = []   # (login, kind, value)
        self._keys = [self._new_key(), self._new_key()]   # the second one signs
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_client(client_id, client_secret)
        self.client_id = client_id

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._httpd is not None:
            return
        if not self.ca_file.exists():
            generate_pki(self.ca_file, self.cert_file, self.key_file, f"MFA API ({self.dialect})")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        httpd = _HTTPServer(("127.0.0.1", self.port), _Handler, self, ctx)
        self.port = httpd.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mfa-api-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Go away: close the listening socket and every open connection (a client gets
        "connection refused" or a reset). Users, mfa_tokens, oob_codes and the log are kept;
        start() serves them again on the same port with the same CA."""
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

    def __enter__(self) -> "MFAAPIServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this run's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # ------------------------------------------------------------------------ URLs

    @property
    def issuer(self) -> str:
        """Okta: {base}/oauth2/default (or {base} for the org server); Auth0: {base}/."""
        if self.dialect == "auth0":
            return self.base_url + "/"
        if self.authorization_server:
            return f"{self.base_url}/oauth2/{self.authorization_server}"
        return self.base_url

    @property
    def _prefix(self) -> str:
        """Path prefix of the Okta endpoints: /oauth2/default/v1 or /oauth2/v1."""
        if self.authorization_server:
            return f"/oauth2/{self.authorization_server}/v1"
        return "/oauth2/v1"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def token_endpoint(self) -> str:
        return self.base_url + self._paths()["token"]

    @property
    def challenge_endpoint(self) -> str:
        return self.base_url + self._paths()["challenge"]

    @property
    def authenticators_endpoint(self) -> str:
        if self.dialect != "auth0":
            raise AttributeError("only Auth0 has /mfa/authenticators")
        return self.base_url + "/mfa/authenticators"

    @property
    def jwks_uri(self) -> str:
        return self.base_url + self._paths()["jwks"]

    def _paths(self) -> dict:
        if self.dialect == "auth0":
            return {"discovery": "/.well-known/openid-configuration", "token": "/oauth/token",
                    "challenge": "/mfa/challenge", "authenticators": "/mfa/authenticators",
                    "jwks": "/.well-known/jwks.json"}
        root = f"/oauth2/{self.authorization_server}" if self.authorization_server else ""
        return {"discovery": root + "/.well-known/openid-configuration",
                "token": self._prefix + "/token", "challenge": self._prefix + "/challenge",
                "jwks": self._prefix + "/keys"}

    # ---------------------------------------------------------------- scripting

    def add_client(self, client_id: str, secret: str | None = None) -> None:
        """Register a client: public (secret None: client_id alone) or confidential (HTTP Basic
        or client_secret in the body). ID tokens carry aud = the client_id that asked."""
        if not client_id:
            raise ValueError("client_id must not be empty")
        with self._lock:
            self._clients[client_id] = _Client(client_id, secret)

    def add_user(self, login: str, password: str, *, name: str = "", email: str | None = None,
                 groups=(), sub: str | None = None, otp: str | None = None,
                 totp_secret: str | None = None, push: str | None = None, push_polls: int = 1,
                 number_challenge: str | None = None, sms: str | None = None) -> str:
        """Create or replace a user; return its `sub`. Without any authenticator the password
        grant answers 200 with tokens; with one it answers mfa_required.

        otp: a fixed code accepted by the mfa-otp grant. totp_secret: a base32 secret; RFC 6238
          codes of the current step (+-1) are accepted, each step once (totp() computes one).
        push: "approve" | "reject" | "never" (Okta Verify / Guardian); push_polls: how many
          polls answer authorization_pending before the outcome ("never": pending until the
          oob_code expires, then expired_token).
        number_challenge: Okta only: the two-digit number of Okta Verify's number challenge
          (binding_method "transfer", binding_code); the client shows it, the user taps it.
        sms: the code the SMS carries (binding_method "prompt"; the client sends it as
          binding_code).
        """
        if push is not None and push not in PUSH_OUTCOMES:
            raise ValueError(f"push must be one of {PUSH_OUTCOMES}")
        if number_challenge is not None:
            if self.dialect != "okta":
                raise ValueError("number_challenge is Okta's (binding_method transfer)")
            if push is None:
                raise ValueError("number_challenge needs push")
        if totp_secret is not None:
            totp_code(totp_secret)   # validates the base32
        if isinstance(groups, str):
            raise TypeError("groups must be a list of names")
        ids = {}
        if self.dialect == "auth0":
            # [A0-PUSH] push users are also enrolled in OTP (Guardian); every enrolled user
            # has a recovery code ([A0-ROPG] list).
            if push and not (otp or totp_secret):
                totp_secret = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
            for kind, wanted in (("recovery-code", otp or totp_secret or push or sms),
                                 ("push", push), ("totp", otp or totp_secret), ("sms", sms)):
                if wanted:
                    ids[kind] = f"{kind}|dev_{_rand(16)}"
        user = _User(login=login, password=password,
                     sub=sub or (("auth0|" + secrets.token_hex(12)) if self.dialect == "auth0"
                                 else "00u" + _rand(17)),
                     name=name, email=email if email is not None else login,
                     groups=[str(g) for g in groups], otp=otp, totp_secret=totp_secret,
                     push=push, push_polls=max(0, push_polls), number_challenge=number_challenge,
                     sms=sms, ids=ids)
        with self._lock:
            self._users[login.lower()] = user
        return user.sub

    def set_push(self, login: str, outcome: str, push_polls: int | None = None) -> None:
        """Change the push outcome, also for pushes already sent and not yet answered."""
        if outcome not in PUSH_OUTCOMES:
            raise ValueError(f"push must be one of {PUSH_OUTCOMES}")
        with self._lock:
            u = self._users[login.lower()]
            u.push = outcome
            if push_polls is not None:
                u.push_polls = max(0, push_polls)
            for oob in self._oobs.values():
                if oob.login == u.login.lower() and oob.kind == "push" and oob.outcome is None:
                    oob.push = outcome
                    if push_polls is not None:
                        oob.push_polls = u.push_polls

    def set_otp(self, login: str, otp: str | None) -> None:
        with self._lock:
            self._users[login.lower()].otp = otp

    def totp(self, login: str, at: float | None = None) -> str:
        """The user's current RFC 6238 code (needs totp_secret, or push with Auth0)."""
        with self._lock:
            secret = self._users[login.lower()].totp_secret
        if not secret:
            raise ValueError(f"{login} has no totp_secret")
        return totp_code(secret, at)

    def issued(self, login: str | None = None) -> dict[str, list[str]]:
        """The secrets this server handed out (to `login`, or to anyone), by kind, in order:
        {"mfa_token": [...], "oob_code": [...], "access_token": [...], "id_token": [...]}. The
        request log never shows them; a test searches a client's output or logs for them."""
        out: dict[str, list[str]] = {"mfa_token": [], "oob_code": [], "access_token": [],
                                     "id_token": []}
        with self._lock:
            for who, kind, value in self._issued:
                if login is None or who == login.lower():
                    out[kind].append(value)
        return out

    def sms_sent(self, login: str) -> list[str]:
        """The codes "sent" by SMS to the user so far (one per SMS challenge)."""
        with self._lock:
            return list(self._sms_sent[login.lower()])

    def authenticator_ids(self, login: str) -> dict:
        """Auth0: {kind: id} of the user's authenticators (recovery-code, push, totp, sms)."""
        with self._lock:
            return dict(self._users[login.lower()].ids)

    def slow_down(self, login: str, count: int = 1) -> None:
        """The user's next `count` mfa-oob polls answer slow_down (and do not count as polls)."""
        with self._lock:
            key = login.lower()
            self._slow_down[key] = self._slow_down.get(key, 0) + count

    def expire_mfa_tokens(self, login: str | None = None) -> None:
        """Every mfa_token issued so far (to `login`, or to anyone) expires now."""
        with self._lock:
            for t in self._mfa_tokens.values():
                if login is None or t.login == login.lower():
                    t.expires = 0.0

    def expire_oob_codes(self, login: str | None = None) -> None:
        """Every oob_code issued so far (to `login`, or to anyone) expires now."""
        with self._lock:
            for o in self._oobs.values():
                if login is None or o.login == login.lower():
                    o.expires = 0.0

    def reset_attempts(self, login: str) -> None:
        with self._lock:
            self._users[login.lower()].failed = 0

    def fail_next(self, status: int, body: dict | str | None = None, count: int = 1,
                  headers: dict | None = None) -> None:
        """Answer the next `count` requests (any path) with this status and body instead
        (default body: {} for 4xx, an nginx-like HTML page for 5xx)."""
        with self._lock:
            for _ in range(count):
                self._fail.append((status, body, dict(headers or {})))

    # ------------------------------------------------------------------ request log

    def requests(self) -> list[dict]:
        """Every request, in order: {"method", "path", "endpoint" (discovery, jwks, token,
        challenge, authenticators or None), "grant_type", "params" (form/JSON fields; secrets
        as "<redacted>", mfa_token and oob_code as "mfa_token#N" / "oob_code#N" so a test can
        see which one was used), "client_auth" ("basic", "post", "none"), "bearer" (the
        mfa_token#N of an Authorization: Bearer header), "user" (login), "status", "error"
        (the answer's `error`), "time"}. No password, secret, code or token appears."""
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._log]

    def mark(self) -> int:
        with self._lock:
            return len(self._log)

    def requests_since(self, mark: int) -> list[dict]:
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._log[mark:]]

    # ------------------------------------------------------------------------ JOSE

    @staticmethod
    def _new_key() -> tuple[str, rsa.RSAPrivateKey]:
        key = rsa_key()
        pub = key.public_key().public_numbers()
        canonical = json.dumps({"e": _b64_uint(pub.e), "kty": "RSA", "n": _b64_uint(pub.n)},
                               separators=(",", ":"), sort_keys=True)
        return _b64url(hashlib.sha256(canonical.encode()).digest()), key

    def _jwks(self) -> dict:
        keys = []
        for kid, key in self._keys:
            pub = key.public_key().public_numbers()
            if self.dialect == "okta":   # [C] member order of Okta's /v1/keys
                keys.append({"kty": "RSA", "alg": "RS256", "kid": kid, "use": "sig",
                             "e": _b64_uint(pub.e), "n": _b64_uint(pub.n)})
            else:                        # Auth0's /.well-known/jwks.json (without x5c/x5t)
                keys.append({"kty": "RSA", "use": "sig", "n": _b64_uint(pub.n),
                             "e": _b64_uint(pub.e), "kid": kid, "alg": "RS256"})
        return {"keys": keys}

    def _sign(self, claims: dict) -> str:
        kid, key = self._keys[-1]
        header = ({"kid": kid, "alg": "RS256"} if self.dialect == "okta"
                  else {"alg": "RS256", "typ": "JWT", "kid": kid})
        h = _b64url(json.dumps(header, separators=(",", ":")).encode())
        p = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        sig = key.sign(f"{h}.{p}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{h}.{p}.{_b64url(sig)}"

    # ----------------------------------------------------------------- documents

    def _discovery(self) -> dict:
        if self.dialect == "auth0":
            # [A0-DISC] member order of a tenant's document; no grant_types_supported.
            b = self.base_url
            return {"issuer": self.issuer, "authorization_endpoint": b + "/authorize",
                    "token_endpoint": b + "/oauth/token",
                    "device_authorization_endpoint": b + "/oauth/device/code",
                    "userinfo_endpoint": b + "/userinfo",
                    "mfa_challenge_endpoint": b + "/mfa/challenge",
                    "jwks_uri": b + "/.well-known/jwks.json",
                    "registration_endpoint": b + "/oidc/register",
                    "revocation_endpoint": b + "/oauth/revoke",
                    "scopes_supported": ["openid", "profile", "offline_access", "name",
                                         "given_name", "family_name", "nickname", "email",
                                         "email_verified", "picture", "created_at",
                                         "identities", "phone", "address"],
                    "response_types_supported": ["code", "token", "id_token", "code token",
                                                 "code id_token", "token id_token",
                                                 "code token id_token"],
                    "code_challenge_methods_supported": ["S256", "plain"],
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["public"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                              "client_secret_post",
                                                              "private_key_jwt"],
                    "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384",
                                                                         "PS256"],
                    "claims_supported": ["aud", "auth_time", "created_at", "email",
                                         "email_verified", "exp", "family_name", "given_name",
                                         "iat", "identities", "iss", "name", "nickname",
                                         "phone_number", "picture", "sub"],
                    "request_uri_parameter_supported": False,
                    "request_parameter_supported": False,
                    "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
                    "end_session_endpoint": b + "/oidc/logout"}
        # Okta ([C], okta.py's order), with the direct-authentication grants listed.
        iss, p = self.issuer, self.base_url + self._prefix
        return {"issuer": iss, "authorization_endpoint": p + "/authorize",
                "token_endpoint": p + "/token", "userinfo_endpoint": p + "/userinfo",
                "registration_endpoint": self.base_url + "/oauth2/v1/clients",
                "jwks_uri": p + "/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "code token",
                                             "id_token token", "code id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post",
                                             "okta_post_message"],
                "grant_types_supported": ["authorization_code", "implicit", "refresh_token",
                                          "password",
                                          "urn:ietf:params:oauth:grant-type:device_code",
                                          "urn:okta:params:oauth:grant-type:otp",
                                          "urn:okta:params:oauth:grant-type:oob",
                                          MFA_OTP, MFA_OOB],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "address", "phone",
                                     "offline_access", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post",
                                                          "client_secret_jwt",
                                                          "private_key_jwt", "none"],
                "claims_supported": ["iss", "ver", "sub", "aud", "iat", "exp", "jti",
                                     "auth_time", "amr", "idp", "nonce", "name",
                                     "preferred_username", "email", "email_verified", "groups"],
                "code_challenge_methods_supported": ["S256"],
                "introspection_endpoint": p + "/introspect",
                "revocation_endpoint": p + "/revoke", "end_session_endpoint": p + "/logout",
                "request_parameter_supported": True,
                "device_authorization_endpoint": p + "/device/authorize"}

    # ------------------------------------------------------------------- answers

    def _err(self, error: str, description: str, headers: dict | None = None) -> _Response:
        """{"error", "error_description"} (RFC 6749 5.2; both dialects)."""
        return _Response(self.status.get(error, 400),
                         {"error": error, "error_description": description}, dict(headers or {}))

    def _not_found(self, path: str) -> _Response:
        if self.dialect == "okta":   # okta.py's E0000007
            return _Response(404, {"errorCode": "E0000007",
                                   "errorSummary": f"Not found: Resource not found: {path}",
                                   "errorLink": "E0000007",
                                   "errorId": "oae" + _rand(22, _TOKEN_CHARS), "errorCauses": []})
        return _Response(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

    def _tokens(self, u: _User, client_id: str, scope: str, amr: list) -> _Response:
        """The token answer: Okta [OK-OTP] {"token_type", "expires_in": 3600, "access_token",
        "scope", "id_token"}; Auth0 [A0-OTP] {"id_token", "access_token", "expires_in",
        "scope", "token_type"}. ID token: RS256, signed by the second JWKS key."""
        now = int(time.time())
        scopes = scope.split()
        lifetime = 3600 if self.dialect == "okta" else 600
        access_token = _rand(43, _TOKEN_CHARS)
        id_token = None
        if "openid" in scopes:
            claims = {"sub": u.sub, "name": u.name or u.login, "email": u.email}
            if self.dialect == "okta":
                claims.update({"ver": 1, "iss": self.issuer, "aud": client_id, "iat": now,
                               "exp": now + 3600, "jti": "ID." + _rand(43, _TOKEN_CHARS),
                               "amr": amr, "idp": "00o" + _rand(17),
                               "preferred_username": u.login, "auth_time": now})
            else:
                claims.update({"nickname": u.login.split("@")[0], "preferred_username": u.login,
                               "email_verified": True, "iss": self.issuer, "aud": client_id,
                               "iat": now, "exp": now + 36000})
                if len(amr) > 1:
                    claims["amr"] = ["mfa"]
            claims["groups"] = list(u.groups)
            id_token = self._sign(claims)
            self._issued.append((u.login.lower(), "id_token", id_token))
        self._issued.append((u.login.lower(), "access_token", access_token))
        if self.dialect == "okta":
            body = {"token_type": "Bearer", "expires_in": lifetime,
                    "access_token": access_token, "scope": scope}
            if id_token:
                body["id_token"] = id_token
        else:
            body = {}
            if id_token:
                body["id_token"] = id_token
            body.update({"access_token": access_token, "expires_in": lifetime, "scope": scope,
                         "token_type": "Bearer"})
        return _Response(200, body)

    # -------------------------------------------------------------- client auth

    def _client(self, fields: dict, headers: dict) -> tuple[_Client | None, str, _Response | None]:
        """Client authentication (RFC 6749 2.3.1): HTTP Basic with form-encoded id and secret,
        client_secret in the body, or client_id alone for a public client."""
        auth = headers.get("authorization", "")
        method, cid, secret = "none", fields.get("client_id"), fields.get("client_secret")
        if auth[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
                bid, _, bsecret = raw.partition(":")
                bid, bsecret = urllib.parse.unquote_plus(bid), urllib.parse.unquote_plus(bsecret)
            except (ValueError, UnicodeDecodeError):
                return None, "basic", self._err("invalid_client", "Client authentication failed.")
            if secret is not None or (cid is not None and cid != bid):
                return None, "basic", self._err("invalid_request", "Multiple client "
                                                "authentication methods were used.")
            method, cid, secret = "basic", bid, bsecret
        elif secret is not None:
            method = "post"
        if not cid:
            return None, method, self._err("invalid_client", "No client credentials found.")
        client = self._clients.get(cid)
        if client is None:
            return None, method, self._err("invalid_client", "The client is unknown.")
        if client.secret is not None and (secret is None or
                                          not _same(secret, client.secret)):
            return None, method, self._err("invalid_client", "Client authentication failed.")
        return client, method, None

    def _mfa_token(self, token: str | None, client: _Client, now: float
                   ) -> tuple[_MfaToken | None, _Response | None]:
        t = self._mfa_tokens.get(token or "")
        if t is None:
            if self.dialect == "auth0":
                return None, self._err("invalid_grant", self.text["malformed"])   # [A0-SDK]
            return None, self._err("invalid_grant", self.text["mfa_token"])
        if now >= t.expires:
            if self.dialect == "auth0":
                return None, self._err("expired_token", self.text["mfa_token"])   # [A0-SDK]
            return None, self._err("invalid_grant", self.text["mfa_token"])
        if t.client_id != client.client_id:
            return None, self._err("invalid_request", self.text["other_client"])  # [A0-DRAFT]
        if t.login not in self._users:
            return None, self._err("invalid_grant", self.text["mfa_token"])
        return t, None

    def _failed_attempt(self, u: _User, error_text: str) -> _Response:
        u.failed += 1
        return self._err("invalid_grant", error_text)

    def _too_many(self, u: _User) -> _Response | None:
        # [A0-ROPG] a bucket of 10 wrong codes; [A0-SDK] too_many_attempts.
        if self.max_failed_attempts and u.failed >= self.max_failed_attempts:
            return self._err("too_many_attempts", self.text["too_many"])
        return None

    # ------------------------------------------------------------ token endpoint

    def _token(self, fields: dict, headers: dict, now: float, note: dict) -> _Response:
        """POST token endpoint: password [OK-OTP]/[A0-ROPG], mfa-otp [OK-OTP]/[A0-OTP],
        mfa-oob [OK-PUSH]/[OK-SMS]/[A0-PUSH]/[A0-SMS]/[A0-API]."""
        client, note["client_auth"], err = self._client(fields, headers)
        if err:
            return err
        grant = fields.get("grant_type")
        if not grant:
            return self._err("invalid_request", "The 'grant_type' parameter is required.")
        if grant == PASSWORD:
            return self._password_grant(client, fields, note)
        if grant == MFA_OTP:
            return self._otp_grant(client, fields, now, note)
        if grant == MFA_OOB:
            return self._oob_grant(client, fields, now, note)
        if grant == MFA_RECOVERY and self.dialect == "auth0":
            return self._err("unsupported_grant_type", "mfa-recovery-code is not modelled by "
                             "this test server.")
        return self._err("unsupported_grant_type", "The authorization grant type is not "
                         "supported by the authorization server.")

    def _password_grant(self, client: _Client, fields: dict, note: dict) -> _Response:
        """grant_type=password: 200 tokens without MFA; 403 mfa_required with an mfa_token
        otherwise ([OK-OTP] [A0-ROPG]); bad credentials: invalid_grant ([A0-SDK] wording for
        Auth0)."""
        username, password = fields.get("username") or "", fields.get("password")
        u = self._users.get(username.lower())
        note["user"] = u.login if u else username
        if u is None or password is None or not _same(password, u.password):
            return self._err("invalid_grant", self.text["bad_password"])
        scope = fields.get("scope") or ("openid" if self.dialect == "auth0" else "")
        if self.dialect == "okta" and "openid" not in scope.split():
            # [OK-OTP] "scope: Must be at least openid".
            return self._err("invalid_scope", "The 'scope' must include 'openid'.")
        if not u.has_mfa:
            return self._tokens(u, client.client_id, scope, ["pwd"])
        token = _MfaToken(token=_rand(20, _ALNUM) if self.dialect == "okta"
                          else "Fe26.2*" + _rand(40, _TOKEN_CHARS),
                          n=next(self._ids), login=u.login.lower(), client_id=client.client_id,
                          scope=scope, expires=time.time() + self.mfa_token_lifetime)
        self._mfa_tokens[token.token] = token
        self._issued.append((token.login, "mfa_token", token.token))
        # [OK-OTP] / [A0-ROPG]: the whole body, member for member.
        return _Response(self.status["mfa_required"],
                         {"error": "mfa_required",
                          "error_description": self.text["mfa_required"],
                          "mfa_token": token.token})

    def _otp_grant(self, client: _Client, fields: dict, now: float, note: dict) -> _Response:
        """grant_type=mfa-otp with mfa_token and otp ([OK-OTP] [A0-OTP] [A0-API]); a wrong code
        is invalid_grant "Invalid otp_code." ([A0-SDK]), too many are too_many_attempts
        ([A0-ROPG] bucket of 10)."""
        t, err = self._mfa_token(fields.get("mfa_token"), client, now)
        if err:
            return err
        u = self._users[t.login]
        note["user"] = u.login
        otp = fields.get("otp")
        if not otp:
            return self._err("invalid_request", "The 'otp' parameter is required.")
        limited = self._too_many(u)
        if limited:
            return limited
        if not u.has_otp or not self._otp_ok(u, otp, now):
            return self._failed_attempt(u, self.text["bad_otp"])
        return self._tokens(u, client.client_id, fields.get("scope") or t.scope,
                            ["pwd", "mfa", "otp"])

    def _otp_ok(self, u: _User, otp: str, now: float) -> bool:
        if u.otp is not None and _same(otp, u.otp):
            return True
        if u.totp_secret:
            for delta in (0, -30, 30):
                step = int((now + delta) // 30)
                if step not in u.used_steps and _same(
                        otp, totp_code(u.totp_secret, now + delta)):
                    u.used_steps.add(step)   # [A0-ROPG] a validated code cannot be used again
                    return True
        return False

    def _oob_grant(self, client: _Client, fields: dict, now: float, note: dict) -> _Response:
        """grant_type=mfa-oob: a push is polled (authorization_pending until the scripted
        outcome, slow_down on demand, tokens, or a final rejection) [OK-PUSH] [A0-PUSH]
        [A0-API]; an SMS is answered with binding_code [OK-SMS] [A0-SMS]; an oob_code past
        expires_in answers expired_token ([A0-DRAFT] "${tokenName} is expired")."""
        oob = self._oobs.get(fields.get("oob_code") or "")
        if not fields.get("oob_code"):
            return self._err("invalid_request", "The 'oob_code' parameter is required.")
        mfa_token = fields.get("mfa_token")
        if self.dialect == "auth0" or mfa_token is not None:
            # Auth0 requires it ([A0-API]); Okta's SMS example leaves it out ([OK-SMS]).
            t, err = self._mfa_token(mfa_token, client, now)
            if err:
                return err
            if oob is not None and oob.mfa_token != t.token:
                oob = None
        if oob is None or oob.client_id != client.client_id:
            return self._err("invalid_grant", self.text["oob_unknown"])
        u = self._users.get(oob.login)
        if u is None:
            return self._err("invalid_grant", self.text["oob_unknown"])
        note["user"] = u.login
        t = self._mfa_tokens.get(oob.mfa_token)
        scope = fields.get("scope") or (t.scope if t else "openid")
        if now >= oob.expires and oob.outcome != "rejected":
            return self._err("expired_token", self.text["oob_expired"])
        if oob.kind == "sms":
            binding = fields.get("binding_code")
            if not binding:
                return self._err("invalid_request", self.text["binding_required"])  # [A0-DRAFT]
            limited = self._too_many(u)
            if limited:
                return limited
            if not _same(binding, oob.binding_code or ""):
                return self._failed_attempt(u, self.text["bad_binding"])             # [A0-SDK]
            return self._tokens(u, client.client_id, scope, ["pwd", "mfa", "sms"])
        # push: [OK-PUSH] / [A0-PUSH] polling
        if oob.outcome == "rejected":
            return self._err(self.reject_error, self.text["rejected"])
        slow = self._slow_down.get(u.login.lower(), 0)
        too_fast = (self.enforce_interval and oob.last_poll
                    and now - oob.last_poll < self.interval)
        oob.last_poll = now
        if slow or too_fast:
            if slow:
                self._slow_down[u.login.lower()] = slow - 1
            return self._err("slow_down", self.text["slow_down"])
        oob.polls += 1
        if oob.push == "never" or oob.polls <= oob.push_polls:
            return self._err("authorization_pending", self.text["pending"])
        if oob.push == "reject":
            oob.outcome = "rejected"
            return self._err(self.reject_error, self.text["rejected"])
        oob.outcome = "approved"
        return self._tokens(u, client.client_id, scope, ["pwd", "mfa", "swk"])

    def _new_oob(self, u: _User, client: _Client, t: _MfaToken, kind: str) -> _Oob:
        oob = _Oob(code=(_rand(34, _TOKEN_CHARS) if self.dialect == "okta"
                         else "Fe26.2*" + _rand(40, _TOKEN_CHARS)),
                   n=next(self._ids), login=u.login.lower(), client_id=client.client_id,
                   mfa_token=t.token, kind=kind, expires=time.time() + self.oob_expires_in,
                   binding_code=(u.sms if kind == "sms" else u.number_challenge),
                   push=u.push or "approve", push_polls=u.push_polls)
        self._oobs[oob.code] = oob
        self._issued.append((oob.login, "oob_code", oob.code))
        if kind == "sms":
            self._sms_sent[u.login.lower()].append(u.sms)
        return oob

    # ------------------------------------------------------------- Okta challenge

    def _okta_challenge(self, fields: dict, headers: dict, now: float, note: dict) -> _Response:
        """POST {issuer}/v1/challenge [OK-PUSH] [OK-SMS] [OK-SDK]."""
        client, note["client_auth"], err = self._client(fields, headers)
        if err:
            return err
        t, err = self._mfa_token(fields.get("mfa_token"), client, now)
        if err:
            return err
        u = self._users[t.login]
        note["user"] = u.login
        types = (fields.get("challenge_types_supported") or "").split()
        if not types:
            return self._err("invalid_request",
                             "The 'challenge_types_supported' parameter is required.")
        hint = fields.get("channel_hint")
        if hint is not None and hint not in ("push", "sms", "voice"):
            return self._err("invalid_request", f"{hint} is not a valid channel hint")  # [OK-SDK]
        # The client's order of challenge_types_supported decides; no hint: push, then SMS
        # (Okta's SDK sends no channel_hint and gets the push).
        for ctype in types:
            if ctype == MFA_OTP and u.has_otp and hint is None:
                return _Response(200, {"challenge_type": MFA_OTP})                   # [OK-SDK]
            if ctype == MFA_OOB:
                kind = None
                if hint in (None, "push") and u.push:
                    kind = "push"
                elif hint in (None, "sms") and u.sms:
                    kind = "sms"
                if kind is None:
                    continue
                oob = self._new_oob(u, client, t, kind)
                if kind == "push":   # [OK-PUSH], member for member
                    body = {"challenge_type": MFA_OOB, "oob_code": oob.code,
                            "expires_in": self.oob_expires_in, "interval": self.interval,
                            "channel": "push"}
                    if u.number_challenge is not None:
                        body["binding_method"] = "transfer"
                        body["binding_code"] = u.number_challenge
                    else:
                        body["binding_method"] = "none"
                    return _Response(200, body)
                return _Response(200, {"challenge_type": MFA_OOB, "oob_code": oob.code,   # [OK-SMS]
                                       "expires_in": self.oob_expires_in, "channel": "sms",
                                       "binding_method": "prompt"})
        # [OK-PUSH] "If the access policy requires factors that aren't included, an error is
        # returned"; the code is the one Okta's SDK knows ([OK-SDK]).
        return self._err("invalid_challenge_types_supported", "The user has no authenticator "
                         "for the challenge types and channel the client supports.")

    # ------------------------------------------------------------ Auth0 MFA API

    def _auth0_authenticators(self, headers: dict, now: float, note: dict) -> _Response:
        """GET /mfa/authenticators, Bearer mfa_token [A0-ROPG] [A0-PUSH] [A0-SMS] [A0-OTP]."""
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        t = self._mfa_tokens.get(token)
        if t is not None:
            note["bearer"] = f"mfa_token#{t.n}"
        if t is None:
            return _Response(401, {"error": "invalid_token",
                                   "error_description": self.text["malformed"]})
        if now >= t.expires:
            return self._err("expired_token", self.text["mfa_token"])
        u = self._users.get(t.login)
        if u is None:
            return self._err("invalid_grant", self.text["malformed"])
        note["user"] = u.login
        out = []
        for kind, aid in u.ids.items():
            if kind == "recovery-code":
                out.append({"id": aid, "authenticator_type": "recovery-code", "active": True})
            elif kind == "push":
                out.append({"id": aid, "authenticator_type": "oob", "active": True,
                            "oob_channel": "auth0", "name": f"{u.login.split('@')[0]}'s phone"})
            elif kind == "totp":
                out.append({"id": aid, "authenticator_type": "otp", "active": True})
            elif kind == "sms":
                out.append({"id": aid, "authenticator_type": "oob", "active": True,
                            "oob_channel": "sms", "name": "XXXXXXXX8730"})
        return _Response(200, out)

    def _auth0_challenge(self, fields: dict, headers: dict, now: float, note: dict) -> _Response:
        """POST /mfa/challenge [A0-API] [A0-PUSH] [A0-SMS] [A0-OTP]."""
        client, note["client_auth"], err = self._client(fields, headers)
        if err:
            return err
        t, err = self._mfa_token(fields.get("mfa_token"), client, now)
        if err:
            return err
        u = self._users[t.login]
        note["user"] = u.login
        wanted = (fields.get("challenge_type") or "otp oob").split()
        if any(w not in ("otp", "oob") for w in wanted):
            return self._err("invalid_request", "challenge_type must be 'otp', 'oob' or both.")
        kinds = {aid: kind for kind, aid in u.ids.items()}
        aid = fields.get("authenticator_id")
        if aid is not None:
            kind = kinds.get(aid)
            if kind is None:
                return self._err("invalid_request", "Unknown authenticator_id.")
            candidates = [kind]
        else:
            candidates = [k for k in ("push", "totp", "sms") if k in u.ids]
        for kind in candidates:
            ctype = "otp" if kind == "totp" else ("oob" if kind in ("push", "sms") else None)
            if ctype is None or ctype not in wanted:
                continue
            if kind == "totp":
                return _Response(200, {"challenge_type": "otp"})
            oob = self._new_oob(u, client, t, kind)
            body = {"challenge_type": "oob", "oob_code": oob.code}
            if kind == "sms":
                body["binding_method"] = "prompt"
            return _Response(200, body)
        return self._err("unsupported_challenge_type", "The user does not support any of the "
                         f"requested challenge types ({', '.join(wanted)}).")        # [A0-DRAFT]

    # ------------------------------------------------------------------- dispatch

    def handle(self, method: str, target: str, raw: bytes | None,
               headers: dict | None = None) -> _Response:
        """Answer one request (called by the HTTP handler; raw=None: unreadable body)."""
        now = time.time()
        split = urllib.parse.urlsplit(target)
        path = split.path
        hdrs = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        fields, form_error = self._fields(raw, hdrs)
        paths = self._paths()
        endpoint = next((name for name, p in paths.items() if p == path), None)
        note: dict = {"client_auth": None, "user": None, "bearer": None}
        with self._lock:
            if self._fail:
                status, fbody, fheaders = self._fail.popleft()
                resp = self._failure(status, fbody, fheaders)
            elif endpoint is None:
                resp = self._not_found(path)
            else:
                allowed = "GET" if endpoint in ("discovery", "jwks", "authenticators") else "POST"
                if method != allowed:
                    resp = (self._not_found(path) if self.dialect == "auth0" else
                            _Response(405, {"errorCode": "E0000022", "errorSummary": "The "
                                            "endpoint does not support the provided HTTP "
                                            "method", "errorLink": "E0000022",
                                            "errorId": "oae" + _rand(22, _TOKEN_CHARS),
                                            "errorCauses": []}, {"Allow": allowed}))
                elif endpoint == "discovery":
                    resp = _Response(200, self._discovery())
                elif endpoint == "jwks":
                    resp = _Response(200, self._jwks(),
                                     {"Cache-Control": "max-age=86400, must-revalidate"})
                elif endpoint == "authenticators":
                    resp = self._auth0_authenticators(hdrs, now, note)
                elif form_error:
                    resp = self._err("invalid_request", form_error)
                elif endpoint == "token":
                    resp = self._token(fields, hdrs, now, note)
                else:
                    resp = (self._okta_challenge if self.dialect == "okta"
                            else self._auth0_challenge)(fields, hdrs, now, note)
            entry = {"method": method, "path": path, "endpoint": endpoint,
                     "grant_type": fields.get("grant_type") if endpoint == "token" else None,
                     "params": self._redact(fields), "client_auth": note["client_auth"],
                     "bearer": note["bearer"], "user": note["user"], "status": resp.status,
                     "error": resp.body.get("error") if isinstance(resp.body, dict) else None,
                     "time": now}
            self._log.append(entry)
            try:
                with open(self.request_log_file, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")
            except OSError:
                pass
        return resp

    def _fields(self, raw: bytes | None, headers: dict) -> tuple[dict, str | None]:
        """The request's parameters: a form body (both dialects), or JSON (Auth0 only: its
        examples post JSON to /mfa/challenge and /oauth/token)."""
        if raw is None:
            return {}, "The request body could not be read."
        if not raw:
            return {}, None
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/json" and self.dialect == "auth0":
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return {}, "The request body is not valid JSON."
            if not isinstance(body, dict):
                return {}, "The request body must be a JSON object."
            return {str(k): (v if isinstance(v, str) else json.dumps(v))
                    for k, v in body.items()}, None
        if ctype != "application/x-www-form-urlencoded":
            return {}, "Content-Type must be application/x-www-form-urlencoded."
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return {}, "The request body is not a valid form."
        fields: dict = {}
        for k, v in pairs:
            if k in fields:
                return {}, f"The '{k}' parameter must not be repeated."
            fields[k] = v
        return fields, None

    def _redact(self, fields: dict) -> dict:
        out = {}
        for k, v in fields.items():
            if k in SECRET_FIELDS:
                out[k] = "<redacted>"
            elif k == "mfa_token":
                t = self._mfa_tokens.get(v)
                out[k] = f"mfa_token#{t.n}" if t else "mfa_token#unknown"
            elif k == "oob_code":
                o = self._oobs.get(v)
                out[k] = f"oob_code#{o.n}" if o else "oob_code#unknown"
            else:
                out[k] = v
        return out

    def _failure(self, status: int, body, headers: dict) -> _Response:
        if body is None:
            if status >= 500:
                page = (f"<html><head><title>{status}</title></head><body><center><h1>{status}"
                        "</h1></center><hr><center>nginx</center></body></html>\n")
                return _Response(status, page, headers, "text/html")
            return _Response(status, {}, headers)
        if isinstance(body, (str, bytes)):
            return _Response(status, body, headers, headers.pop("Content-Type", "text/plain"))
        return _Response(status, body, headers)


# ------------------------------------------------------------------------ HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, app: MFAAPIServer, ctx: ssl.SSLContext):
        self.app = app
        self.ctx = ctx
        self.stopping = False
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
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
            for op in (lambda: c.shutdown(socket.SHUT_RDWR), c.close):
                try:
                    op()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return
        try:
            import traceback
            with open(self.app.server_log, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} error serving {client_address}:\n")
                traceback.print_exc(file=f)
        except OSError:
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def version_string(self) -> str:
        return "nginx"

    def log_message(self, format, *args) -> None:
        pass

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
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
        resp = srv.app.handle(self.command, self.path, raw, dict(self.headers.items()))
        if srv.stopping:
            self.close_connection = True
            return
        if isinstance(resp.body, (dict, list)):
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
        if "Cache-Control" not in resp.headers:
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Pragma", "no-cache")
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
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"--user {spec!r}: expected LOGIN:PASSWORD[:K=V,...]")
    out = {"login": parts[0], "password": parts[1]}
    for item in (parts[2].split(",") if len(parts) == 3 and parts[2] else []):
        k, sep, v = item.partition("=")
        if not sep or k not in ("otp", "totp_secret", "push", "push_polls", "number_challenge",
                                "sms", "groups", "name", "email"):
            raise argparse.ArgumentTypeError(f"--user {spec!r}: bad option {item!r}")
        out[k] = (int(v) if k == "push_polls" else v.split("+") if k == "groups" else v)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="serve until SIGTERM/SIGINT")
    sp.add_argument("--workdir", required=True)
    sp.add_argument("--port", type=int, default=0)
    sp.add_argument("--dialect", choices=DIALECTS, default="auth0")
    sp.add_argument("--client-id", default="cloudlogin-test", metavar="ID[:SECRET]")
    sp.add_argument("--interval", type=int, default=5)
    sp.add_argument("--user", action="append", type=_parse_user, default=[])
    args = ap.parse_args(argv)
    cid, _, secret = args.client_id.partition(":")
    server = MFAAPIServer(args.workdir, args.port or None, dialect=args.dialect, client_id=cid,
                          client_secret=secret or None, interval=args.interval)
    users = {}
    for u in args.user:
        login, password = u.pop("login"), u.pop("password")
        users[login] = server.add_user(login, password, **u)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    info = {"dialect": server.dialect, "base_url": server.base_url, "issuer": server.issuer,
            "token_endpoint": server.token_endpoint,
            "challenge_endpoint": server.challenge_endpoint,
            "client_id": cid, "ca_file": str(server.ca_file),
            "request_log": str(server.request_log_file), "pid": os.getpid(), "users": users}
    (server.workdir / "server.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info), flush=True)
    while not done.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
