"""The `proxy` key for real, and the environment steering nothing: a LemonLDAP::NG IdP that can
only be reached through a CONNECT proxy (Tests/Integration/support/connectproxy.py), real sudo
and su with a hostile environment, and the module under real libpam — inside run-in-sandbox.

The IdP's issuer is https://127.0.0.1:PORT (its certificate names 127.0.0.1), but it listens on
127.0.0.2:PORT: nothing answers at 127.0.0.1:PORT, so a direct connection is refused, and the
only way to the IdP is the proxy, which maps the CONNECT target 127.0.0.1:PORT to 127.0.0.2:PORT.
A caller whose environment could switch the proxy off (NO_PROXY=*) or swap it (https_proxy)
would turn "the IdP disabled this user" into "the IdP is unreachable", and the shipped stack
would then let pam_unix accept the synced password offline."""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess

import pytest

from cltest import DRIVER, MODULE, ROOT
from connectproxy import ConnectProxy
from llng import LemonLDAP
from sandbox import TOOL_ENV, allow_sudo, assert_in_sandbox, ensure_invoker, pam_service

CONFIG = pathlib.Path("/etc/cloudlogin/proxy.conf")
STATE = pathlib.Path("/var/lib/cloudlogin/users")
SUFFIX = "@example.com"

# What a hostile caller puts into the environment of su or sudo: no proxy for any host, and
# their own proxy for everything.
NO_PROXY_ENV = {"NO_PROXY": "*", "no_proxy": "*"}


def hostile_env(elsewhere: ConnectProxy) -> dict[str, str]:
    return {**NO_PROXY_ENV, "https_proxy": elsewhere.url, "HTTPS_PROXY": elsewhere.url,
            "all_proxy": elsewhere.url, "ALL_PROXY": elsewhere.url}


# sudo starts PAM with the environment it keeps for the command: with env_reset (Debian's default)
# the proxy variables are dropped, but many sites keep them (openSUSE's shipped sudoers does), and
# then the caller's NO_PROXY reaches the module. The tests run sudo with such a line.
SUDOERS_KEEP = pathlib.Path("/etc/sudoers.d/cloudlogin-proxy-test")
KEEP_LINE = 'Defaults env_keep += "NO_PROXY no_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY"\n'


def keep_proxy_variables_in_sudo() -> None:
    assert_in_sandbox()
    tmp = SUDOERS_KEEP.with_name(".cloudlogin-proxy-test.tmp")  # sudo ignores names containing '.'
    tmp.write_text(KEEP_LINE)
    os.chmod(tmp, 0o440)
    subprocess.run(["visudo", "-cq", "-f", str(tmp)], check=True, env=TOOL_ENV)
    os.replace(tmp, SUDOERS_KEEP)


def shipped(name: str) -> str:
    text = (ROOT / "pam.d" / name).read_text()
    return text.replace("pam_cloudlogin.so", f"{MODULE} config={CONFIG}")


class Routed:
    def __init__(self, idp: LemonLDAP, proxy: ConnectProxy, elsewhere: ConnectProxy):
        self.idp, self.proxy, self.elsewhere = idp, proxy, elsewhere

    def write_config(self, **idp_keys: str | None) -> None:
        client_id, secret = self.idp.clients["confidential"]
        keys = {"provider": "oidc", "issuer": self.idp.issuer, "client_id": client_id, "client_secret": secret,
                "ca_file": str(self.idp.ca_file), "username_suffix": SUFFIX, "timeout": "5", "connect_timeout": "2",
                "proxy": self.proxy.url}
        keys.update(idp_keys)
        CONFIG.parent.mkdir(exist_ok=True)
        CONFIG.write_text("[idp]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None) +
                          "\n[users]\nmin_uid = 1000\nexclude = root\ncreate = yes\n\n[offline]\nallow = yes\nmax_days = 14\n")
        os.chown(CONFIG, 0, 0)
        os.chmod(CONFIG, 0o600)

    def user(self, short: str, password: str) -> str:
        self.idp.add_user(short + SUFFIX, password, name=short.title() + " Example", email=short + SUFFIX, groups=[])
        return short

    def token_requests(self, mark: int) -> list[str]:
        return [line for line in self.idp.requests_since(mark) if line.startswith("POST /oauth2/token")]

    def verdict(self, user: str) -> str:
        return json.loads((STATE / user).read_text())["last_verdict"]


def pam(service: str, user: str, password: str, env: dict[str, str] | None = None) -> str:
    """Real libpam (not setuid: pamdriver runs as root) with a service from /etc/pam.d."""
    proc = subprocess.run([str(DRIVER), "--confdir", "/etc/pam.d", "--service", service, "--user", user],
                          input=(password + "\n").encode(), capture_output=True, timeout=120,
                          env={**TOOL_ENV, **(env or {})})
    results = [line.split()[3] for line in proc.stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert results, proc.stdout.decode() + proc.stderr.decode()
    LAST_OUTPUT[:] = [proc.stdout.decode() + proc.stderr.decode()]
    return results[-1]


LAST_OUTPUT: list[str] = []  # what the last pam() call printed, for assertion messages


def sudo_with_env(user: str, password: str, env: dict[str, str]) -> tuple[int, str]:
    """As USER, real `sudo -S -k true` with ENV added to the environment sudo starts with."""
    proc = subprocess.run(["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
                           "sudo", "-S", "-k", "-p", "PW:", "--", "true"],
                          input=password + "\n", text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=TOOL_ENV, cwd="/", timeout=60)
    return proc.returncode, proc.stdout


def su_with_env(target: str, password: str, env: dict[str, str]) -> tuple[int, str]:
    """Real `su TARGET -c 'id -un'` started by the non-root invoker with ENV in its environment."""
    invoker = ensure_invoker()
    proc = subprocess.run(["runuser", "-u", invoker, "--", "env", *(f"{k}={v}" for k, v in env.items()),
                           "su", target, "-c", "id -un"],
                          input=password + "\n", text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=TOOL_ENV, cwd="/", timeout=60)
    return proc.returncode, proc.stdout


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    idp = LemonLDAP(tmp_path_factory.mktemp("llng-proxy"))
    idp.bind_host = "127.0.0.2"  # the issuer stays https://127.0.0.1:PORT: nobody listens there
    idp.start()
    proxy = ConnectProxy({("127.0.0.1", idp.port): ("127.0.0.2", idp.port)})
    elsewhere = ConnectProxy()  # the caller's own proxy: carries nothing, records what it is asked
    world = Routed(idp, proxy, elsewhere)
    world.write_config()
    try:
        with pam_service("login", shipped("login")), pam_service("sudo", shipped("sudo")), \
                pam_service("su", shipped("su")), \
                pam_service("cl-proxy", f"auth required {MODULE} config={CONFIG}\naccount required pam_permit.so\n"):
            allow_sudo("ALL")
            keep_proxy_variables_in_sudo()
            yield world
    finally:
        SUDOERS_KEEP.unlink(missing_ok=True)
        proxy.close()
        elsewhere.close()
        idp.stop()


@pytest.fixture(autouse=True)
def default_config(routed: Routed):
    routed.write_config()


def test_the_proxy_is_the_only_route_to_the_idp(routed: Routed):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", routed.idp.port), timeout=2).close()
    mark = routed.proxy.mark()
    routed.user("pxpia", "Pxpia pw 1")
    assert pam("cl-proxy", "pxpia", "Pxpia pw 1") == "PAM_SUCCESS", LAST_OUTPUT
    tunnels, refused = routed.proxy.since(mark)
    assert tunnels and set(tunnels) == {f"127.0.0.1:{routed.idp.port}"} and refused == []
    routed.write_config(proxy=None)  # without the proxy the IdP is unreachable
    assert pam("cl-proxy", "pxpia", "Pxpia pw 1") == "PAM_AUTHINFO_UNAVAIL"


@pytest.mark.parametrize("host", ["sudo", "su"])
def test_a_hostile_environment_cannot_bypass_the_proxy_for_a_disabled_user(routed: Routed, host: str):
    """A user the IdP disabled, a caller who sets NO_PROXY=* and a proxy of their own at real sudo
    or su: the module still asks the IdP through the configured proxy, the IdP says no, and the
    synced password does not get in offline."""
    user = routed.user(f"px{host}", f"Px {host} pw 1")
    password = f"Px {host} pw 1"
    assert pam("login", user, password) == "PAM_SUCCESS"  # the first sign-in creates the account
    routed.idp.set_disabled(user + SUFFIX, True)
    try:
        for env in (NO_PROXY_ENV, hostile_env(routed.elsewhere)):
            mark, proxied, foreign = routed.idp.mark(), routed.proxy.mark(), routed.elsewhere.mark()
            code, out = (sudo_with_env(user, password, env) if host == "sudo"
                         else su_with_env(user, password, env))
            assert code != 0, f"{host} let a user the IdP disabled in with {sorted(env)}: {out}"
            assert routed.token_requests(mark), f"the IdP was not asked ({sorted(env)}): {out}"
            assert routed.proxy.since(proxied)[0], "the IdP was reached without the configured proxy"
            assert routed.elsewhere.since(foreign) == ([], []), "the caller's proxy was used"
            assert routed.verdict(user) == "revoked"
    finally:
        routed.idp.set_disabled(user + SUFFIX, False)


def test_opting_in_still_ignores_the_environment_of_setuid_hosts(routed: Routed):
    routed.write_config(proxy_from_environment="yes")
    user = routed.user("pxoptin", "Pxoptin pw 1")
    assert pam("login", user, "Pxoptin pw 1") == "PAM_SUCCESS"
    routed.idp.set_disabled(user + SUFFIX, True)
    try:
        mark, proxied, foreign = routed.idp.mark(), routed.proxy.mark(), routed.elsewhere.mark()
        code, out = sudo_with_env(user, "Pxoptin pw 1", hostile_env(routed.elsewhere))
        assert code != 0, out
        assert routed.token_requests(mark) and routed.proxy.since(proxied)[0], out
        assert routed.elsewhere.since(foreign) == ([], [])
    finally:
        routed.idp.set_disabled(user + SUFFIX, False)


def test_the_environment_is_ignored_by_default_even_where_it_is_trusted(routed: Routed):
    """pamdriver is not setuid: its environment is root's own. Still, without
    proxy_from_environment = yes, no proxy variable counts: NO_PROXY does not switch the
    configured proxy off, and https_proxy does not stand in for a missing proxy key."""
    routed.user("pxroot", "Pxroot pw 1")
    assert pam("cl-proxy", "pxroot", "Pxroot pw 1", env=NO_PROXY_ENV) == "PAM_SUCCESS"
    routed.write_config(proxy=None)
    env = {"https_proxy": routed.proxy.url, "HTTPS_PROXY": routed.proxy.url}
    mark = routed.proxy.mark()
    assert pam("cl-proxy", "pxroot", "Pxroot pw 1", env=env) == "PAM_AUTHINFO_UNAVAIL"
    assert routed.proxy.since(mark) == ([], [])
    # The admin opts in: a trusted host's environment is honoured as curl reads it.
    routed.write_config(proxy=None, proxy_from_environment="yes")
    assert pam("cl-proxy", "pxroot", "Pxroot pw 1", env=env) == "PAM_SUCCESS"
    assert routed.proxy.since(mark)[0]
    routed.write_config(proxy_from_environment="yes")
    assert pam("cl-proxy", "pxroot", "Pxroot pw 1", env={**NO_PROXY_ENV, **env}) == "PAM_AUTHINFO_UNAVAIL"


def cli(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "build" / "cloudlogin"), *args], input=stdin, capture_output=True, text=True,
                          timeout=90, env={**TOOL_ENV, **(env or {})})


def test_cloudlogin_check_and_setup_use_the_proxy_key_and_not_the_environment(routed: Routed, tmp_path):
    """The admin tool's requests follow the module's rule, its clock probe included."""
    result = cli("check", "--json", "--config", str(CONFIG), "--pam-dir", str(tmp_path), env=NO_PROXY_ENV)
    found = {f["id"]: f for f in json.loads(result.stdout)["findings"]}
    for step in ("idp.discovery", "idp.jwks", "idp.clock"):
        assert found[step]["status"] == "ok", found
    mark = routed.proxy.mark()
    written = pathlib.Path("/etc/cloudlogin/setup-proxy.conf")
    client_id, _ = routed.idp.clients["public"]
    args = ["setup", "--config", str(written), "--issuer", routed.idp.issuer, "--client-id", client_id,
            "--ca-file", str(routed.idp.ca_file), "--force"]
    try:
        result = cli(*args, env={"https_proxy": routed.proxy.url, "HTTPS_PROXY": routed.proxy.url})
        assert result.returncode == 2 and not written.exists(), result.stdout + result.stderr
        assert routed.proxy.since(mark) == ([], [])
        result = cli(*args, "--proxy", routed.proxy.url, env=NO_PROXY_ENV)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"proxy = {routed.proxy.url}\n" in written.read_text()
        assert routed.proxy.since(mark)[0]
    finally:
        written.unlink(missing_ok=True)
