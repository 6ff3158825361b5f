"""Run a real LemonLDAP::NG OpenID Connect provider for integration tests.

The provider is the Debian ``lemonldap-ng`` portal started with ``plackup``
(HTTP::Server::PSGI, single process) over HTTPS on 127.0.0.1, with a CA and a
server certificate generated for the run. Nothing under /etc or
/var/lib/lemonldap-ng is read or written: the ini file, the configuration
(``conf/lmConf-1.json``), the session stores and the SQLite user database all
live in ``workdir``.

Usage::

    sys.path.insert(0, "Tests/Integration/support")
    from llng import LemonLDAP

    with LemonLDAP(tmp_path / "idp") as idp:
        idp.add_user("alice", "secret", name="Alice", email="a@example.com",
                     groups=["staff", "admins"])
        ... POST idp.token_endpoint, trusting only idp.ca_file ...

Notes on what LemonLDAP::NG 2.16 does (measured):

* ``issuer`` is ``https://127.0.0.1:PORT`` (no trailing slash); endpoints are
  ``<issuer>/oauth2/token``, ``/oauth2/userinfo``, ``/oauth2/jwks``.
* ``groups`` is a JSON array in both the ID token and userinfo (one element
  for a single group); a user without groups gets no ``groups`` claim.
* The confidential client's secret is hex and chosen so that
  base64("client_id:secret") holds no ``+`` or ``/``: LLNG parses the Basic
  header with ``/^Basic (\\w+)/`` and would silently cut the credentials.
* Users are read live from the SQLite view ``active_users``
  (``users WHERE disabled = 0``); passwords are stored in clear.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
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

from cryptography.hazmat.primitives import serialization

from testpki import generate_pki, pem_key, rsa_key

PORTAL_PSGI = "/usr/share/lemonldap-ng/portal/htdocs/index.psgi"
PORTAL_TEMPLATES = "/usr/share/lemonldap-ng/portal/templates"
PLACKUP = "plackup"
START_TIMEOUT = 20.0

CONFIDENTIAL_CLIENT_ID = "linux-login"
PUBLIC_CLIENT_ID = "linux-public"
# A confidential client whose registration does not allow the password grant (LLNG answers
# unauthorized_client), for `cloudlogin check --test-user`. Same secret as linux-login.
NOGRANT_CLIENT_ID = "linux-nogrant"

# Wraps the portal: one access-log line per request ("POST /oauth2/token 200"),
# flushed at once, written before the response goes on the wire. A request
# whose handler dies is logged as 500 instead of vanishing.
_APP_PSGI = r"""
use strict;
use warnings;
use IO::Handle;
use Plack::Builder;
use Plack::Util;

my $logfile = $ENV{CLOUDLOGIN_ACCESS_LOG} or die "CLOUDLOGIN_ACCESS_LOG is not set\n";
open( my $log, '>>', $logfile ) or die "open $logfile: $!\n";
$log->autoflush(1);

my $portal = Plack::Util::load_psgi('%(portal)s');
my $safe = sub {
    my $env = shift;
    my $res = eval { $portal->($env) };
    return $res if $res;
    print STDERR "cloudlogin: portal died: $@\n";
    return [ 500, [ 'Content-Type' => 'text/plain' ], ["internal error\n"] ];
};

builder {
    enable 'AccessLog', format => '%%m %%U %%>s', logger => sub { print {$log} @_ };
    $safe;
};
"""


_running: "set[LemonLDAP]" = set()  # started, not stopped or detached


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM the server if the Python process
    # that started it dies (even by SIGKILL). Not used for detached servers.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _basic_safe_secret() -> str:
    """A hex secret whose Basic header LLNG's /^Basic (\\w+)/ reads whole."""
    while True:
        secret = secrets.token_hex(16)
        b64 = base64.b64encode(f"{CONFIDENTIAL_CLIENT_ID}:{secret}".encode()).decode()
        if "+" not in b64 and "/" not in b64:
            return secret


class LemonLDAP:
    """A LemonLDAP::NG OpenID provider on https://127.0.0.1:PORT."""

    def __init__(self, workdir: pathlib.Path | str, port: int | None = None,
                 log_level: str = "warn"):
        self.workdir = pathlib.Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._fixed_port = port is not None
        self.log_level = log_level
        self._proc: subprocess.Popen | None = None
        self._log_offset = 0
        # Set by idp-server before start(): the server must outlive this process.
        self.daemon = False
        # The address plackup listens on. The issuer stays https://127.0.0.1:PORT; the benchmark
        # listens on 127.0.0.2 and puts a delaying proxy on 127.0.0.1:PORT (make bench).
        self.bind_host = "127.0.0.1"
        # "nginx": TLS, HTTP/2 and HTTP/1.1 keep-alive by nginx on bind_host:PORT, which hands each
        # request to plackup over plain HTTP on 127.0.0.1 (how Debian deploys LemonLDAP::NG).
        # plackup's HTTP::Server::PSGI answers HTTP/1.0 and closes every connection after one
        # answer, so without a front no client can reuse a connection (make bench uses it).
        self.front: str | None = None
        self._front_proc: subprocess.Popen | None = None
        self.front_log = self.workdir / "front-access.log"

        self.ca_file = self.workdir / "ca.pem"
        self.ca_key_file = self.workdir / "ca.key"
        self.cert_file = self.workdir / "server.pem"
        self.key_file = self.workdir / "server.key"
        self.sig_key_file = self.workdir / "oidc-sig.key"
        self.db_file = self.workdir / "users.sqlite"
        self.ini_file = self.workdir / "lemonldap-ng.ini"
        self.conf_dir = self.workdir / "conf"
        self.app_file = self.workdir / "app.psgi"
        self.access_log = self.workdir / "access.log"
        self.server_log = self.workdir / "server.log"
        self._state_file = self.workdir / "state.json"

        state = self._load_state()
        if port is None:
            port = state.get("port") or _free_port()
        self.port = port
        self._secret = state.get("secret") or _basic_safe_secret()
        self._kid = state.get("kid") or "cloudlogin-" + secrets.token_hex(4)
        self.clients = {
            "confidential": (CONFIDENTIAL_CLIENT_ID, self._secret),
            "public": (PUBLIC_CLIENT_ID, None),
            "no-password-grant": (NOGRANT_CLIENT_ID, self._secret),
        }
        self._set_urls()
        self._init_db()

    # ----------------------------------------------------------------- URLs

    def _set_urls(self) -> None:
        self.issuer = f"https://127.0.0.1:{self.port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        # What LLNG's discovery lists (checked on every start()).
        self.token_endpoint = f"{self.issuer}/oauth2/token"
        self.userinfo_endpoint = f"{self.issuer}/oauth2/userinfo"
        self.jwks_uri = f"{self.issuer}/oauth2/jwks"

    # ---------------------------------------------------------------- state

    def _load_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        self._state_file.write_text(json.dumps(
            {"port": self.port, "secret": self._secret, "kid": self._kid}))

    # ---------------------------------------------------------------- users

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_file, timeout=10, isolation_level=None)

    def _init_db(self) -> None:
        db = self._db()
        try:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS users (
                    login    TEXT PRIMARY KEY,
                    password TEXT NOT NULL,
                    name     TEXT,
                    email    TEXT,
                    groups   TEXT,
                    disabled INTEGER NOT NULL DEFAULT 0
                );
                CREATE VIEW IF NOT EXISTS active_users AS
                    SELECT * FROM users WHERE disabled = 0;
            """)
        finally:
            db.close()

    def add_user(self, login: str, password: str, name: str = "", email: str = "",
                 groups: list[str] = ()) -> None:
        """Create or replace a user (enabled). Read live by the IdP."""
        for g in groups:
            if ";" in g:
                raise ValueError(f"group name {g!r} must not contain ';'")
        db = self._db()
        try:
            db.execute(
                "INSERT OR REPLACE INTO users (login, password, name, email, groups, disabled)"
                " VALUES (?, ?, ?, ?, ?, 0)",
                (login, password, name or None, email or None,
                 "; ".join(groups) or None))
        finally:
            db.close()

    def _update(self, login: str, column: str, value) -> None:
        db = self._db()
        try:
            cur = db.execute(f"UPDATE users SET {column} = ? WHERE login = ?", (value, login))
            if cur.rowcount != 1:
                raise KeyError(login)
        finally:
            db.close()

    def set_password(self, login: str, password: str) -> None:
        self._update(login, "password", password)

    def set_disabled(self, login: str, disabled: bool = True) -> None:
        self._update(login, "disabled", 1 if disabled else 0)

    # ---------------------------------------------------------- generation

    def _generate_pki(self) -> None:
        generate_pki(self.ca_file, self.cert_file, self.key_file, "LemonLDAP::NG",
                     ca_key_file=self.ca_key_file)
        # The provider's ID-token signing key; written after the CA, which marks the PKI as
        # complete only when this key exists too.
        self.sig_key_file.write_bytes(pem_key(rsa_key()))
        self.sig_key_file.chmod(0o600)

    def _write_config(self) -> None:
        w = self.workdir
        for d in ("conf", "sessions/lock", "psessions/lock", "cache"):
            (w / d).mkdir(parents=True, exist_ok=True)

        self.ini_file.write_text(f"""\
[all]
logLevel = {self.log_level}
checkTime = 1

[configuration]
type = File
dirName = {self.conf_dir}

[portal]
staticPrefix = /static
templateDir = {PORTAL_TEMPLATES}
languages = en
""")
        self.app_file.write_text(_APP_PSGI % {"portal": PORTAL_PSGI})

        sig_key = serialization.load_pem_private_key(self.sig_key_file.read_bytes(), None)
        sig_pub = sig_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

        def rp(client_id: str, secret: str | None, password_grant: int = 1) -> dict:
            opts = {
                "oidcRPMetaDataOptionsClientID": client_id,
                "oidcRPMetaDataOptionsDisplayName": client_id,
                "oidcRPMetaDataOptionsAllowPasswordGrant": password_grant,
                "oidcRPMetaDataOptionsIDTokenSignAlg": "RS256",
                "oidcRPMetaDataOptionsIDTokenForceClaims": 1,
                "oidcRPMetaDataOptionsBypassConsent": 1,
                "oidcRPMetaDataOptionsRedirectUris": "https://127.0.0.1/unused",
                "oidcRPMetaDataOptionsUserIDAttr": "uid",
            }
            if secret is None:
                opts["oidcRPMetaDataOptionsPublic"] = 1
            else:
                opts["oidcRPMetaDataOptionsClientSecret"] = secret
            return opts

        claims = {
            "preferred_username": "uid",
            "name": "cn",
            "email": "mail",
            # "; "-separated column, always released as a JSON array.
            "groups": "dbgroups;string;always",
        }
        conf = {
            "cfgNum": 1,
            "cfgAuthor": "CloudLogin integration tests",
            "cfgDate": str(int(time.time())),
            "cfgVersion": "2.16.1",
            "portal": f"{self.issuer}/",
            "domain": "127.0.0.1",
            "securedCookie": 0,
            "timeout": 72000,
            "authentication": "DBI",
            "userDB": "Same",
            "passwordDB": "Null",
            "registerDB": "Null",
            "dbiAuthChain": f"dbi:SQLite:dbname={self.db_file}",
            "dbiAuthUser": "",
            "dbiAuthPassword": "",
            "dbiAuthTable": "active_users",
            "dbiUserTable": "active_users",
            "dbiAuthLoginCol": "login",
            "dbiAuthPasswordCol": "password",
            "dbiAuthPasswordHash": "",
            "dbiExportedVars": {"uid": "login", "cn": "name", "mail": "email",
                                "dbgroups": "groups"},
            "exportedVars": {},
            "whatToTrace": "uid",
            "macros": {},
            "locationRules": {"127.0.0.1": {"default": "accept"}},
            "exportedHeaders": {},
            "groups": {},
            "notification": 0,
            "loginHistoryEnabled": 0,
            "globalStorage": "Apache::Session::File",
            "globalStorageOptions": {
                "Directory": str(w / "sessions"),
                "LockDirectory": str(w / "sessions/lock"),
                "generateModule":
                    "Lemonldap::NG::Common::Apache::Session::Generate::SHA256",
            },
            "persistentStorage": "Apache::Session::File",
            "persistentStorageOptions": {
                "Directory": str(w / "psessions"),
                "LockDirectory": str(w / "psessions/lock"),
            },
            "localSessionStorage": "Cache::FileCache",
            "localSessionStorageOptions": {
                "namespace": "lemonldap-ng-sessions",
                "default_expires_in": 600,
                "directory_umask": "007",
                "cache_root": str(w / "cache"),
                "cache_depth": 3,
            },
            "issuerDBOpenIDConnectActivation": 1,
            "oidcServiceMetaDataIssuer": self.issuer,
            "oidcServicePrivateKeySig": pem_key(sig_key).decode(),
            "oidcServicePublicKeySig": sig_pub.decode(),
            "oidcServiceKeyIdSig": self._kid,
            "oidcServiceIgnoreScopeForClaims": 1,
            "oidcRPMetaDataOptions": {
                CONFIDENTIAL_CLIENT_ID: rp(CONFIDENTIAL_CLIENT_ID, self._secret),
                PUBLIC_CLIENT_ID: rp(PUBLIC_CLIENT_ID, None),
                NOGRANT_CLIENT_ID: rp(NOGRANT_CLIENT_ID, self._secret, password_grant=0),
            },
            "oidcRPMetaDataExportedVars": {
                CONFIDENTIAL_CLIENT_ID: dict(claims),
                PUBLIC_CLIENT_ID: dict(claims),
                NOGRANT_CLIENT_ID: dict(claims),
            },
        }
        tmp = self.conf_dir / "lmConf-1.json.tmp"
        tmp.write_text(json.dumps(conf, indent=1, sort_keys=True))
        tmp.replace(self.conf_dir / "lmConf-1.json")
        self._save_state()

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if not (self.ca_file.exists() and self.sig_key_file.exists()):
            self._generate_pki()
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            if not self._fixed_port and (attempt > 0 or not _port_is_free(self.port)):
                self.port = _free_port()
                self._set_urls()
            try:
                self._spawn()
                return
            except _AddressInUse:
                if attempt == attempts - 1:
                    raise RuntimeError(f"port {self.port} is in use") from None

    def _spawn(self) -> None:
        self._write_config()
        self.access_log.write_bytes(b"")
        self._log_offset = 0
        env = dict(os.environ)
        env.update(
            LLNG_DEFAULTCONFFILE=str(self.ini_file),
            CLOUDLOGIN_ACCESS_LOG=str(self.access_log),
            PLACK_ENV="deployment",
        )
        if self.front == "nginx":
            self._upstream_port = _free_port()
            cmd = [PLACKUP, "-E", "deployment", "-s", "HTTP::Server::PSGI",
                   "--host", "127.0.0.1", "--port", str(self._upstream_port), str(self.app_file)]
        else:
            cmd = [
                PLACKUP, "-E", "deployment", "-s", "HTTP::Server::PSGI",
                "--host", self.bind_host, "--port", str(self.port),
                "--enable-ssl", "--ssl-key-file", str(self.key_file),
                "--ssl-cert-file", str(self.cert_file),
                str(self.app_file),
            ]
        with open(self.server_log, "ab") as log:
            log.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True,
                preexec_fn=None if self.daemon else _die_with_parent)
        _running.add(self)
        self._log_start = self.server_log.stat().st_size
        try:
            if self.front == "nginx":
                self._start_nginx()
            self._wait_ready()
        except BaseException:
            self._terminate()
            raise

    def _start_nginx(self) -> None:
        conf = self.workdir / "nginx.conf"
        temp = self.workdir / "nginx-temp"
        temp.mkdir(exist_ok=True)
        self.front_log.write_bytes(b"")
        conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
user root;
pid {self.workdir / 'nginx.pid'};
error_log {self.workdir / 'nginx-error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    log_format conn '$connection $connection_requests $request_method $uri $status';
    access_log {self.front_log} conn;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000;
    server {{
        listen {self.bind_host}:{self.port} ssl http2;
        ssl_certificate {self.cert_file};
        ssl_certificate_key {self.key_file};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://127.0.0.1:{self._upstream_port};
            proxy_set_header Host 127.0.0.1:{self.port};
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
        }}
    }}
}}
""")
        with open(self.server_log, "ab") as log:
            self._front_proc = subprocess.Popen(
                ["nginx", "-c", str(conf), "-p", str(self.workdir)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True,
                preexec_fn=None if self.daemon else _die_with_parent)

    def front_connections(self) -> int:
        """Connections that carried at least one request through the front (nginx), so far."""
        try:
            lines = self.front_log.read_text(errors="replace").split("\n")[:-1]
        except FileNotFoundError:
            return 0
        return sum(1 for line in lines if line.split()[1:2] == ["1"])

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
        ctx = self.ssl_context()
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._server_log_tail()
                if "Address already in use" in tail:
                    raise _AddressInUse()
                raise RuntimeError(
                    f"LemonLDAP::NG exited with status {self._proc.returncode}:\n{tail}")
            try:
                conn = http.client.HTTPSConnection(self.bind_host, self.port, context=ctx,
                                                   timeout=5)
                if self.bind_host != "127.0.0.1":
                    ctx.check_hostname = False  # the certificate names 127.0.0.1
                try:
                    conn.request("GET", "/.well-known/openid-configuration")
                    resp = conn.getresponse()
                    body = resp.read()
                finally:
                    conn.close()
                if resp.status == 200:
                    self._check_discovery(json.loads(body))
                    # The readiness probes are not part of request_log().
                    self._log_offset = len(self._read_access_log())
                    return
                last_error = RuntimeError(f"discovery answered {resp.status}: {body[:200]!r}")
            except (ConnectionError, OSError, http.client.HTTPException) as e:
                last_error = e
            time.sleep(0.05)
        raise RuntimeError(
            f"LemonLDAP::NG not ready after {START_TIMEOUT:.0f} s ({last_error!r});"
            f" server log tail:\n{self._server_log_tail()}")

    def _check_discovery(self, disco: dict) -> None:
        expected = {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "jwks_uri": self.jwks_uri,
        }
        for key, value in expected.items():
            if disco.get(key) != value:
                raise RuntimeError(f"discovery {key} is {disco.get(key)!r}, expected {value!r}")
        self.discovery = disco

    def _terminate(self) -> None:
        front, self._front_proc = self._front_proc, None
        if front is not None and front.poll() is None:
            front.send_signal(signal.SIGTERM)
            try:
                front.wait(timeout=10)
            except subprocess.TimeoutExpired:
                front.kill()
                front.wait()
        proc, self._proc = self._proc, None
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

    def detach(self) -> int:
        """Leave the server running after this object goes away; return its pid.

        Set ``daemon = True`` before start() too, or the server gets SIGTERM
        when the starting process exits."""
        if self._proc is None:
            raise RuntimeError("not running")
        pid = self._proc.pid
        self._proc.returncode = 0  # silence Popen's "still running" warning
        self._proc = None
        _running.discard(self)
        return pid

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> "LemonLDAP":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------- request log

    def _read_access_log(self) -> list[str]:
        try:
            data = self.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        # Only complete lines: a line is written with one print + flush.
        return data.split("\n")[:-1]

    def request_log(self) -> list[str]:
        """One "METHOD /path STATUS" entry per request since start() returned."""
        return self._read_access_log()[self._log_offset:]

    def mark(self) -> int:
        return len(self.request_log())

    def requests_since(self, mark: int) -> list[str]:
        return self.request_log()[mark:]


class _AddressInUse(Exception):
    pass
