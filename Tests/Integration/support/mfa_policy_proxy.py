"""An "MFA policy" in front of Glewlwyd's token endpoint: the one answer Glewlwyd never gives,
Microsoft Entra ID's "password right, MFA required" (AADSTS50076) to the password grant, made
from Glewlwyd's own verdict on the password.

What it is: an HTTPS server on 127.0.0.1 (its certificate signed by the CA of the Glewlwyd run,
testpki.issue_server_cert, so the module's `ca_file` stays Glewlwyd's `ca.pem`) that serves one
path, Glewlwyd's token endpoint path (`/api/oidc/token`). CloudLogin is configured with
`token_endpoint = https://127.0.0.1:PROXYPORT/api/oidc/token`; the issuer, discovery, the JWKS,
userinfo and the device authorization endpoint stay Glewlwyd's own URLs.

What it changes, exactly:

* Every request to that path is sent on to Glewlwyd's real token endpoint as it came (method,
  path, body, headers but the hop-by-hop ones and Host), over TLS trusting only the run's CA.
* Glewlwyd's answer goes back unchanged (status, body, headers but the hop-by-hop ones and the
  length), **except one case**: the request is a password grant (`grant_type=password`) and
  Glewlwyd answered **200**. That answer (its tokens) is dropped and replaced by Entra's
  documented "MFA required" refusal, HTTP 400 (ENTRA_MFA_REQUIRED below).
* Nothing else is ever made up. A wrong password, an unknown or disabled user, a wrong client
  secret keep Glewlwyd's own refusal (403 or 400 with an empty body). Device-code polls
  (`authorization_pending`, `slow_down`, `expired_token`, `access_denied`, the approval's tokens)
  pass through as Glewlwyd gave them. If Glewlwyd cannot be reached, the proxy answers nothing
  and closes the connection, as a gone IdP would; another path is 404 (it fronts nothing else).

Why this is not a fake IdP: Glewlwyd decides everything. It checks the password before the
policy says anything (the 50076 comes only from a 200 Glewlwyd gave for that password, so a
password-verified "MFA required" is exactly what Entra documents it to be), it issues the device
code, the user approves at Glewlwyd with `approve_device`, and the device grant's ID token, signed
by Glewlwyd's key and checked against Glewlwyd's JWKS, is what signs the person in. The policy
only stands where Entra's Conditional Access stands: between a right password and the tokens.

The Entra answer (sources):

* [ENTRA-ERR] Microsoft Entra, "Microsoft Entra authentication and authorization error codes",
  https://learn.microsoft.com/entra/identity-platform/reference-error-codes (stored copy:
  MicrosoftDocs/entra-docs, docs/identity-platform/reference-error-codes.md), "Handling error
  codes in your application": the error body has `error`, `error_description` ("AADSTSnnnnn:
  text\\r\\nTrace ID: …\\r\\nCorrelation ID: …\\r\\nTimestamp: …"), `error_codes` (the AADSTS
  numbers), `timestamp`, `trace_id`, `correlation_id`, `error_uri`
  (`https://login.microsoftonline.com/error?code=N`); `error_description` must never be used to
  react to an error. The table: "AADSTS50076 | UserStrongAuthClientAuthNRequired - Due to a
  configuration change made by the admin such as a Conditional Access policy, per-user
  enforcement, or because you moved to a new location, the user must use multifactor
  authentication to access the resource."
* [ENTRA-ROPC] "Microsoft identity platform and OAuth 2.0 Resource Owner Password Credentials",
  https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc (stored copy:
  docs/identity-platform/v2-oauth-ropc.md), "Error response": `invalid_grant`, "The
  authentication failed"; users who need MFA "will be blocked instead".
* Captured answers of the password grant to an MFA-bound user, as clients printed them:
  microsoft/vscode-tools-for-ai issue 2451 (2024): `{"error":"invalid_grant",
  "error_description":"AADSTS50076: Due to a configuration change made by your administrator, or
  because you moved to a new location, you must use multi-factor authentication to access '…'.
  Trace ID: … Correlation ID: … Timestamp: …","error_codes":[…],"timestamp":…,"trace_id":…,
  "correlation_id":…,"error_uri":…}`; ahaenggli/AzureAD-LDAP-wrapper issue 10 (2021): HTTP 400,
  the same members, with `"error_codes":[50076]` and `error` `interaction_required` instead.
  Entra does not document which of the two `error` values comes with 50076; the status is 400
  (RFC 6749 §5.2 and the capture). CloudLogin reads `error_codes` first (IdPClassifier), so both
  mean the same to it; this server sends `invalid_grant`, as the first capture and the unit
  tests do. The resource named is Microsoft Graph (00000003-0000-0000-c000-000000000000), the
  one `scope=openid` asks Entra for.

The request log (`requests()`) holds, per request: the path, `grant_type`, the `username` of a
password grant, Glewlwyd's status, the status returned and whether the answer was rewritten —
never a password, a secret, a device code or a token.

Usage::

    proxy = MFAPolicyProxy(glewlwyd, workdir)   # glewlwyd: a started glewlwyd.Glewlwyd
    proxy.start()
    ... token_endpoint = proxy.token_endpoint, ca_file = glewlwyd.ca_file ...
    proxy.requests()  # [{"path", "grant_type", "username", "upstream", "status", "rewritten"}]
    proxy.stop()
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import pathlib
import socket
import ssl
import sys
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testpki import issue_server_cert

PASSWORD_GRANT = "password"
# The resource a password grant with scope=openid is for at Entra: Microsoft Graph.
GRAPH = "00000003-0000-0000-c000-000000000000"
MAX_BODY = 1 << 20
UPSTREAM_TIMEOUT = 15.0
# Not forwarded either way (RFC 9110 §7.6.1), plus what is set anew for each hop.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "proxy-authorization", "proxy-authenticate", "host", "content-length"}


def entra_mfa_required() -> tuple[int, dict[str, str], bytes]:
    """Entra's answer to a password grant whose password was right but whose sign-in needs MFA
    ([ENTRA-ERR] for the members, [ENTRA-ROPC] and the captures for invalid_grant and 400), with
    a fresh trace and correlation id and the time now."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "error": "invalid_grant",
        "error_description": (
            "AADSTS50076: Due to a configuration change made by your administrator, or because you "
            f"moved to a new location, you must use multi-factor authentication to access '{GRAPH}'."
            f"\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {now}"),
        "error_codes": [50076],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": "https://login.microsoftonline.com/error?code=50076",
    }
    headers = {"Date": email.utils.formatdate(usegmt=True), "Content-Type": "application/json; charset=utf-8",
               "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
    return 400, headers, json.dumps(body, separators=(",", ":")).encode()


class MFAPolicyProxy:
    """Glewlwyd's token endpoint behind an Entra-style "MFA required" policy, on
    https://127.0.0.1:PORT with the same path."""

    def __init__(self, idp, workdir: pathlib.Path | str):
        self.idp = idp
        self.workdir = pathlib.Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_file = self.workdir / "mfa-policy.pem"
        self.key_file = self.workdir / "mfa-policy.key"
        self.error_log = self.workdir / "mfa-policy-errors.log"
        upstream = urllib.parse.urlsplit(idp.token_endpoint)
        self.path = upstream.path
        self.port = 0
        self.token_endpoint = ""
        self._lock = threading.Lock()
        self._log: list[dict] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._httpd is not None:
            return
        if not self.cert_file.exists():
            issue_server_cert(self.idp.ca_file, self.idp.ca_key_file, self.cert_file, self.key_file)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        httpd = _Server(("127.0.0.1", self.port), _Handler, self, ctx)
        self.port = httpd.server_address[1]
        self.token_endpoint = f"https://127.0.0.1:{self.port}{self.path}"
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mfa-policy-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "MFAPolicyProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- the log

    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._log]

    def mark(self) -> int:
        with self._lock:
            return len(self._log)

    def requests_since(self, mark: int) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._log[mark:]]

    def _record(self, entry: dict) -> None:
        with self._lock:
            self._log.append(entry)

    # ----------------------------------------------------------------- one request

    def forward(self, method: str, path: str, body: bytes, headers: list[tuple[str, str]]):
        """Glewlwyd's answer to the request: (status, [(name, value)], body), or None when
        Glewlwyd could not be reached."""
        upstream = urllib.parse.urlsplit(self.idp.token_endpoint)
        conn = http.client.HTTPSConnection(upstream.hostname, upstream.port, context=self.idp.ssl_context(),
                                           timeout=UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", upstream.netloc)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], data
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def handle(self, method: str, path: str, body: bytes, headers: list[tuple[str, str]]):
        """(status, [(name, value)], body) for the client, or None: close without an answer."""
        entry: dict = {"path": path, "method": method, "grant_type": None, "username": None,
                       "upstream": None, "status": None, "rewritten": False}
        if urllib.parse.urlsplit(path).path != self.path:
            entry["status"] = 404
            self._record(entry)
            return 404, [("Content-Type", "text/plain")], b"not the token endpoint\n"
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        form = {}
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        entry["grant_type"] = form.get("grant_type")
        if entry["grant_type"] == PASSWORD_GRANT:
            entry["username"] = form.get("username")
        answer = self.forward(method, path, body, headers)
        if answer is None:
            self._record(entry)
            return None
        status, out_headers, data = answer
        entry["upstream"] = status
        if method == "POST" and entry["grant_type"] == PASSWORD_GRANT and status == 200:
            status, fresh, data = entra_mfa_required()
            out_headers = list(fresh.items())
            entry["rewritten"] = True
        entry["status"] = status
        self._record(entry)
        return status, out_headers, data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, app: MFAPolicyProxy, ctx: ssl.SSLContext):
        self.app = app
        self.ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return
        import traceback
        with open(self.app.error_log, "a") as f:
            f.write(f"error serving {client_address}:\n")
            traceback.print_exc(file=f)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format, *args) -> None:
        pass

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None  # libcurl sends a Content-Length for a form; nothing else is expected
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        data = self.rfile.read(n)
        return data if len(data) == n else None

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self.send_error(400)
            return
        answer = self.server.app.handle(self.command, self.path, body, list(self.headers.items()))
        if answer is None:
            # Glewlwyd is gone: no answer at all, as from the IdP itself.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, headers, data = answer
        # send_response_only: no Server or Date of our own; Glewlwyd's headers go back as they were.
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve
