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


def _without_latency(line: str) -> str:
    head, _, _ = line.rpartition("; ")
    return head


def test_login_and_the_module_write_the_same_summary_line(site: Site):
    """`cloudlogin login` runs the module's phases (SignIn): for the same sign-ins it writes the
    same syslog summary line as the module in real libpam (the latency aside)."""
    for password, code in ((PASSWORDS["alice"], "PAM_SUCCESS"), ("wrong", "PAM_AUTH_ERR")):
        run = site.pam(site.module_only(), "alice", password)
        assert run.code == code, run
        module = [line.split(": ", 1)[1] for line in run.syslog if "authentication " in line]
        assert len(module) == 1, run.syslog
        result = cloudlogin("login", "alice", "--password-stdin", "--config", str(site.config_path), stdin=password + "\n")
        cli = [line[len("syslog: "):] for line in result.stdout.splitlines() if line.startswith("syslog: ")]
        assert len(cli) == 1, result.stdout
        assert _without_latency(cli[0]) == _without_latency(module[0]), (cli[0], module[0])
        assert f"; {code}; online; idp " in cli[0]
