"""Shared pieces of the integration tests: paths of the built artefacts, the test users, and
`Site`, one machine's worth of CloudLogin (config, cache, pam.d confdir) driven through real
libpam."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess

from llng import LemonLDAP

ROOT = pathlib.Path(__file__).resolve().parents[3]
BUILD = ROOT / "build"
MODULE = BUILD / "pam_cloudlogin.so"
DRIVER = BUILD / "pamdriver"
CLI = BUILD / "cloudlogin"

PASSWORDS = {
    "alice": "Correct horse 1",
    "bob": "bobs password",
    "carol": "carol's p@ss: é",
}


def add_users(server: LemonLDAP) -> None:
    server.add_user("alice", PASSWORDS["alice"], name="Alice Example", email="alice@example.com",
                    groups=["staff", "admins"])
    server.add_user("bob", PASSWORDS["bob"], name="Bob Disabled", email="bob@example.com", groups=["staff"])
    server.set_disabled("bob", True)
    server.add_user("carol", PASSWORDS["carol"], name="Carol Example", email="carol@example.com", groups=[])


@dataclasses.dataclass
class PamRun:
    results: list[tuple[str, str]]  # (phase, PAM name)
    messages: list[str]
    syslog: list[str]
    stdout: str
    stderr: str

    @property
    def code(self) -> str:
        assert self.results, f"no RESULT line:\n{self.stdout}\n{self.stderr}"
        return self.results[-1][1]


@dataclasses.dataclass
class Site:
    """One machine's worth of CloudLogin: a config file, a cache dir and a pam.d confdir."""
    dir: pathlib.Path
    syslog_shim: pathlib.Path
    idp: LemonLDAP | None = None

    @property
    def config_path(self) -> pathlib.Path:
        return self.dir / "cloudlogin.conf"

    @property
    def confdir(self) -> pathlib.Path:
        return self.dir / "pam.d"

    def write_config(self, idp: LemonLDAP | None = None, mode: int = 0o600, **overrides: str) -> pathlib.Path:
        idp = idp or self.idp
        assert idp is not None
        client_id, secret = idp.clients["confidential"]
        keys = {
            "provider": "oidc",
            "issuer": idp.issuer,
            "client_id": client_id,
            "client_secret": secret,
            "ca_file": str(idp.ca_file),
            "scopes": "openid profile email",
            "timeout": "5",
            "connect_timeout": "2",
            "cache_dir": str(self.dir / "cache"),
        }
        keys.update(overrides)
        lines = ["[idp]"] + [f"{k} = {v}" for k, v in keys.items() if v is not None]
        lines += ["", "[users]", "min_uid = 1000", "exclude = root"]
        self.config_path.write_text("\n".join(lines) + "\n")
        os.chown(self.config_path, 0, 0)
        os.chmod(self.config_path, mode)
        return self.config_path

    def service(self, name: str, text: str) -> None:
        self.confdir.mkdir(exist_ok=True)
        (self.confdir / "other").write_text("auth required pam_deny.so\naccount required pam_deny.so\n")
        (self.confdir / name).write_text(text)

    def module_only(self, args: str = "debug") -> str:
        """A service whose auth stack is pam_cloudlogin alone, to see the module's own code."""
        self.service("cl-only", f"auth required {MODULE} config={self.config_path} {args}\n")
        return "cl-only"

    def shipped_stack(self) -> str:
        """pam.d/cloudlogin-service as shipped, with the module path and config filled in."""
        text = (ROOT / "pam.d" / "cloudlogin-service").read_text()
        text = text.replace("pam_cloudlogin.so", f"{MODULE} config={self.config_path}")
        self.service("cl-shipped", text)
        return "cl-shipped"

    def pam(self, service: str, user: str, password: str | None, *extra: str, timeout: float = 60) -> PamRun:
        log = self.dir / "syslog.txt"
        if log.exists():
            log.unlink()
        env = dict(os.environ, SYSLOG_CAPTURE=str(log), LD_PRELOAD=str(self.syslog_shim))
        stdin = "" if password is None else password + "\n"
        proc = subprocess.run([str(DRIVER), "--confdir", str(self.confdir), "--service", service, "--user", user, *extra],
                              input=stdin.encode(), capture_output=True, env=env, timeout=timeout)
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        results = [tuple(line.split()[1:4:2]) for line in out.splitlines() if line.startswith("RESULT ")]
        messages = [line[4:] for line in err.splitlines() if line.startswith("MSG ")]
        syslog = log.read_text(errors="replace").splitlines() if log.exists() else []
        return PamRun(results, messages, syslog, out, err)


