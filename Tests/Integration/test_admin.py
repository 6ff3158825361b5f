"""The admin's tools, as an admin sees them: `cloudlogin setup`, `cloudlogin check` naming each
injected misconfiguration with its fix, `cloudlogin login --trace --dry-run`, `status --json`,
and the man pages rendering without warnings and matching the code. Against the real
LemonLDAP::NG IdP (and, for a skewed clock and the Okta endpoint, a small HTTPS server signed
by the same test CA)."""
from __future__ import annotations

import contextlib
import email.utils
import http.server
import json
import os
import pathlib
import re
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from cltest import CLI, PASSWORDS, ROOT, Site
from sandbox import account_files_changed, snapshot_account_files

MAN = ROOT / "man"
PAGES = ["cloudlogin.1", "cloudlogin.conf.5", "pam_cloudlogin.8"]


def cloudlogin(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, text=True, timeout=90)


def check(site: Site, *args: str, stdin: str = "", pam_dir: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    pam_dir = pam_dir or good_pam_dir(site.dir)
    return cloudlogin("check", "--config", str(site.config_path), "--pam-dir", str(pam_dir), *args, stdin=stdin)


def users_key(site: Site, key: str, value: str) -> None:
    """Sets a key of the [users] section of the site's config (write_config fills [idp])."""
    text = site.config_path.read_text().replace("[users]\n", f"[users]\n{key} = {value}\n")
    site.config_path.write_text(text)


def findings(result: subprocess.CompletedProcess) -> dict[str, dict]:
    report = json.loads(result.stdout)
    return {f["id"]: f for f in report["findings"]}


# ---- PAM directories -------------------------------------------------------------------------

# What `pam-auth-update --enable cloudlogin` writes on Debian 12 (common-auth, common-account).
ENABLED_COMMON_AUTH = """\
auth	[success=2 ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die]	pam_cloudlogin.so
auth	[success=1 default=ignore]	pam_unix.so nullok try_first_pass
auth	requisite			pam_deny.so
auth	required			pam_permit.so
"""
ENABLED_COMMON_ACCOUNT = """\
account	[success=1 new_authtok_reqd=done default=ignore]	pam_unix.so
account	requisite			pam_deny.so
account	required			pam_permit.so
account	[success=ok new_authtok_reqd=ok ignore=ignore module_unknown=ignore default=bad]	pam_cloudlogin.so
"""
STOCK_LOGIN = "auth optional pam_faildelay.so delay=3000000\n@include common-auth\n@include common-account\n"


def pam_dir(base: pathlib.Path, name: str, files: dict[str, str]) -> pathlib.Path:
    d = base / name
    d.mkdir(exist_ok=True)
    for fname, text in files.items():
        (d / fname).write_text(text)
    return d


def good_pam_dir(base: pathlib.Path) -> pathlib.Path:
    return pam_dir(base, "pam-good", {"common-auth": ENABLED_COMMON_AUTH, "common-account": ENABLED_COMMON_ACCOUNT,
                                      "login": STOCK_LOGIN, "sudo": (ROOT / "pam.d" / "sudo").read_text()})


# ---- a small HTTPS server with the test CA's certificate ----------------------------------------

class FakeIdP:
    """Serves a copy of the real IdP's discovery document and JWKS (rewritten to its own URL),
    with a Date header `offset` seconds off; POST /api/v1/authn answers like Okta's."""

    def __init__(self, idp, offset: int = 0):
        ctx = idp.ssl_context()
        with urllib.request.urlopen(idp.discovery_url, context=ctx) as r:
            discovery = json.load(r)
        with urllib.request.urlopen(idp.jwks_uri, context=ctx) as r:
            jwks = r.read()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def date_time_string(self, timestamp=None):
                return email.utils.formatdate(time.time() + offset, usegmt=True)

            def log_message(self, *a):
                pass

            def answer(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    doc = dict(discovery, issuer=outer.url, jwks_uri=outer.url + "/jwks")
                    self.answer(200, json.dumps(doc).encode())
                elif self.path == "/jwks":
                    self.answer(200, jwks)
                else:
                    self.answer(404, b"{}")

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/api/v1/authn":
                    self.answer(400, b'{"errorCode":"E0000003","errorSummary":"The request body was not well-formed."}')
                else:
                    self.answer(404, b"{}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(idp.cert_file), str(idp.key_file))
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def other_ca(base: pathlib.Path) -> pathlib.Path:
    """A CA that did not sign the IdP's certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some other CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path = base / "other-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


# ---- check: a good setup -------------------------------------------------------------------------

def test_check_of_a_good_setup_exits_0_and_says_so(site: Site, idp):
    result = check(site, "--test-user", "alice", stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok: discovery: issuer {idp.issuer}" in result.stdout
    assert "ok: clock: within" in result.stdout
    assert "ok: grant: alice signed in with the password grant (subject alice)" in result.stdout
    assert "ok: name: claim preferred_username maps alice to the local account alice" in result.stdout
    assert "ok: pam: pam_cloudlogin in common-account, common-auth, sudo (" in result.stdout
    assert PASSWORDS["alice"] not in result.stdout + result.stderr


def test_check_json_lists_every_finding_with_ids(site: Site):
    result = check(site, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["exit_code"] == 0 and report["config"] == str(site.config_path)
    ids = {f["id"]: f["status"] for f in report["findings"]}
    for wanted in ("config", "idp.discovery", "idp.clock", "idp.jwks", "pam"):
        assert ids.get(wanted) == "ok", (wanted, ids)


# ---- check: each misconfiguration, named with its fix ----------------------------------------------

def test_check_names_an_unreachable_issuer(site: Site):
    site.write_config(issuer="https://127.0.0.1:9")
    result = check(site, "--json")
    assert result.returncode == 2
    found = findings(result)["idp.unreachable"]
    assert found["status"] == "error" and "cannot connect" in found["message"]
    assert "reachable" in found["fix"]


def test_check_names_a_wrong_ca(site: Site):
    site.write_config(ca_file=str(other_ca(site.dir)))
    result = check(site)
    assert result.returncode == 2, result.stdout
    assert "PROBLEM: discovery:" in result.stdout and "TLS with the IdP failed" in result.stdout
    assert "fix: the IdP's certificate is not trusted" in result.stdout and "set ca_file" in result.stdout


def test_check_names_a_client_not_allowed_to_use_the_password_grant(site: Site, idp):
    client_id, secret = idp.clients["no-password-grant"]
    site.write_config(client_id=client_id, client_secret=secret)
    result = check(site, "--test-user", "alice", stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 2, result.stdout
    assert "PROBLEM: grant: the client linux-nogrant may not use the password grant (the IdP answered unauthorized_client)" in result.stdout
    assert "fix: allow the Resource Owner Password grant for client linux-nogrant" in result.stdout


def test_check_names_refused_client_credentials(site: Site):
    site.write_config(client_secret="not-the-secret")
    result = check(site, "--json", "--test-user", "alice", stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 2, result.stdout
    found = findings(result)["idp.client-refused"]
    assert "invalid_client" in found["message"] and "client_secret_file" in found["fix"]


def test_check_with_a_wrong_test_password_says_the_grant_itself_is_allowed(site: Site):
    result = check(site, "--test-user", "alice", stdin="wrong\n")
    assert result.returncode == 0, result.stdout
    assert "warning: grant: the password grant is allowed for client linux-login, but the IdP refused alice (bad credentials)" in result.stdout


def test_check_names_clock_skew_from_the_idp_date_header(site: Site, idp):
    with FakeIdP(idp, offset=-900) as fake:  # the IdP's clock 15 minutes behind ours
        site.write_config(issuer=fake.url)
        result = check(site, "--json")
    assert result.returncode == 2, result.stdout
    found = findings(result)["idp.clock-skew"]
    assert re.search(r"this machine's clock is 9\d\d s ahead of the IdP's", found["message"]), found
    assert "clock_skew = 60 s" in found["message"] and "expired" in found["message"]
    assert "timedatectl set-ntp true" in found["fix"]


def test_check_accepts_a_clock_within_clock_skew(site: Site, idp):
    with FakeIdP(idp, offset=-30) as fake:
        site.write_config(issuer=fake.url)
        result = check(site, "--json")
    assert findings(result)["idp.clock"]["status"] == "ok", result.stdout


@pytest.mark.parametrize("what", ["config-dir", "state-dir", "cache-dir"])
def test_check_names_unsafe_modes(site: Site, idp, what):
    state, cache = site.dir / "state", site.dir / "cache"
    for d in (state, cache):
        d.mkdir(exist_ok=True)
    os.chmod(state, 0o755)
    os.chmod(cache, 0o700)
    ca = site.dir / "ca.pem"
    ca.write_bytes(idp.ca_file.read_bytes())
    os.chmod(ca, 0o644)
    site.write_config(ca_file=str(ca), cache_dir=str(cache))
    users_key(site, "state_dir", str(state))
    os.chmod(site.dir, 0o755)
    if what == "config-dir":
        os.chmod(site.dir, 0o777)
        wanted = ("files.config-dir", f"the directory {site.dir} is writable by group or others", f"chmod go-w {site.dir}")
    elif what == "state-dir":
        os.chmod(state, 0o777)
        wanted = ("files.state-dir", f"the state directory (state_dir) {state} is writable by group or others", f"chmod 0755 {state}")
    else:
        os.chown(cache, 65534, 65534)
        wanted = ("files.cache-dir", f"the cache directory (cache_dir) {cache} is owned by uid 65534, not root", f"chown root:root {cache}")
    try:
        result = check(site, "--json")
    finally:
        os.chmod(site.dir, 0o700)
    assert result.returncode == 3, result.stdout
    found = findings(result)[wanted[0]]
    assert found["status"] == "error" and wanted[1] in found["message"] and found["fix"] == wanted[2], found


def test_check_names_a_ca_file_others_can_write_as_a_config_error(site: Site, idp):
    """The module refuses such a config (anyone who can write the CA file can forge the IdP's
    answers), so check says the config cannot be used, naming the file and the fix."""
    ca = site.dir / "ca.pem"
    ca.write_bytes(idp.ca_file.read_bytes())
    os.chmod(ca, 0o666)
    site.write_config(ca_file=str(ca))
    result = check(site, "--json")
    assert result.returncode == 1, result.stdout
    found = findings(result)["config"]
    assert found["status"] == "error" and f"idp.ca_file: {ca} is writable by group or others; run chmod go-w {ca}" in found["message"], found
    os.chmod(ca, 0o644)
    assert findings(check(site, "--json"))["config"]["status"] == "ok"


def test_check_names_an_unsafe_secret_file_with_the_fix(site: Site, idp):
    secret = site.dir / "client_secret"
    secret.write_text(idp.clients["confidential"][1] + "\n")
    os.chmod(secret, 0o644)
    site.write_config(client_secret=None, client_secret_file=str(secret))
    result = check(site)
    assert result.returncode == 1
    assert f"{secret} holds a secret but is readable by group or others; run chmod 600 {secret}" in result.stderr


AUTH_UNIX = "auth required pam_unix.so try_first_pass\n"
CL = "pam_cloudlogin.so"
GOOD_CONTROL = "[success=done ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die]"


@pytest.mark.parametrize("case,text,finding,words", [
    ("after-unix", f"auth [success=1 default=ignore] pam_unix.so nullok\nauth {GOOD_CONTROL} {CL}\nauth requisite pam_deny.so\n",
     "pam.order", "comes after pam_unix (svc line 1)"),
    ("required", f"auth required {CL}\n{AUTH_UNIX}", "pam.lockout", "without authinfo_unavail=ignore"),
    ("sufficient", f"auth sufficient {CL}\n{AUTH_UNIX}", "pam.refusal-not-final", "the identity provider's no is not final"),
    ("no-unix", f"auth {GOOD_CONTROL} {CL}\nauth required pam_permit.so\n", "pam.no-unix", "root and every local account have no way in"),
    ("no-ignore", f"auth [success=done authinfo_unavail=ignore default=die] {CL}\n{AUTH_UNIX}", "pam.local-users-refused",
     "root and the local accounts"),
    ("account-sufficient", f"auth {GOOD_CONTROL} {CL}\n{AUTH_UNIX}account sufficient {CL}\naccount required pam_unix.so\n",
     "pam.account-sufficient", "skips pam_unix's expiry checks"),
])
def test_check_names_a_dangerous_pam_stack(site: Site, case, text, finding, words):
    d = pam_dir(site.dir, f"pam-{case}", {"svc": text, "other": "auth required pam_deny.so\n"})
    result = check(site, "--json", pam_dir=d)
    assert result.returncode == 3, result.stdout
    found = findings(result)
    assert finding in found, found.keys()
    assert found[finding]["status"] == "error" and words in found[finding]["message"], found[finding]
    assert found[finding]["message"].startswith(f"pam: {d}/svc line "), found[finding]
    assert found[finding]["fix"]


def test_check_warns_about_a_line_that_fails_once_the_module_is_removed(site: Site):
    old_style = "[success=done ignore=ignore authinfo_unavail=ignore default=die]"
    d = pam_dir(site.dir, "pam-removal", {"svc": f"auth {old_style} {CL}\n{AUTH_UNIX}", "other": "auth required pam_deny.so\n"})
    result = check(site, "--json", pam_dir=d)
    assert result.returncode == 0, result.stdout  # a warning: nothing is wrong while the module is there
    found = findings(result)
    assert found["pam.removal-lockout"]["status"] == "warning", found
    assert "refuses everyone, root included" in found["pam.removal-lockout"]["message"]
    assert "module_unknown=ignore" in found["pam.removal-lockout"]["fix"]
    assert found["pam"]["status"] == "ok"


def test_check_follows_includes_to_find_pam_unix(site: Site):
    d = pam_dir(site.dir, "pam-include", {"common-unix": AUTH_UNIX, "svc": f"auth {GOOD_CONTROL} {CL}\n@include common-unix\n"})
    result = check(site, "--json", pam_dir=d)
    assert result.returncode == 0, result.stdout
    assert findings(result)["pam"]["status"] == "ok"


def test_check_accepts_the_shipped_stacks(site: Site):
    files = {name: (ROOT / "pam.d" / name).read_text() for name in ("login", "sudo", "su", "sshd", "passwd", "cloudlogin-service", "cloudlogin-auth")}
    d = pam_dir(site.dir, "pam-shipped", files | {"common-password": "password required pam_unix.so\n"})
    result = check(site, "--json", pam_dir=d)
    assert result.returncode == 0, result.stdout
    assert findings(result)["pam"]["status"] == "ok"


def test_check_warns_when_no_service_uses_the_module(site: Site):
    d = pam_dir(site.dir, "pam-stock", {"common-auth": AUTH_UNIX, "login": STOCK_LOGIN})
    result = check(site, pam_dir=d)
    assert result.returncode == 0, result.stdout
    assert f"warning: pam: no service in {d} uses pam_cloudlogin yet" in result.stdout
    assert "pam-auth-update --enable cloudlogin" in result.stdout


# ---- check: sshd ----------------------------------------------------------------------------------
# The real /usr/sbin/sshd answers `sshd -T -f FILE` when it can load a host key and finds its
# privilege separation directory (/run/sshd: /run is the sandbox's own tmpfs); with a HostKey
# that does not exist it cannot, and check reads the files itself. Both must judge alike.

SSHD = pathlib.Path("/usr/sbin/sshd")
STOCK_SSHD_CONFIG = pathlib.Path("/usr/share/openssh/sshd_config")  # Debian's, as installed


@pytest.fixture
def ssh_dir(tmp_path) -> pathlib.Path:
    assert SSHD.exists(), "openssh-server is not installed"
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    d = tmp_path / "ssh"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cloudlogin-check", "-f", str(d / "host_key")],
                   check=True, capture_output=True, timeout=30)
    return d


def sshd_config(d: pathlib.Path, text: str, name: str = "sshd_config", host_key: bool = True) -> pathlib.Path:
    """TEXT after a HostKey line: the test's key, or one that does not exist (sshd -T fails)."""
    path = d / name
    path.write_text(f"HostKey {d / ('host_key' if host_key else 'no_such_key')}\n{text}")
    return path


def ssh_pam_dir(site: Site) -> pathlib.Path:
    """The good directory with the shipped pam.d/sshd."""
    d = good_pam_dir(site.dir)
    (d / "sshd").write_text((ROOT / "pam.d" / "sshd").read_text())
    return d


def sshd_check(site: Site, config: pathlib.Path, *args: str, pam_dir: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    return check(site, "--json", "--sshd-config", str(config), *args, pam_dir=pam_dir or ssh_pam_dir(site))


def sshd_findings(result: subprocess.CompletedProcess) -> dict[str, str]:
    """The sshd findings' statuses, without the one that says where the settings came from."""
    return {i: f["status"] for i, f in findings(result).items() if i.startswith("sshd") and i != "sshd.effective-config"}


def line_of(path: pathlib.Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_check_reads_sshds_effective_config_with_sshd_T(site: Site, ssh_dir):
    config = sshd_config(ssh_dir, "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n")
    # What the real sshd prints, for the record: these keys, lower case.
    printed = subprocess.run([str(SSHD), "-T", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0, printed.stderr
    assert {"usepam yes", "kbdinteractiveauthentication yes", "passwordauthentication no", "authenticationmethods any"} <= set(printed.stdout.splitlines())
    result = sshd_check(site, config)
    assert result.returncode == 0, result.stdout
    found = findings(result)
    assert found["sshd"]["status"] == "ok", found
    assert found["sshd"]["message"] == (f"sshd: UsePAM yes, KbdInteractiveAuthentication yes, AuthenticationMethods any (sshd -T -f {config}): "
                                        f"cloud users sign in over SSH through PAM's keyboard-interactive prompts (pam_cloudlogin in {ssh_pam_dir(site)}/sshd)")
    assert "sshd.effective-config" not in found
    # The text output.
    text = check(site, "--sshd-config", str(config), pam_dir=ssh_pam_dir(site))
    assert f"ok: sshd: UsePAM yes, KbdInteractiveAuthentication yes" in text.stdout


def test_check_names_debian_stock_sshd_as_password_only(site: Site, ssh_dir):
    """Debian's own sshd_config: UsePAM yes, KbdInteractiveAuthentication no, PasswordAuthentication
    left at yes: PAM only through the password method."""
    config = sshd_config(ssh_dir, STOCK_SSHD_CONFIG.read_text())
    result = sshd_check(site, config)
    assert result.returncode == 0, result.stdout  # a warning
    found = findings(result)
    assert sshd_findings(result) == {"sshd.password-only": "warning"}, found
    warning = found["sshd.password-only"]
    assert f"(sshd -T -f {config})" in warning["message"] and "MFA prompts (Okta's factor menu, codes and push) cannot be answered" in warning["message"]
    line = line_of(config, "KbdInteractiveAuthentication no")
    assert warning["fix"].startswith(f"change line {line} of {config} ('KbdInteractiveAuthentication no') to 'KbdInteractiveAuthentication yes', "
                                     "then reload sshd (systemctl reload ssh)"), warning
    # Put the line there, as the fix says: sshd and check agree it is fine.
    config.write_text(config.read_text().replace("KbdInteractiveAuthentication no", "KbdInteractiveAuthentication yes"))
    assert sshd_findings(sshd_check(site, config)) == {"sshd": "ok"}


def test_check_names_usepam_no_as_a_problem_when_sshds_stack_has_the_module(site: Site, ssh_dir):
    config = sshd_config(ssh_dir, "UsePAM no\nKbdInteractiveAuthentication yes\n")
    result = sshd_check(site, config)
    assert result.returncode == 3, result.stdout
    found = findings(result)["sshd.use-pam"]
    assert found["status"] == "error"
    assert "sshd does not use PAM, so CloudLogin is never asked over SSH" in found["message"]
    assert "synced password keeps working over SSH after the identity provider refused them" in found["message"]
    assert found["fix"] == f"change line 2 of {config} ('UsePAM no') to 'UsePAM yes', then reload sshd (systemctl reload ssh)"
    text = check(site, "--sshd-config", str(config), pam_dir=ssh_pam_dir(site))
    assert text.returncode == 3 and "PROBLEM: sshd: UsePAM no" in text.stdout and "check: 1 problem(s) (exit 3)" in text.stdout
    # Without pam_cloudlogin in sshd's stack, nothing is bypassed: a warning.
    d = good_pam_dir(site.dir)
    (d / "sshd").write_text("auth required pam_unix.so\naccount required pam_unix.so\n")
    result = sshd_check(site, config, pam_dir=d)
    assert result.returncode == 0 and findings(result)["sshd.use-pam"]["status"] == "warning", result.stdout


@pytest.mark.parametrize("case,text,expected", [
    ("keys-only", "UsePAM yes\nKbdInteractiveAuthentication no\nPasswordAuthentication no\n", {"sshd.kbd-interactive": "warning"}),
    ("old-name", "UsePAM yes\nChallengeResponseAuthentication no\n", {"sshd.password-only": "warning"}),
    ("methods", "UsePAM yes\nAuthenticationMethods publickey\n", {"sshd.authentication-methods": "warning"}),
    ("methods-password", "UsePAM yes\nAuthenticationMethods publickey,password\n", {"sshd.authentication-methods": "warning"}),
    ("methods-kbdint", 'UsePAM=yes\nAuthenticationMethods "publickey,keyboard-interactive:pam" password\n', {"sshd": "ok"}),
    ("drop-in-wins", "Include {d}/conf.d/*.conf\nUsePAM yes\nKbdInteractiveAuthentication yes\n", {"sshd.password-only": "warning"}),
    ("match", "UsePAM yes\nMatch User bob\n  KbdInteractiveAuthentication no\n  PasswordAuthentication no\n", {"sshd": "ok", "sshd.match": "info"}),
])
def test_check_judges_sshd_like_sshd_T_whether_or_not_it_can_run(site: Site, ssh_dir, case, text, expected):
    (ssh_dir / "conf.d").mkdir()
    (ssh_dir / "conf.d" / "10-cloud.conf").write_text("# a drop-in\nKbdInteractiveAuthentication no\n")
    text = text.replace("{d}", str(ssh_dir))
    by_sshd = sshd_check(site, sshd_config(ssh_dir, text))
    assert "sshd.effective-config" not in findings(by_sshd), by_sshd.stdout
    assert sshd_findings(by_sshd) == expected, by_sshd.stdout
    # The same config where sshd -T cannot load a host key: check reads the files.
    unread = sshd_config(ssh_dir, text, name="sshd_config.nokey", host_key=False)
    by_files = sshd_check(site, unread)
    note = findings(by_files)["sshd.effective-config"]
    assert note["status"] == "info", note
    assert note["message"].startswith(f"sshd: `{SSHD} -T -f {unread}` did not run (exit 1: Unable to load host key: {ssh_dir}/no_such_key): "
                                      f"judged from {unread} as written"), note
    assert sshd_findings(by_files) == expected, by_files.stdout
    assert by_files.returncode == by_sshd.returncode == 0
    if case == "drop-in-wins":
        fix = findings(by_sshd)["sshd.password-only"]["fix"]
        assert fix.startswith(f"change line 2 of {ssh_dir}/conf.d/10-cloud.conf ('KbdInteractiveAuthentication no')"), fix
    if case == "match":
        assert "'Match User bob' sets KbdInteractiveAuthentication, PasswordAuthentication" in findings(by_sshd)["sshd.match"]["message"]


def test_check_judges_sshds_whole_pam_stack(site: Site, ssh_dir):
    """Debian's sshd reaches pam_cloudlogin through @include common-auth."""
    config = sshd_config(ssh_dir, "UsePAM yes\nKbdInteractiveAuthentication yes\n")
    d = good_pam_dir(site.dir)
    (d / "sshd").write_text("@include common-auth\naccount required pam_nologin.so\n@include common-account\n")
    result = sshd_check(site, config, pam_dir=d)
    assert result.returncode == 0, result.stdout
    assert f"(pam_cloudlogin in {d}/sshd)" in findings(result)["sshd"]["message"]
    (d / "sshd").write_text("auth sufficient pam_unix.so\n@include common-auth\n")
    result = sshd_check(site, config, pam_dir=d)
    assert result.returncode == 3, result.stdout
    found = findings(result)["pam.order"]
    assert found["message"].startswith(f"pam: {d}/common-auth line 1: pam_cloudlogin comes after pam_unix (sshd line 1) in the auth stack of sshd"), found
    (d / "sshd").write_text("auth required pam_unix.so\n")
    result = sshd_check(site, config, pam_dir=d)
    assert result.returncode == 0, result.stdout
    found = findings(result)["sshd.pam-stack"]
    assert found["status"] == "warning" and f"{d}/sshd (with what it includes) has no pam_cloudlogin" in found["message"]
    assert "pam_unix accepts a cloud user's synced password" in found["message"]


def test_check_without_sshd_says_ssh_is_not_checked(site: Site, tmp_path):
    result = check(site, "--sshd", str(tmp_path / "no-sshd"))
    assert result.returncode == 0, result.stdout
    assert f"info: sshd: not installed (no {tmp_path}/no-sshd); SSH sign-in not checked" in result.stdout
    assert "check: no problems" in result.stdout
    assert findings(check(site, "--json", "--sshd", str(tmp_path / "no-sshd")))["sshd"]["status"] == "info"


def test_check_reads_the_default_sshd_config(site: Site):
    """No --sshd-config: /etc/ssh/sshd_config (the sandbox's overlay of the machine's)."""
    result = check(site, "--json")
    found = {i: f for i, f in findings(result).items() if i.startswith("sshd")}
    assert found, result.stdout
    where = "(sshd -T -f /etc/ssh/sshd_config)" if "sshd.effective-config" not in found else "(read from /etc/ssh/sshd_config"
    assert any(where in f["message"] for f in found.values()), found


# ---- setup ----------------------------------------------------------------------------------------

def setup_args(site: Site, idp, path: pathlib.Path, *extra: str) -> list[str]:
    secret = site.dir / "client_secret"
    secret.write_text(idp.clients["confidential"][1] + "\n")
    os.chmod(secret, 0o600)
    return ["setup", "--config", str(path), "--issuer", idp.issuer, "--client-id", "linux-login",
            "--client-secret-file", str(secret), "--ca-file", str(idp.ca_file), "--username-suffix", "@example.com", *extra]


def test_setup_checks_the_idp_and_a_real_grant_then_writes_a_safe_config(site: Site, idp):
    idp.add_user("sam@example.com", "Sam pw 1", name="Sam Setup")
    path = site.dir / "etc" / "cloudlogin.conf"
    result = cloudlogin(*setup_args(site, idp, path, "--test-user", "sam"), stdin="Sam pw 1\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: grant: sam@example.com signed in with the password grant" in result.stdout
    assert f"wrote {path} (owner root, mode 0600)" in result.stdout
    info = path.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o600)
    text = path.read_text()
    for line in ("provider = oidc", f"issuer = {idp.issuer}", "client_id = linux-login",
                 f"client_secret_file = {site.dir / 'client_secret'}", "username_suffix = @example.com"):
        assert line + "\n" in text
    assert idp.clients["confidential"][1] not in text and "Sam pw 1" not in text
    assert [p.name for p in path.parent.iterdir()] == ["cloudlogin.conf"], "a temporary file was left behind"
    # What setup wrote is what the module and check accept.
    result = cloudlogin("check", "--config", str(path), "--pam-dir", str(good_pam_dir(site.dir)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_setup_never_overwrites_without_force(site: Site, idp):
    path = site.dir / "cloudlogin.conf"
    path.write_text("# the admin's own\n")
    result = cloudlogin(*setup_args(site, idp, path))
    assert result.returncode == 1
    assert f"{path} already exists; nothing written. Use --force" in result.stderr
    assert path.read_text() == "# the admin's own\n"
    result = cloudlogin(*setup_args(site, idp, path, "--force"))
    assert result.returncode == 0, result.stderr
    assert "provider = oidc" in path.read_text() and path.stat().st_mode & 0o777 == 0o600


def test_setup_writes_nothing_when_the_idp_check_fails(site: Site, idp):
    path = site.dir / "new.conf"
    args = setup_args(site, idp, path)
    args[args.index("--issuer") + 1] = "https://127.0.0.1:9"
    result = cloudlogin(*args)
    assert result.returncode == 2
    assert "PROBLEM: discovery:" in result.stdout and f"nothing written to {path}" in result.stderr
    assert not path.exists()


def test_setup_writes_nothing_when_the_test_user_cannot_sign_in(site: Site, idp):
    path = site.dir / "new.conf"
    result = cloudlogin(*setup_args(site, idp, path, "--test-user", "alice"), stdin="wrong password\n")
    assert result.returncode == 2
    assert "alice could not sign in with the password grant; nothing written" in result.stderr
    assert not path.exists()


def test_setup_refuses_an_unsafe_secret_file(site: Site, idp):
    path = site.dir / "new.conf"
    args = setup_args(site, idp, path)
    os.chmod(site.dir / "client_secret", 0o644)
    result = cloudlogin(*args)
    assert result.returncode == 1
    assert "holds a secret but is readable by group or others; run chmod 600" in result.stderr
    assert not path.exists()


def test_setup_for_okta_checks_the_authn_endpoint_over_tls(site: Site, idp):
    path = site.dir / "okta.conf"
    with FakeIdP(idp) as fake:
        result = cloudlogin("setup", "--config", str(path), "--okta-domain", fake.url, "--ca-file", str(idp.ca_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok: okta: {fake.url}/api/v1/authn answers over TLS (HTTP 400" in result.stdout
    text = path.read_text()
    assert "provider = okta\n" in text and f"okta_domain = {fake.url}\n" in text
    # Without the right CA, the same endpoint is a TLS failure and nothing is written.
    path.unlink()
    with FakeIdP(idp) as fake:
        result = cloudlogin("setup", "--config", str(path), "--okta-domain", fake.url)
    assert result.returncode == 2 and not path.exists()
    assert "TLS with the IdP failed" in result.stdout and "set ca_file" in result.stdout


# ---- login --trace, status --json ------------------------------------------------------------

def test_login_trace_dry_run_shows_every_step_and_changes_nothing(site: Site, idp):
    idp.add_user("tracy", "Tracy pw 1", name="Tracy Trace", groups=["staff"])
    state = site.dir / "state"
    users_key(site, "state_dir", str(state))
    before = snapshot_account_files()
    result = cloudlogin("login", "tracy", "--password-stdin", "--trace", "--dry-run", "--config", str(site.config_path),
                        stdin="Tracy pw 1\n")
    assert result.returncode == 0, result.stdout + result.stderr
    err = result.stderr
    steps = [
        "trace: [screen] cloud user: the IdP is asked about tracy; local name tracy",
        "trace: [cache] no discovery document in the cache",
        f"trace: [network] GET {idp.discovery_url} -> HTTP 200 in",
        f"trace: [network] POST {idp.token_endpoint} (Authorization header: not shown) (form body: grant_type=password&"
        "username=tracy&password=(hidden)&scope=openid%20profile%20email) -> HTTP 200 in",
        # The record comes first: it exists before the account does.
        "trace: [local] would record tracy as managed: subject tracy, origin created",
        "trace: [local] would create the account tracy (useradd -m, GECOS 'Tracy Trace', shell /bin/bash, member of cloudlogin) (--dry-run: not done)",
        "trace: [local] would set the local password of tracy to the cloud password (chpasswd, on stdin) (--dry-run: not done)",
        "trace: [claims] verified identity: subject tracy, claims",
        "trace: [name] preferred_username = 'tracy' -> local account tracy (created now)",
        "trace: [pam] outcome accepted; local account created -> PAM_SUCCESS",
    ]
    positions = []
    for step in steps:
        assert step in err, f"missing {step!r} in:\n{err}"
        positions.append(err.index(step))
    assert positions == sorted(positions), "steps out of order"
    assert "dry run: would " in result.stdout and "create the account tracy" in result.stdout
    assert "Tracy pw 1" not in result.stdout + err and "eyJ" not in result.stdout + err
    assert account_files_changed(before) == [] and not (state / "users" / "tracy").exists()
    # The cache is used the second time: no discovery request.
    result = cloudlogin("login", "tracy", "--password-stdin", "--trace", "--dry-run", "--config", str(site.config_path),
                        stdin="Tracy pw 1\n")
    assert "trace: [cache] discovery document in the cache, fetched" in result.stderr
    assert f"GET {idp.discovery_url}" not in result.stderr


def test_login_trace_of_a_local_only_user_sends_nothing(site: Site, idp):
    mark = idp.mark()
    result = cloudlogin("login", "root", "--password-stdin", "--trace", "--config", str(site.config_path), stdin="x\n")
    assert result.returncode == 3
    assert "trace: [screen] local-only user (root): left to pam_unix; the password is not asked for and never sent" in result.stderr
    assert "pam: PAM_IGNORE" in result.stdout
    assert idp.requests_since(mark) == []


def test_status_json(site: Site, idp):
    idp.add_user("stella", "Stella pw 1", name="Stella Status", groups=["staff"])
    state = site.dir / "state"
    users_key(site, "state_dir", str(state))
    result = cloudlogin("login", "stella", "--password-stdin", "--config", str(site.config_path), stdin="Stella pw 1\n")
    assert result.returncode == 0, result.stdout + result.stderr
    result = cloudlogin("status", "stella", "--json", "--config", str(site.config_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["state_dir"] == str(state)
    [user] = report["users"]
    assert user["name"] == "stella" and user["subject"] == "stella" and user["origin"] == "created"
    assert user["last_verdict"] == "accepted" and user["offline"]["allowed"] is True and user["offline"]["days_left"] in (13, 14)
    result = cloudlogin("status", "nobody-here", "--json", "--config", str(site.config_path))
    assert result.returncode == 4 and json.loads(result.stdout)["not_managed"] == "nobody-here"


# ---- man pages ----------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_man_page_renders_without_warnings(page):
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", LC_ALL="C.UTF-8", MAN_DISABLE_SECCOMP="1")
    proc = subprocess.run(["man", "--warnings", "-l", str(MAN / page)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "NAME" in proc.stdout and "SEE ALSO" in proc.stdout
    proc = subprocess.run(["groff", "-ww", "-man", "-z", str(MAN / page)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def rendered(page: str) -> str:
    env = dict(os.environ, MANWIDTH="200", LANG="C.UTF-8", LC_ALL="C.UTF-8", MAN_DISABLE_SECCOMP="1")
    text = subprocess.run(["man", "-l", str(MAN / page)], capture_output=True, text=True, env=env).stdout
    text = re.sub(r".\x08", "", text).replace("\u2212", "-").replace("\u2010", "-")
    return re.sub(r"\s+", " ", text)


def test_cloudlogin_1_documents_every_command_and_option():
    page = rendered("cloudlogin.1")
    top = cloudlogin("--help").stdout
    commands = re.findall(r"^  (\w+) {2,}", top, re.M)
    assert set(commands) == {"setup", "check", "login", "status"}
    for command in commands:
        help_text = cloudlogin(command, "--help").stdout
        for option in set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help", "--version"}:
            assert option in page, f"cloudlogin {command} {option} is not in cloudlogin(1)"
        assert f"cloudlogin {command}" in page


def test_cloudlogin_conf_5_documents_every_key():
    page = rendered("cloudlogin.conf.5")
    source = (ROOT / "Sources/CloudLogin/Config/ConfigParser.swift").read_text()
    keys = re.findall(r'^\s+"([a-z_]+)": \{ config', source, re.M)
    assert len(keys) > 30
    for key in keys:
        assert key in page, f"{key} is not in cloudlogin.conf(5)"


def test_pam_cloudlogin_8_documents_the_module_arguments():
    page = rendered("pam_cloudlogin.8")
    source = (ROOT / "Sources/CloudLoginPAM/ModuleArguments.swift").read_text()
    for argument in ("config=", "debug", "try_first_pass", "use_first_pass"):
        assert argument in source and argument in page


def test_make_install_and_uninstall_handle_the_man_pages(tmp_path):
    root = tmp_path / "root"
    make = ["make", "-s", f"DESTDIR={root}", "PREFIX=/usr/local"]
    proc = subprocess.run(make + ["install"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    man = root / "usr/local/share/man"
    for page, section in (("cloudlogin.1", "man1"), ("cloudlogin.conf.5", "man5"), ("pam_cloudlogin.8", "man8")):
        installed = man / section / page
        assert installed.read_bytes() == (MAN / page).read_bytes() and installed.stat().st_mode & 0o777 == 0o644
    proc = subprocess.run(make + ["uninstall"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p for p in man.rglob("*") if p.is_file()] == []
    assert not (root / "usr/local/bin/cloudlogin").exists()
