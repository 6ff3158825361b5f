"""The admin CLI `cloudlogin` against the same real IdP."""
from __future__ import annotations

import subprocess

from cltest import CLI, PASSWORDS, Site


def cloudlogin(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_check_passes_for_a_good_config(site: Site, idp):
    result = cloudlogin("check", "--config", str(site.config_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"discovery: issuer {idp.issuer}" in result.stdout
    assert "usable signing key" in result.stdout


def test_check_names_a_bad_value_with_file_line_and_key(site: Site):
    site.config_path.write_text(site.config_path.read_text().replace("provider = oidc", "provider = saml"))
    result = cloudlogin("check", "--config", str(site.config_path))
    assert result.returncode == 1
    assert f"error: {site.config_path}:2: idp.provider: 'saml' is not one of: oidc, okta" in result.stderr


def test_check_explains_an_untrusted_certificate(site: Site):
    site.write_config(ca_file=None)
    result = cloudlogin("check", "--config", str(site.config_path))
    assert result.returncode == 2
    assert "TLS with the IdP failed" in result.stdout
    assert "set ca_file" in result.stdout


def test_check_explains_an_unreachable_issuer(site: Site):
    site.write_config(issuer="https://127.0.0.1:9")
    result = cloudlogin("check", "--config", str(site.config_path))
    assert result.returncode == 2
    assert "cannot connect" in result.stdout
    assert "reachable" in result.stdout


def test_check_warns_about_unknown_keys(site: Site):
    site.config_path.write_text(site.config_path.read_text() + "colour = blue\n")
    result = cloudlogin("check", "--config", str(site.config_path))
    assert "users.colour: unknown key is ignored" in result.stderr


def test_login_shows_outcome_code_and_claims_but_no_token(site: Site):
    result = cloudlogin("login", "alice", "--password-stdin", "--config", str(site.config_path), stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outcome: accepted" in result.stdout
    assert "pam: PAM_SUCCESS" in result.stdout
    assert "claim name: Alice Example" in result.stdout
    assert "claim email: alice@example.com" in result.stdout
    assert "eyJ" not in result.stdout + result.stderr
    assert PASSWORDS["alice"] not in result.stdout + result.stderr


def test_login_with_a_wrong_password(site: Site):
    result = cloudlogin("login", "alice", "--password-stdin", "--config", str(site.config_path), stdin="wrong\n")
    assert result.returncode == 3
    assert "outcome: rejected (bad credentials)" in result.stdout
    assert "pam: PAM_AUTH_ERR" in result.stdout
    assert "user sees: Sign-in failed." in result.stdout


def test_login_trace_lists_the_requests(site: Site):
    result = cloudlogin("login", "alice", "--password-stdin", "--trace", "--config", str(site.config_path), stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 0
    assert "trace: asking the IdP about alice" in result.stderr
    assert "trace: fetched GET" in result.stderr
