"""Run a real Glewlwyd OpenID provider for integration tests: the password grant and the
OAuth 2.0 Device Authorization Grant (RFC 8628) on one client.

The provider is Debian's ``glewlwyd`` (2.7.5) started directly (no systemd) on 127.0.0.1 over
HTTPS with its own TLS (GnuTLS), using a CA and a server certificate made for the run
(testpki.py). Nothing under /etc or /var is read or written: the config file, the SQLite
database (created from the schema the package ships) and the log live in ``workdir``.

Usage::

    sys.path.insert(0, "Tests/Integration/support")
    from glewlwyd import Glewlwyd

    with Glewlwyd(tmp_path / "idp") as idp:
        idp.add_user("alice", "secret", name="Alice", email="a@example.com")
        ... POST idp.token_endpoint (grant_type=password), trusting only idp.ca_file ...
        ... POST idp.device_authorization_endpoint, poll idp.token_endpoint ...
        idp.approve_device(user_code, "alice", "secret")   # what the login page does

What Glewlwyd does (measured; docs/facts.md, "The second test IdP: Glewlwyd"):

* The OIDC plugin instance ``oidc`` serves everything under ``/api/oidc``; the harness makes
  the issuer ``https://127.0.0.1:PORT/api/oidc`` so that discovery is at
  ``<issuer>/.well-known/openid-configuration`` as OpenID Connect Discovery says.
* The password grant needs the plugin's ``auth-type-password-enabled`` *and*
  ``allow-non-oidc``; it is refused with 403 and an empty body for a wrong password, an unknown
  or a disabled user (not 400 ``invalid_grant``).
* ``sub`` is a random 32-character public identifier Glewlwyd stores per user (not the login).
* Approving a device code is three calls the JavaScript login page makes: ``POST /api/auth/``
  (the password; sets the session cookie), ``PUT /api/auth/grant/{client_id}`` (the consent,
  once per user and client), ``GET /api/oidc/device?code=USER-CODE&g_continue``.
* The admin API (``/api/user/``, ``/api/client/``, ``/api/mod/plugin/``) is used with an admin
  session; the schema's ``admin``/``password`` account gets a random password at first start.
  Every start() applies the plugin parameters again (PUT, then ``reset``: a PUT alone does not
  reach the running instance), so a new port or interval takes effect.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import gzip
import http.client
import json
import os
import pathlib
import secrets
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
import urllib.parse

from testpki import generate_pki, rsa_key

GLEWLWYD = "/usr/bin/glewlwyd"
# The SQLite schema and initial data (scopes, the database user and client backends, the
# admin user) the package ships; the first is what dbconfig-common uses, the second the same
# with DROP statements (docs may be excluded from minimal images).
SCHEMA_FILES = (
    pathlib.Path("/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3"),
    pathlib.Path("/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz"),
)
MODULE_DIR = "/usr/lib/glewlwyd"
START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0

PLUGIN = "oidc"
SCOPE = "openid"
CONFIDENTIAL_CLIENT_ID = "linux-login"
PUBLIC_CLIENT_ID = "linux-public"
# A confidential client allowed the password grant but not the device grant.
NODEVICE_CLIENT_ID = "linux-nodevice"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

_running: "set[Glewlwyd]" = set()  # started, not stopped


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM the server if the Python process that started it
    # dies (even by SIGKILL).
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64u_int(i: int) -> str:
    return base64.urlsafe_b64encode(i.to_bytes((i.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def _private_jwks(kid: str) -> str:
    """A JWKS with one fresh RSA private key, alg RS256 (Glewlwyd requires alg and kid)."""
    priv = rsa_key().private_numbers()
    pub = priv.public_numbers
    jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
           "n": _b64u_int(pub.n), "e": _b64u_int(pub.e), "d": _b64u_int(priv.d),
           "p": _b64u_int(priv.p), "q": _b64u_int(priv.q), "dp": _b64u_int(priv.dmp1),
           "dq": _b64u_int(priv.dmq1), "qi": _b64u_int(priv.iqmp)}
    return json.dumps({"keys": [jwk]})


def _read_schema() -> str:
    for path in SCHEMA_FILES:
        if path.exists():
            data = path.read_bytes()
            return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
    raise RuntimeError("Glewlwyd's SQLite schema is missing (is the glewlwyd package installed?):"
                       f" {', '.join(map(str, SCHEMA_FILES))}")


class GlewlwydError(RuntimeError):
    pass


class HttpSession:
    """A tiny HTTPS client with one cookie jar (what a browser keeps for Glewlwyd: the session
    cookie). It never follows redirects: callers look at ``Location`` themselves."""

    def __init__(self, idp: "Glewlwyd"):
        self.idp = idp
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, json_body=None, form=None,
                headers=None) -> tuple[int, object, http.client.HTTPResponse]:
        hdrs = dict(headers or {})
        body = None
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPSConnection("127.0.0.1", self.idp.port,
                                           context=self.idp.ssl_context(),
                                           timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                k, _, rest = value.partition("=")
                self.cookies[k.strip()] = rest.split(";", 1)[0]
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return resp.status, parsed, resp


class Glewlwyd:
    """A Glewlwyd OpenID provider on https://127.0.0.1:PORT (issuer .../api/oidc)."""

    def __init__(self, workdir: pathlib.Path | str, port: int | None = None,
                 device_interval: int = 5, device_expiration: int = 600,
                 log_level: str = "DEBUG"):
        self.workdir = pathlib.Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.device_interval = device_interval
        self.device_expiration = device_expiration
        self.log_level = log_level
        self._proc: subprocess.Popen | None = None
        self._admin: HttpSession | None = None

        self.ca_file = self.workdir / "ca.pem"
        self.ca_key_file = self.workdir / "ca.key"
        self.cert_file = self.workdir / "server.pem"
        self.key_file = self.workdir / "server.key"
        self.db_file = self.workdir / "glewlwyd.sqlite"
        self.conf_file = self.workdir / "glewlwyd.conf"
        self.server_log = self.workdir / "server.log"
        self._state_file = self.workdir / "state.json"

        state = self._load_state()
        self.port = port or state.get("port") or _free_port()
        self._secret = state.get("secret") or secrets.token_hex(16)
        self._admin_password = state.get("admin_password")  # None: still the schema's
        self._kid = state.get("kid") or "cloudlogin-" + secrets.token_hex(4)
        self._jwks = state.get("jwks") or _private_jwks(self._kid)
        self.clients = {
            "confidential": (CONFIDENTIAL_CLIENT_ID, self._secret),
            "public": (PUBLIC_CLIENT_ID, None),
            "no-device-grant": (NODEVICE_CLIENT_ID, self._secret),
        }
        self._set_urls()

    # ----------------------------------------------------------------- URLs

    def _set_urls(self) -> None:
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/api/{PLUGIN}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        # What discovery lists (checked on every start()).
        self.token_endpoint = f"{self.issuer}/token"
        self.userinfo_endpoint = f"{self.issuer}/userinfo"
        self.jwks_uri = f"{self.issuer}/jwks"
        self.device_authorization_endpoint = f"{self.issuer}/device_authorization"
        self.verification_uri = f"{self.issuer}/device"

    # ---------------------------------------------------------------- state

    def _load_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "port": self.port, "secret": self._secret, "admin_password": self._admin_password,
            "kid": self._kid, "jwks": self._jwks}))
        tmp.chmod(0o600)
        tmp.replace(self._state_file)

    # ---------------------------------------------------------- generation

    def _init_db(self) -> None:
        if self.db_file.exists():
            return
        tmp = self.db_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(tmp)
        try:
            db.executescript(_read_schema())
            db.commit()
        finally:
            db.close()
        tmp.replace(self.db_file)

    def _write_config(self) -> None:
        self.conf_file.write_text(f"""\
# Written by Tests/Integration/support/glewlwyd.py
port={self.port}
bind_address="127.0.0.1"
external_url="{self.base_url}"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="console"
log_level="{self.log_level}"
cookie_domain="127.0.0.1"
cookie_secure=1
cookie_same_site="empty"
session_expiration=2419200
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="{MODULE_DIR}/user"
client_module_path="{MODULE_DIR}/client"
user_auth_scheme_module_path="{MODULE_DIR}/scheme"
plugin_module_path="{MODULE_DIR}/plugin"
use_secure_connection=true
secure_connection_key_file="{self.key_file}"
secure_connection_pem_file="{self.cert_file}"
hash_algorithm="SHA512"
database =
{{
  type = "sqlite3"
  path = "{self.db_file}"
}};
""")

    def _plugin_parameters(self) -> dict:
        return {
            "iss": self.issuer,
            "jwks-private": self._jwks,
            "default-kid": self._kid,
            "jwks-show": True,
            "jwt-type": "rsa",
            "jwt-key-size": "256",
            "access-token-duration": 3600,
            "refresh-token-duration": 1209600,
            "code-duration": 600,
            "refresh-token-rolling": True,
            # The password (and client credentials) grants are "non OIDC": without this the
            # token endpoint answers 403 to grant_type=password even when it is enabled.
            "allow-non-oidc": True,
            "auth-type-code-enabled": True,
            "auth-type-token-enabled": False,
            "auth-type-id-token-enabled": True,
            "auth-type-none-enabled": False,
            "auth-type-password-enabled": True,
            "auth-type-client-enabled": False,
            "auth-type-device-enabled": True,
            "auth-type-refresh-enabled": True,
            "device-authorization-expiration": self.device_expiration,
            "device-authorization-interval": self.device_interval,
            "subject-type": "public",
            "allowed-scope": ["openid", "profile", "email"],
            "name-claim": "mandatory",
            "email-claim": "mandatory",
            "scope-claim": "no",
            "address-claim": {"type": "no"},
            "additional-parameters": [],
            "claims": [],
        }

    def _clients(self) -> list[dict]:
        def client(client_id: str, secret: str | None, grants: list[str]) -> dict:
            c = {"client_id": client_id, "name": client_id, "enabled": True,
                 "confidential": secret is not None, "scope": [SCOPE],
                 "redirect_uri": ["https://127.0.0.1/unused"],
                 "authorization_type": grants + ["refresh_token"],
                 "token_endpoint_auth_method":
                     ["client_secret_basic", "client_secret_post"] if secret else ["none"]}
            if secret is not None:
                c["client_secret"] = secret
            return c
        return [
            client(CONFIDENTIAL_CLIENT_ID, self._secret, ["password", "device_authorization"]),
            client(PUBLIC_CLIENT_ID, None, ["password", "device_authorization"]),
            client(NODEVICE_CLIENT_ID, self._secret, ["password"]),
        ]

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if not self.ca_file.exists():
            generate_pki(self.ca_file, self.cert_file, self.key_file, "Glewlwyd",
                         ca_key_file=self.ca_key_file)
        self._init_db()
        self._save_state()
        self._write_config()
        cmd = [GLEWLWYD, "--config-file", str(self.conf_file)]
        with open(self.server_log, "ab") as log:
            log.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            self._log_start = self.server_log.stat().st_size
            self._proc = subprocess.Popen(
                cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, preexec_fn=_die_with_parent)
        _running.add(self)
        try:
            self._wait_ready()
            self._configure()
        except BaseException:
            self._terminate()
            raise

    def _server_log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.server_log, "rb") as f:
                f.seek(getattr(self, "_log_start", 0))
                data = f.read()
        except OSError:
            return ""
        return data[-n:].decode(errors="replace")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this run's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _wait_ready(self) -> None:
        # GET /config (the web apps' bootstrap) answers as soon as the API listens.
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise GlewlwydError(f"glewlwyd exited with status {self._proc.returncode}:\n"
                                    f"{self._server_log_tail()}")
            try:
                status, _, _ = HttpSession(self).request("GET", "/config")
                if status == 200:
                    return
                last_error = GlewlwydError(f"/config answered {status}")
            except (OSError, http.client.HTTPException) as e:
                last_error = e
            time.sleep(0.05)
        raise GlewlwydError(f"glewlwyd not ready after {START_TIMEOUT:.0f} s ({last_error!r});"
                            f" server log tail:\n{self._server_log_tail()}")

    def _admin_call(self, method: str, path: str, body=None, ok=(200,)) -> object:
        status, data, _ = self._admin.request(method, path, json_body=body)
        if status not in ok:
            raise GlewlwydError(f"admin API {method} {path} answered {status}: {data!r}")
        return status

    def _configure(self) -> None:
        """Idempotent: the admin session, the OIDC plugin instance (its issuer follows the
        port), the clients. Runs on every start."""
        self._admin = HttpSession(self)
        password = self._admin_password or "password"  # the schema's initial admin password
        status, data, _ = self._admin.request("POST", "/api/auth/",
                                              json_body={"username": "admin", "password": password})
        if status != 200:
            raise GlewlwydError(f"admin login answered {status}: {data!r}")
        if self._admin_password is None:
            self._admin_password = secrets.token_urlsafe(18)
            self._admin_call("PUT", "/api/user/admin", {
                "username": "admin", "name": "The Administrator", "enabled": True,
                "scope": ["g_admin", "g_profile"], "password": self._admin_password})
            self._save_state()

        plugin = {"module": "oidc", "name": PLUGIN, "display_name": "CloudLogin tests",
                  "parameters": self._plugin_parameters()}
        if self._admin.request("GET", f"/api/mod/plugin/{PLUGIN}")[0] == 404:
            self._admin_call("POST", "/api/mod/plugin/", plugin)
        else:
            # PUT only stores the parameters; "reset" re-initialises the running instance
            # (without it discovery keeps the old issuer and the old interval).
            self._admin_call("PUT", f"/api/mod/plugin/{PLUGIN}", plugin)
            self._admin_call("PUT", f"/api/mod/plugin/{PLUGIN}/reset")

        for c in self._clients():
            if self._admin.request("GET", f"/api/client/{c['client_id']}")[0] == 404:
                self._admin_call("POST", "/api/client/", c)
            else:
                self._admin_call("PUT", f"/api/client/{c['client_id']}", c)

        status, disco, _ = HttpSession(self).request(
            "GET", urllib.parse.urlsplit(self.discovery_url).path)
        if status != 200:
            raise GlewlwydError(f"discovery answered {status}: {disco!r}")
        self._check_discovery(disco)

    def _check_discovery(self, disco: dict) -> None:
        expected = {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "jwks_uri": self.jwks_uri,
            "device_authorization_endpoint": self.device_authorization_endpoint,
        }
        for key, value in expected.items():
            if disco.get(key) != value:
                raise GlewlwydError(f"discovery {key} is {disco.get(key)!r}, expected {value!r}")
        self.discovery = disco

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        self._admin = None
        _running.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        self._terminate()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> "Glewlwyd":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- users

    def _require_admin(self) -> None:
        if self._admin is None:
            raise GlewlwydError("not running: start() first")

    def add_user(self, username: str, password: str, name: str = "", email: str = "") -> None:
        """Create or replace a user (enabled) through the admin API."""
        self._require_admin()
        user = {"username": username, "name": name, "email": email, "enabled": True,
                "scope": [SCOPE], "password": password}
        if self._admin.request("GET", f"/api/user/{urllib.parse.quote(username)}")[0] == 404:
            self._admin_call("POST", "/api/user/", user)
        else:
            self._admin_call("PUT", f"/api/user/{urllib.parse.quote(username)}", user)

    def _get_user(self, username: str) -> dict:
        self._require_admin()
        status, user, _ = self._admin.request("GET", f"/api/user/{urllib.parse.quote(username)}")
        if status == 404:
            raise KeyError(username)
        if status != 200:
            raise GlewlwydError(f"GET user {username} answered {status}")
        return user

    def _put_user(self, username: str, **changes) -> None:
        user = self._get_user(username)
        body = {k: user.get(k) for k in ("username", "name", "email", "enabled", "scope")}
        body.update(changes)
        self._admin_call("PUT", f"/api/user/{urllib.parse.quote(username)}", body)

    def set_password(self, username: str, password: str) -> None:
        self._put_user(username, password=password)

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        self._put_user(username, enabled=not disabled)

    # --------------------------------------------------------------- device

    def approve_device(self, user_code: str, username: str, password: str) -> str:
        """Approve a device code as the user, with the calls Glewlwyd's login page makes.

        Returns the ``prompt`` of the login page Glewlwyd finally redirects to:
        ``deviceComplete`` (approved), ``deviceCodeError`` (unknown, used or expired code),
        ``deviceServerError``. Raises GlewlwydError if the password is refused."""
        browser = HttpSession(self)
        verify = urllib.parse.urlsplit(self.verification_uri).path
        # 1. The user opens verification_uri_complete: without a session Glewlwyd redirects to
        #    login.html?client_id=...&scope=...&callback_url=<the device URL> (or straight to
        #    prompt=deviceCodeError for a bad code).
        status, _, resp = browser.request(
            "GET", f"{verify}?{urllib.parse.urlencode({'code': user_code})}")
        location = _location(status, resp)
        params = _query(location)
        if "prompt" in params:
            return params["prompt"]
        client_id, scope, callback_url = params["client_id"], params["scope"], params["callback_url"]
        # 2. The login form: POST /api/auth/ with the password sets the session cookie.
        status, data, _ = browser.request("POST", "/api/auth/",
                                          json_body={"username": username, "password": password})
        if status != 200:
            raise GlewlwydError(f"login as {username} answered {status}: {data!r}")
        # 3. The consent screen: the scopes the client asks for, granted once per user.
        q = urllib.parse.quote
        status, grant, _ = browser.request("GET", f"/api/auth/grant/{q(client_id)}/{q(scope)}")
        if status != 200:
            raise GlewlwydError(f"grant list answered {status}: {grant!r}")
        if not all(s.get("granted") for s in grant["scope"]):
            status, data, _ = browser.request("PUT", f"/api/auth/grant/{q(client_id)}",
                                              json_body={"scope": scope})
            if status != 200:
                raise GlewlwydError(f"grant answered {status}: {data!r}")
        # 4. "Continue": back to the device URL with g_continue.
        cb = urllib.parse.urlsplit(callback_url)
        status, _, resp = browser.request("GET", f"{cb.path}?{cb.query}&g_continue")
        params = _query(_location(status, resp))
        if "prompt" not in params:
            raise GlewlwydError(f"device approval went back to the login page: {params!r}")
        return params["prompt"]

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_file, timeout=10, isolation_level=None)

    def expire_device_codes(self) -> int:
        """Make every device code not yet used expire now (Glewlwyd's are valid for
        ``device_expiration`` seconds). Returns how many."""
        db = self._db()
        try:
            return db.execute(
                "UPDATE gpo_device_authorization SET gpoda_expires_at = strftime('%s','now') - 1"
                " WHERE gpoda_status IN (0, 1)").rowcount
        finally:
            db.close()

    def disable_device_codes(self) -> int:
        """Set every device code not yet used to Glewlwyd's "disabled" status (3); polling it
        then gives access_denied. Glewlwyd has no user-side deny."""
        db = self._db()
        try:
            return db.execute("UPDATE gpo_device_authorization SET gpoda_status = 3"
                              " WHERE gpoda_status IN (0, 1)").rowcount
        finally:
            db.close()


def _location(status: int, resp: http.client.HTTPResponse) -> str:
    location = resp.getheader("Location")
    if status != 302 or not location:
        raise GlewlwydError(f"expected a redirect, got {status} (Location {location!r})")
    return location


def _query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
