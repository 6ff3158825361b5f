"""A real OpenSSH server for the tests, and a client that answers its keyboard-interactive prompts.

`Sshd` starts Debian's /usr/sbin/sshd in the foreground (`sshd -D -e -f CONFIG`, no systemd) on
127.0.0.1 only, on a free port, with its own sshd_config and host key in a temporary directory,
and PAM service `sshd` (/etc/pam.d/sshd: in the tests, the sandbox's overlay). Password
authentication is off and keyboard-interactive on, so every prompt and message comes from PAM's
conversation. Every wait is bounded; stop() kills the listener and every process it started
(per-connection sshd processes call setsid(), so they are found through /proc, not the process
group). Run it only inside run-in-sandbox: it needs a private /run (/run/sshd) and /etc.

`ssh_kbdint` runs the real `ssh` client on a pseudo-terminal (pexpect), answers each password
prompt and returns everything the user saw. `SshDialog` runs it one step at a time, for
dialogues in which the test acts between prompts (an MFA code, a push approved at the IdP while
a prompt waits) and times when each prompt showed.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pexpect

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
KEYGEN = "/usr/bin/ssh-keygen"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def sshd_version() -> str:
    """`sshd -V` (OpenSSH >= 9.1), e.g. "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 ..."."""
    proc = subprocess.run([SSHD, "-V"], capture_output=True, text=True, env=ENV, timeout=10)
    return (proc.stderr or proc.stdout).strip()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _state(pid: int) -> str | None:
    """The process state letter from /proc/PID/stat (Z: a zombie), None when it is gone."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Sshd:
    """sshd -D -e on 127.0.0.1:PORT. Use as a context manager or call start()/stop()."""

    def __init__(self, workdir: pathlib.Path, permit_root_login: str = "yes", extra: str = ""):
        """EXTRA: more sshd_config lines; they win over the defaults (first value wins in sshd),
        except where it listens (loopback only)."""
        assert not re.search(r"(?im)^\s*(ListenAddress|Port)\b", extra), "Sshd listens on 127.0.0.1 only"
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.config = self.dir / "sshd_config"
        self.log_file = self.dir / "sshd.log"
        self.port = 0
        self.permit_root_login = permit_root_login
        self.extra = extra
        self.proc: subprocess.Popen | None = None

    def _write_config(self) -> None:
        if not self.host_key.exists():
            subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "cloudlogin-test", "-f", str(self.host_key)],
                           check=True, env=ENV, timeout=30, capture_output=True)
        # sshd keeps the first value it reads for a keyword: EXTRA comes first so it can override.
        self.config.write_text(f"""# Written by Tests/Integration/support/sshd.py
{self.extra}
ListenAddress 127.0.0.1
Port {self.port}
HostKey {self.host_key}
PidFile none
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
HostbasedAuthentication no
AuthenticationMethods keyboard-interactive
PermitRootLogin {self.permit_root_login}
PermitEmptyPasswords no
LoginGraceTime 30
MaxAuthTries 3
MaxStartups 20
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitUserEnvironment no
AcceptEnv LANG LC_*
LogLevel VERBOSE
""")
        os.chmod(self.config, 0o600)

    def start(self, timeout: float = 20) -> "Sshd":
        assert self.proc is None, "already started"
        from sandbox import assert_in_sandbox  # accounts/sandbox.py: never the machine's /run or /etc
        assert_in_sandbox()
        # The privilege separation directory; /run is the sandbox's private tmpfs.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for _ in range(5):
            self.port = _free_port()
            self._write_config()
            check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True, env=ENV, timeout=30)
            assert check.returncode == 0, f"sshd -t: {check.stdout}{check.stderr}"
            log = open(self.log_file, "ab")
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=ENV, cwd="/", start_new_session=True)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                text = self.log()
                if f"Server listening on 127.0.0.1 port {self.port}" in text:
                    listening = re.findall(r"Server listening on (\S+) port", text)
                    assert set(listening) == {"127.0.0.1"}, f"sshd listens beyond loopback: {listening}"
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            exited = self.proc.poll() is not None
            self.stop()
            if not (exited and "Address already in use" in self.log()):
                raise AssertionError(f"sshd did not start within {timeout} s:\n{self.log()}")
        raise AssertionError(f"sshd found no free port:\n{self.log()}")

    @property
    def known_hosts(self) -> pathlib.Path:
        """A known_hosts file with this server's key, for ssh's StrictHostKeyChecking=yes."""
        path = self.dir / "known_hosts"
        key = (self.dir / (self.host_key.name + ".pub")).read_text().split()
        path.write_text(f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n")
        return path

    def ssh(self, user: str, passwords: list[str] | str, **kw) -> "SshResult":
        """ssh_kbdint to this server, checking its host key."""
        return ssh_kbdint(self.port, user, passwords, known_hosts=self.known_hosts, **kw)

    def dialog(self, user: str, **kw) -> "SshDialog":
        """An SshDialog with this server, checking its host key."""
        return SshDialog(self.port, user, known_hosts=self.known_hosts, **kw)

    def processes(self) -> list[int]:
        """The live processes below the listener: connections (and the process each runs PAM's
        conversation in), sessions, shells."""
        return [pid for pid in _descendants(self.proc.pid) if _state(pid) not in ("Z", None)] if self.proc else []

    def log(self) -> str:
        """What sshd wrote to stderr (-e: its log lines) so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, timeout: float = 10) -> None:
        """Kill the listener and every process below it (connections, sessions, shells)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        # Until none is left: a process may fork between the look and the kill.
        deadline = time.monotonic() + timeout
        killed: set[int] = set()
        while time.monotonic() < deadline:
            found = [pid for pid in _descendants(proc.pid) if _state(pid) not in ("Z", None)]
            if not found:
                break
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        # The killed processes' parent is gone: run-in-sandbox's PID 1 reaps them.
        while killed and time.monotonic() < deadline:
            killed = {pid for pid in killed if _state(pid) not in (None, "Z")}
            time.sleep(0.02)

    def __enter__(self) -> "Sshd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclasses.dataclass
class SshResult:
    status: int | None    # ssh's exit status (the remote command's, or 255 for ssh's own failure)
    prompts: list[str]    # the prompts answered, in order
    transcript: str       # everything the terminal showed (\r\n -> \n, ANSI codes removed)
    timed_out: bool


def _clean(text: str) -> str:
    return _ANSI.sub("", text.replace("\r\n", "\n")).replace("\r", "")


def ssh_argv(port: int, user: str, command: str | None, tty: bool = False, attempts: int = 1,
             known_hosts: pathlib.Path | None = None, extra_options: tuple[str, ...] = ()) -> list[str]:
    """The arguments of `ssh -p PORT USER@127.0.0.1 [COMMAND]` with keyboard-interactive only and
    ATTEMPTS keyboard-interactive attempts (NumberOfPasswordPrompts; one attempt may hold many
    prompts). command=None or tty=True: a remote terminal (-tt)."""
    return ["-F", "/dev/null",
            "-o", "PreferredAuthentications=keyboard-interactive",
            # The server's key is known (no "Permanently added" warning) or, without KNOWN_HOSTS,
            # accepted blindly. The client's LogLevel stays INFO: ssh shows the instruction text
            # of a keyboard-interactive request (where sshd puts PAM's messages) with logit(),
            # which LogLevel=ERROR would hide.
            *(["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"] if known_hosts else
              ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]),
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=INFO",
            "-o", f"NumberOfPasswordPrompts={attempts}",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "BatchMode=no", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null",
            *extra_options,
            "-tt" if (tty or command is None) else "-T",
            "-p", str(port), f"{user}@127.0.0.1", *([] if command is None else [command])]


def _spawn_ssh(argv: list[str], timeout: float) -> pexpect.spawn:
    return pexpect.spawn(SSH, argv, env={"TERM": "dumb", "HOME": "/nonexistent", **ENV}, encoding="utf-8",
                         codec_errors="replace", dimensions=(40, 400), timeout=timeout, cwd="/")


def ssh_kbdint(port: int, user: str, passwords: list[str] | str, command: str | None = "id -un", tty: bool = False,
               timeout: float = 40, prompt: str = r"[Pp]assword: ?\Z", extra_options: tuple[str, ...] = (),
               shell_line: str = "id -un", known_hosts: pathlib.Path | None = None) -> SshResult:
    """`ssh -p PORT USER@127.0.0.1 COMMAND` with keyboard-interactive only, run by root on a
    pseudo-terminal (the client reads the prompts' answers from its terminal). Each password
    prompt gets the next of PASSWORDS; a prompt with no password left is a failure of the test
    (the transcript says so) and ends ssh. tty=True asks for a remote pseudo-terminal (-tt).
    command=None: no command, so sshd starts a login shell on a remote terminal as for an
    interactive `ssh host`; once its prompt ("$ " or "# ") shows, SHELL_LINE is typed, then
    `exit`. Everything the user saw is in the transcript."""
    answers = [passwords] if isinstance(passwords, str) else list(passwords)
    argv = ssh_argv(port, user, command, tty=tty, attempts=max(1, len(answers)), known_hosts=known_hosts,
                    extra_options=extra_options)
    deadline = time.monotonic() + timeout
    left = lambda: max(0.1, deadline - time.monotonic())  # noqa: E731
    child = _spawn_ssh(argv, timeout)
    log: list[str] = []
    prompts: list[str] = []
    timed_out = False
    try:
        while True:
            patterns = [re.compile(prompt), pexpect.EOF] + ([re.compile(r"[$#] \Z")] if command is None else [])
            i = child.expect(patterns, timeout=left())
            log.append(child.before + (child.after if isinstance(child.after, str) else ""))
            if i == 1:
                break
            if i == 2:  # the interactive shell's prompt
                child.sendline(f"{shell_line}; exit")
                child.expect(pexpect.EOF, timeout=left())
                log.append(child.before)
                break
            prompts.append(child.after)
            if not answers:
                log.append("\n<<TEST: no password left for this prompt>>\n")
                break
            child.sendline(answers.pop(0))
    except pexpect.TIMEOUT:
        timed_out = True
        log.append(f"{child.before}\n<<TIMEOUT after {timeout} s>>")
    finally:
        if child.isalive():
            child.close(force=True)
        else:
            child.close()
    return SshResult(child.exitstatus, prompts, _clean("".join(log)), timed_out)


class SshDialog:
    """The real `ssh` client on a pseudo-terminal, driven one step at a time, for dialogues in
    which the test acts between prompts (reads a number, approves a push at the IdP, then
    answers) and measures when each prompt showed:

        with SshDialog(server.port, user, known_hosts=server.known_hosts) as ssh:
            ssh.expect(r"Password: \\Z"); ssh.answer(password)
            match = ssh.expect(r"tap (\\d+) on your phone")
            ...
            result = ssh.finish()

    Every wait is bounded by TIMEOUT (in all); a timeout fails the test with what the user saw
    so far. finish() waits for ssh to end and returns an SshResult; leaving the with-block
    kills ssh if it still runs."""

    def __init__(self, port: int, user: str, command: str | None = "id -un", known_hosts: pathlib.Path | None = None,
                 attempts: int = 1, timeout: float = 60, extra_options: tuple[str, ...] = ()):
        self.argv = ssh_argv(port, user, command, attempts=attempts, known_hosts=known_hosts, extra_options=extra_options)
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.child = _spawn_ssh(self.argv, timeout)
        self.started = time.monotonic()
        self.prompts: list[str] = []   # the text of each expect() match, in order
        self._log: list[str] = []

    def _left(self) -> float:
        return max(0.1, self.deadline - time.monotonic())

    @property
    def transcript(self) -> str:
        """Everything the terminal showed so far (cleaned as SshResult.transcript)."""
        pending = self.child.before if isinstance(self.child.before, str) else ""
        return _clean("".join(self._log) + pending)

    def expect(self, pattern: str, timeout: float | None = None, or_end: bool = False) -> re.Match | None:
        """Wait until the output matches the regex PATTERN (searched in what came since the last
        match); returns the match. Fails with the transcript on a timeout, and on ssh's end
        unless OR_END (then None: finish() has what came)."""
        wait = self._left() if timeout is None else min(timeout, self._left())
        try:
            self.child.expect(re.compile(pattern), timeout=wait)
        except pexpect.TIMEOUT:
            raise AssertionError(f"no {pattern!r} within {wait:.0f} s; the user saw:\n{self.transcript}") from None
        except pexpect.EOF:
            if or_end:
                # What came before the end belongs to the transcript (finish() finds nothing more).
                self._log.append(self.child.before)
                return None
            raise AssertionError(f"ssh ended before {pattern!r}; the user saw:\n{self.transcript}") from None
        self._log.append(self.child.before + self.child.after)
        self.prompts.append(self.child.after)
        return self.child.match

    def since_start(self) -> float:
        return time.monotonic() - self.started

    def answer(self, text: str) -> None:
        """Type TEXT and Enter."""
        self.child.sendline(text)

    def send_control(self, char: str) -> None:
        """Ctrl-CHAR on the terminal (e.g. "d": end of input, "c": interrupt)."""
        self.child.sendcontrol(char)

    def finish(self, timeout: float | None = None) -> SshResult:
        """Wait for ssh to end; the SshResult of the whole dialogue."""
        timed_out = False
        try:
            self.child.expect(pexpect.EOF, timeout=self._left() if timeout is None else min(timeout, self._left()))
            self._log.append(self.child.before)
        except pexpect.TIMEOUT:
            timed_out = True
            self._log.append(f"{self.child.before}\n<<TIMEOUT>>")
        self.close()
        return SshResult(self.child.exitstatus, list(self.prompts), _clean("".join(self._log)), timed_out)

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)
        else:
            self.child.close()

    def __enter__(self) -> "SshDialog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
