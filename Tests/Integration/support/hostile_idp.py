"""A hostile OpenID provider for fault-injection tests: HTTPS on 127.0.0.1, run in a thread.

By default it behaves like a well-mannered OIDC IdP (discovery, JWKS, a password grant that
answers an RS256 ID token for the users it knows). Each fault is one setting away:

    idp = HostileIdP(workdir); idp.start()
    idp.add_user("hank", "Hank pw 1")
    idp.token = Raw(b"HTTP/1.1 503 ...")       # or Status(502), Drip(...), Hang(), Huge(...) ...
    idp.id_token = {"claims": {"iss": "https://evil"}}   # how the next ID token is minted
    idp.tls = "wrong_ca" | "wrong_host"           # which certificate the next handshakes show
    idp.jwks = Status(503)                        # the JWKS endpoint's behaviour
    idp.reset()                                   # back to good manners
    idp.keep_alive = 0.5    # HTTP/1.1 keep-alive: an idle connection is closed after 0.5 s
    idp.down = True         # every connection is closed as soon as it is accepted (and open
                            # kept-alive ones are closed): an IdP that went down

It has the attributes `cltest.Site.write_config` reads from an IdP (issuer, clients, ca_file),
counts TCP connections and keeps a request log ("POST /token 200") like llng.py.

Nothing here is trusted by the module unless the test's config names `ca_file`: the CA is made
per run. The wrong-CA certificate comes from a second CA; the wrong-host certificate is signed
by the right CA for a name that is not 127.0.0.1.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import ipaddress
import json
import pathlib
import secrets
import select
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_ID = "linux-login"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


# ---- what an endpoint does ----------------------------------------------------------------

@dataclasses.dataclass
class Status:
    """An HTTP answer: status, body, content type."""
    code: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass
class Raw:
    """Bytes written as they are, then the connection is closed."""
    data: bytes


@dataclasses.dataclass
class Hang:
    """Reads the request, then never answers (until the server stops)."""


@dataclasses.dataclass
class Drip:
    """A 200 whose body comes one byte every `interval` seconds."""
    body: bytes
    interval: float = 0.2


@dataclasses.dataclass
class Huge:
    """A 200 with `size` bytes of JSON-ish body, announced or chunked."""
    size: int
    chunked: bool = False


Behaviour = "Status | Raw | Hang | Drip | Huge | None"  # None: the good behaviour


# ---- certificates -------------------------------------------------------------------------

def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {secrets.token_hex(4)}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, names: list[x509.GeneralName]) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile idp")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


class HostileIdP:
    def __init__(self, workdir: pathlib.Path):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.secret = secrets.token_hex(16)
        self.clients = {"confidential": (CLIENT_ID, self.secret)}
        self.users: dict[str, tuple[str, dict]] = {}
        self.log: list[str] = []
        self.connections = 0
        # Seconds an idle connection is kept open for another request (None: one request per
        # connection, "Connection: close"); `down`: closes every connection at once.
        self.keep_alive: float | None = None
        self.down = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._make_pki()
        self.signing_keys = [("k1", _key())]  # the JWKS; the first one signs
        self.reset()

    # ---- setup ----------------------------------------------------------------------------

    def _make_pki(self) -> None:
        ca_key, ca_cert = _ca("hostile test CA")
        other_key, other_cert = _ca("some other CA")
        loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        self.ca_file = self.workdir / "ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self._contexts: dict[str, ssl.SSLContext] = {}
        for profile, (key, cert) in {
            "good": _leaf(ca_key, ca_cert, loopback),
            "wrong_ca": _leaf(other_key, other_cert, loopback),
            "wrong_host": _leaf(ca_key, ca_cert, [x509.DNSName("idp.elsewhere.test")]),
        }.items():
            cert_file, key_file = self.workdir / f"{profile}.pem", self.workdir / f"{profile}.key"
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_file.write_bytes(_pem(key))
            key_file.chmod(0o600)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            self._contexts[profile] = context

    def reset(self) -> None:
        """Good manners everywhere (keys stay as they are: rotation is sticky, like at an IdP)."""
        self.tls = "good"
        self.discovery: Behaviour = None
        self.jwks: Behaviour = None
        self.token: Behaviour = None
        self.id_token: dict = {}
        self.keep_alive = None
        self.down = False

    def add_user(self, login: str, password: str, sub: str | None = None, **claims) -> None:
        self.users[login] = (password, {"sub": sub or f"{login}-subject", "preferred_username": login,
                                        "name": f"{login.title()} Example", **claims})

    def rotate_keys(self) -> None:
        """A new signing key replaces the old one in the JWKS and signs from now on."""
        self.signing_keys = [(f"k{len(self.log)}-{secrets.token_hex(2)}", _key())]

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.issuer = f"https://127.0.0.1:{self.port}"
        self.token_endpoint = f"{self.issuer}/token"
        self.jwks_uri = f"{self.issuer}/jwks"
        self._thread = threading.Thread(target=self._serve, name="hostile-idp", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def mark(self) -> int:
        return len(self.log)

    def requests_since(self, mark: int) -> list[str]:
        return self.log[mark:]

    # ---- tokens ---------------------------------------------------------------------------

    def jwks_document(self) -> dict:
        keys = []
        for kid, key in self.signing_keys:
            numbers = key.public_key().public_numbers()
            keys.append({"kty": "RSA", "kid": kid, "use": "sig", "n": _uint(numbers.n), "e": _uint(numbers.e)})
        return {"keys": keys}

    def mint(self, claims: dict) -> str:
        """An ID token for `claims`, shaped by self.id_token: {"header": {...}, "claims": {...},
        "sign": "rs256" | "none" | "hs256-public-key", "drop": [claim names]}."""
        shape = self.id_token
        kid, key = self.signing_keys[0]
        now = int(time.time())
        body = {"iss": self.issuer, "aud": [CLIENT_ID], "azp": CLIENT_ID, "iat": now, "exp": now + 300, **claims}
        body.update(shape.get("claims", {}))
        for name in shape.get("drop", []):
            body.pop(name, None)
        sign = shape.get("sign", "rs256")
        header = {"alg": {"rs256": "RS256", "none": "none", "hs256-public-key": "HS256"}[sign], "kid": kid, "typ": "JWT"}
        header.update(shape.get("header", {}))
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}".encode()
        if sign == "rs256":
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif sign == "none":
            signature = b""
        else:  # the classic key confusion: HMAC keyed with the public key's PEM
            pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
        return f"{signing_input.decode()}.{b64url(signature)}"

    # ---- serving --------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.connections += 1
            if self.down:
                sock.close()
                continue
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            conn = self._contexts[self.tls].wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the client refused our certificate: that is the point of the test
            return
        try:
            while True:
                method, path, headers, body = self._read_request(conn)
                if method is None:
                    return
                keep = self._answer(conn, method, path, headers, body)
                if not keep or not self._idle(conn):
                    return
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _idle(self, conn) -> bool:
        """Waits up to keep_alive seconds for the next request on `conn`: True when one comes."""
        if self.keep_alive is None:
            return False
        until = time.monotonic() + self.keep_alive
        while time.monotonic() < until and not self.down and not self._stop.is_set():
            if conn.pending():
                return True
            readable, _, _ = select.select([conn], [], [], min(0.05, max(0.0, until - time.monotonic())))
            if readable:
                return True
        return False

    @staticmethod
    def _read_request(conn) -> tuple:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None, None, None, None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return method, path, headers, body

    def _answer(self, conn, method: str, path: str, headers: dict, body: bytes) -> bool:
        route = path.split("?", 1)[0]
        if route == "/.well-known/openid-configuration":
            behaviour, good = self.discovery, lambda: self._json(200, {
                "issuer": self.issuer, "token_endpoint": self.token_endpoint, "jwks_uri": self.jwks_uri,
                "grant_types_supported": ["password"], "id_token_signing_alg_values_supported": ["RS256"]})
        elif route == "/jwks":
            behaviour, good = self.jwks, lambda: self._json(200, self.jwks_document())
        elif route == "/token" and method == "POST":
            behaviour, good = self.token, lambda: self._grant(headers, body)
        else:
            behaviour, good = None, lambda: Status(404, b'{"error":"not_found"}')
        if callable(behaviour):
            behaviour = behaviour()
        answer = good() if behaviour is None else behaviour
        status = answer.code if isinstance(answer, Status) else (200 if isinstance(answer, (Drip, Huge)) else 0)
        with self._lock:
            self.log.append(f"{method} {route} {status or type(answer).__name__.lower()}")
        keep = self.keep_alive is not None and isinstance(answer, Status)
        self._send(conn, answer, keep)
        return keep

    @staticmethod
    def _json(code: int, document) -> Status:
        return Status(code, json.dumps(document).encode())

    def _grant(self, headers: dict, body: bytes) -> Status:
        form = urllib.parse.parse_qs(body.decode(errors="replace"), keep_blank_values=True)
        auth = headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{self.secret}".encode()).decode()
        if auth != expected:
            return self._json(401, {"error": "invalid_client"})
        if form.get("grant_type") != ["password"]:
            return self._json(400, {"error": "unsupported_grant_type"})
        login, password = form.get("username", [""])[0], form.get("password", [""])[0]
        user = self.users.get(login)
        if user is None or user[0] != password:
            return self._json(400, {"error": "invalid_grant"})
        return self._json(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                                "expires_in": 300, "id_token": self.mint(user[1])})

    def _send(self, conn, answer, keep: bool = False) -> None:
        if isinstance(answer, Raw):
            conn.sendall(answer.data)
        elif isinstance(answer, Status):
            extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers)
            head = (f"HTTP/1.1 {answer.code} X\r\nContent-Type: {answer.content_type}\r\n"
                    f"Content-Length: {len(answer.body)}\r\n{extra}Connection: {'keep-alive' if keep else 'close'}\r\n\r\n")
            conn.sendall(head.encode() + answer.body)
        elif isinstance(answer, Hang):
            self._stop.wait(60)
        elif isinstance(answer, Drip):
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(answer.body)}\r\n\r\n".encode())
            for byte in answer.body:
                if self._stop.wait(answer.interval):
                    return
                conn.sendall(bytes([byte]))
        elif isinstance(answer, Huge):
            chunk = b'{"a":"' + b"x" * 65000 + b'",'
            if answer.chunked:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                sent = 0
                while sent < answer.size:
                    conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    sent += len(chunk)
                conn.sendall(b"0\r\n\r\n")
            else:
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {answer.size}\r\n\r\n".encode())
                sent = 0
                while sent < answer.size:
                    part = chunk[: answer.size - sent]
                    conn.sendall(part)
                    sent += len(part)
