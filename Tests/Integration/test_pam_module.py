"""pam_cloudlogin.so through real libpam against a real OpenID provider (LemonLDAP::NG)."""
from __future__ import annotations

import os
import re
import subprocess

from cltest import MODULE, PASSWORDS, Site, add_users
from llng import LemonLDAP


def token_requests(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("POST /oauth2/token")]


def test_right_password_succeeds(site: Site):
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_SUCCESS", run
    # The first sign-in in the sandbox creates the account; later ones say nothing.
    assert run.messages in ([], ["info: Created local account alice from your cloud identity."])
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).messages == []
    assert any(re.search(r"authentication accepted(; local account created)?; PAM_SUCCESS; online; idp https:", line) for line in run.syslog), run.syslog


def test_wrong_password_is_auth_err(site: Site):
    run = site.pam(site.module_only(), "alice", "not the password")
    assert run.code == "PAM_AUTH_ERR"
    assert run.messages == ["error: Sign-in failed."]


def test_unknown_and_disabled_users_look_the_same_as_a_wrong_password(site: Site):
    unknown = site.pam(site.module_only(), "nosuchuser", "whatever")
    disabled = site.pam(site.module_only(), "bob", PASSWORDS["bob"])
    assert unknown.code == disabled.code == "PAM_AUTH_ERR"
    assert unknown.messages == disabled.messages == ["error: Sign-in failed."]


def test_password_with_spaces_quotes_and_unicode(site: Site):
    assert site.pam(site.module_only(), "carol", PASSWORDS["carol"]).code == "PAM_SUCCESS"


def test_empty_password_sends_nothing(site: Site, idp: LemonLDAP):
    mark = idp.mark()
    run = site.pam(site.module_only(), "alice", "")
    assert run.code == "PAM_AUTH_ERR"
    assert idp.requests_since(mark) == []


def test_steady_state_login_is_one_request(site: Site, idp: LemonLDAP):
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"  # warms the cache
    mark = idp.mark()
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_SUCCESS"
    assert idp.requests_since(mark) == ["POST /oauth2/token 200"]
    cache = site.dir / "cache"
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert sorted(p.name.split(".")[1] for p in cache.iterdir()) == ["discovery", "jwks"]


def test_cold_cache_fetches_discovery_and_keys_once(site: Site, idp: LemonLDAP):
    mark = idp.mark()
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"
    paths = [line.split()[1] for line in idp.requests_since(mark)]
    assert sorted(paths) == sorted(["/.well-known/openid-configuration", "/oauth2/token", idp.jwks_uri.split(str(idp.port), 1)[1]])


def test_idp_stopped_is_authinfo_unavail(tmp_path, syslog_shim):
    server = LemonLDAP(tmp_path / "llng")
    server.start()
    add_users(server)
    site = Site(tmp_path / "site", syslog_shim, server)
    site.dir.mkdir()
    site.write_config()
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"
    server.stop()
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_AUTHINFO_UNAVAIL"
    assert run.messages == ["info: Identity provider unreachable; trying offline sign-in."]
    assert any("IdP unavailable" in line and "cannot connect" in line for line in run.syslog), run.syslog


def signed_in_once(site: Site) -> None:
    """alice signs in online once, so the offline rule lets her fall back to pam_unix."""
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"


def test_untrusted_ca_is_authinfo_unavail(site: Site, idp: LemonLDAP):
    signed_in_once(site)
    site.write_config(ca_file=None)
    mark = idp.mark()
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_AUTHINFO_UNAVAIL"
    assert any("TLS with the IdP failed" in line for line in run.syslog), run.syslog
    assert token_requests(idp.requests_since(mark)) == []


def test_wrong_client_secret_is_authinfo_unavail_and_logged(site: Site):
    signed_in_once(site)
    site.write_config(client_secret="not-the-secret")
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_AUTHINFO_UNAVAIL"
    assert run.messages == ["error: Cloud sign-in is misconfigured; tell your administrator."]
    errors = [line for line in run.syslog if line.startswith("<3>") and "invalid_client" in line]
    assert errors, run.syslog


def test_client_without_id_token_uses_userinfo(site: Site, idp: LemonLDAP):
    site.write_config(scopes="profile email")
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"  # warm
    mark = idp.mark()
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_SUCCESS"
    assert [line.split()[0] + " " + line.split()[1] for line in idp.requests_since(mark)] == [
        "POST /oauth2/token", "GET " + idp.userinfo_endpoint.split(str(idp.port), 1)[1]]


def test_public_client(site: Site, idp: LemonLDAP):
    client_id, _ = idp.clients["public"]
    site.write_config(client_id=client_id, client_secret=None)
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"


def test_client_secret_post(site: Site):
    site.write_config(client_auth="post")
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"


def test_client_secret_file(site: Site, idp: LemonLDAP):
    _, secret = idp.clients["confidential"]
    secret_file = site.dir / "client_secret"
    secret_file.write_text(secret + "\n")
    os.chmod(secret_file, 0o600)
    site.write_config(client_secret=None, client_secret_file=str(secret_file), mode=0o644)
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"
    os.chmod(secret_file, 0o644)
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    # Never a yes from a config that cannot be trusted: alice (managed, online today) may only
    # sign in offline, where pam_unix checks her synced password.
    assert run.code == "PAM_AUTHINFO_UNAVAIL", run
    assert any("chmod 600" in line for line in run.syslog), run.syslog


def test_root_and_excluded_users_are_ignored_and_never_sent(site: Site, idp: LemonLDAP):
    mark = idp.mark()
    for user, reason in (("root", "root"), ("daemon", "uid below min_uid"), ("root@example.com", "root")):
        run = site.pam(site.module_only(), user, "some local password")
        # The module said PAM_IGNORE; libpam turns a stack that only ignored into PAM_PERM_DENIED.
        assert run.code == "PAM_PERM_DENIED", run
        assert any(f"not a cloud user ({reason}); PAM_IGNORE" in line for line in run.syslog), run.syslog
        assert not any("PROMPT" in line for line in run.stderr.splitlines()), "asked for a password"
        assert run.messages == []
    assert idp.requests_since(mark) == []


def test_unsafe_config_never_says_yes_and_sends_nothing(site: Site, idp: LemonLDAP):
    site.write_config(mode=0o666)
    mark = idp.mark()
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    # A managed user: the built-in offline rule (pam_unix checks the synced password).
    assert run.code == "PAM_AUTHINFO_UNAVAIL", run
    assert run.messages == ["info: Cloud sign-in is misconfigured; trying offline sign-in."], run
    assert any("writable by group or others; run chmod go-w" in line for line in run.syslog), run.syslog
    # A name with no account: refused.
    run = site.pam(site.module_only(), "newcomer", "some password")
    assert run.code == "PAM_AUTH_ERR", run
    assert run.messages == ["error: Cloud sign-in is misconfigured; tell your administrator."], run
    assert idp.requests_since(mark) == []


def test_a_fifo_in_place_of_the_config_never_hangs_the_host(site: Site, tmp_path):
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    run = site.pam(site.module_only(f"debug config={fifo}"), "alice", PASSWORDS["alice"], timeout=20)
    assert run.code != "PAM_SUCCESS", run
    assert any("is not a regular file" in line for line in run.syslog), run.syslog


def test_malformed_config_names_key_and_line(site: Site):
    site.config_path.write_text(site.config_path.read_text().replace("timeout = 5", "timeout = soon"))
    run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
    assert run.code == "PAM_AUTHINFO_UNAVAIL", run
    assert any(re.search(r"cloudlogin\.conf:\d+: idp\.timeout: 'soon' must be a whole number", line) for line in run.syslog), run.syslog


def test_silent_flag_shows_no_message(site: Site):
    run = site.pam(site.module_only(), "alice", "wrong", "--silent")
    assert run.code == "PAM_AUTH_ERR"
    assert run.messages == []


def test_no_password_available_fails_at_once(site: Site):
    run = site.pam(site.module_only(), "alice", None)  # conversation fails (EOF)
    assert run.code == "PAM_AUTH_ERR"


def test_secrets_never_reach_the_log(site: Site, idp: LemonLDAP):
    _, client_secret = idp.clients["confidential"]
    logs = []
    for password in (PASSWORDS["alice"], "wrong-password-xyz"):
        logs += site.pam(site.module_only("debug"), "alice", password).syslog
    text = "\n".join(logs)
    assert "alice" in text  # debug names the user
    for secret in (PASSWORDS["alice"], "wrong-password-xyz", client_secret, "eyJ"):
        assert secret not in text


def test_200_cycles_in_one_process(site: Site):
    run = site.pam(site.module_only(""), "alice", PASSWORDS["alice"], "--cycles", "200", "--rss", timeout=300)
    assert len(run.results) == 200
    assert {code for _, code in run.results} == {"PAM_SUCCESS"}
    rss = re.search(r"RSS_KB (\d+) (\d+)", run.stdout)
    threads = re.search(r"THREADS (\d+)", run.stdout)
    assert rss and threads, run.stdout
    first, last = int(rss.group(1)), int(rss.group(2))
    assert last - first < 2048, f"RSS grew from {first} kB to {last} kB over 200 logins"
    assert threads.group(1) == "1"


# --- the shipped stack ----------------------------------------------------------------------

def test_shipped_stack_lets_the_cloud_password_in(site: Site):
    assert site.pam(site.shipped_stack(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"


def test_shipped_stack_makes_a_cloud_no_final(site: Site, idp: LemonLDAP):
    run = site.pam(site.shipped_stack(), "alice", "wrong")
    assert run.code == "PAM_AUTH_ERR"


def test_shipped_stack_sends_root_to_pam_unix_only(site: Site, idp: LemonLDAP):
    mark = idp.mark()
    run = site.pam(site.shipped_stack(), "root", "not root's password")
    assert run.code == "PAM_AUTH_ERR"  # pam_unix said no
    assert idp.requests_since(mark) == []


# --- the built artefact ----------------------------------------------------------------------

def test_module_exports_only_pam_sm_functions():
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(MODULE)], capture_output=True, text=True, check=True).stdout
    exported = sorted({fields[7] for fields in (line.split() for line in out.splitlines())
                       if len(fields) >= 8 and fields[4] in ("GLOBAL", "WEAK") and fields[6] != "UND"})
    assert exported == ["pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_chauthtok", "pam_sm_setcred"]


def test_module_is_linked_nodelete_and_without_dynamic_swift_runtime():
    dynamic = subprocess.run(["readelf", "-d", "-W", str(MODULE)], capture_output=True, text=True, check=True).stdout
    assert "NODELETE" in dynamic
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
    assert not [lib for lib in needed if "swift" in lib.lower() or "Foundation" in lib], needed


def test_idp_that_never_answers_is_unavailable_within_the_timeout(site: Site):
    import socket
    import time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts TCP, never speaks TLS
    port = listener.getsockname()[1]
    try:
        signed_in_once(site)
        site.write_config(issuer=f"https://127.0.0.1:{port}", timeout="2", connect_timeout="1")
        started = time.monotonic()
        run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert run.code == "PAM_AUTHINFO_UNAVAIL"
    assert elapsed < 3.0, f"took {elapsed:.1f} s with timeout = 2"


def test_make_install_honours_destdir(tmp_path):
    subprocess.run(["make", "-s", "install", f"DESTDIR={tmp_path}", "PREFIX=/usr/local"], cwd=MODULE.parents[1], check=True,
                   capture_output=True)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert any(re.fullmatch(r"lib/[a-z0-9_-]+-linux-gnu/security/pam_cloudlogin\.so", f) for f in files), files
    assert "usr/local/bin/cloudlogin" in files
    assert "etc/cloudlogin/cloudlogin.conf.example" in files


def test_a_ca_file_others_can_write_makes_the_config_invalid(site: Site, idp: LemonLDAP):
    """Whoever can write ca_file can add a CA and forge every answer of the IdP: a CA file that
    is group- or world-writable (or not root's) makes the config invalid, named in the log."""
    ca = site.dir / "extra-ca.pem"
    ca.write_bytes(idp.ca_file.read_bytes())
    os.chown(ca, 0, 0)
    os.chmod(ca, 0o644)
    site.write_config(ca_file=str(ca))
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"
    for mode, owner in ((0o664, 0), (0o646, 0), (0o644, 65534)):
        os.chmod(ca, mode)
        os.chown(ca, owner, 0)
        mark = idp.mark()
        run = site.pam(site.module_only(), "alice", PASSWORDS["alice"])
        # Never a yes from the untrusted config: alice (managed, online today) may only sign in
        # offline under the built-in rule, where pam_unix checks her synced password.
        assert run.code == "PAM_AUTHINFO_UNAVAIL", run
        fix = f"run chmod go-w {ca}" if owner == 0 else f"run chown root:root {ca}"
        assert any(str(site.config_path) in line and "idp.ca_file" in line and str(ca) in line and fix in line
                   for line in run.syslog), run.syslog
        # A forged IdP gains nothing: another password does not pass the shipped stack, a name
        # without an account is refused, and nothing is sent.
        assert site.pam(site.shipped_stack(), "alice", "a password the forged IdP would accept").code != "PAM_SUCCESS"
        assert site.pam(site.module_only(), "newcomer", "any").code == "PAM_AUTH_ERR"
        assert idp.requests_since(mark) == []
    os.chown(ca, 0, 0)
    os.chmod(ca, 0o644)
    assert site.pam(site.module_only(), "alice", PASSWORDS["alice"]).code == "PAM_SUCCESS"
