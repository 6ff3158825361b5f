"""Helpers for tests that run real `login`, `sudo`, `su` and the shadow account tools.

Everything here runs only inside `Tests/Integration/accounts/run-in-sandbox` (a private mount
namespace with an overlay over the whole /etc and tmpfs on /home, /run, /var/log, ...). Every
function that writes calls assert_in_sandbox() first, so a test can never modify the real /etc.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import subprocess
import time
from typing import Iterator

import pexpect

ACCOUNT_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")
SUDOERS_FILE = pathlib.Path("/etc/sudoers.d/cloudlogin-test")
INVOKER = "invoker"  # the non-root user that runs `su`, created on first use
TOOL_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")


class NotInSandbox(AssertionError):
    pass


def _mountinfo_top(mountpoint: str) -> tuple[str, str] | None:
    """(fstype, super options) of the mount on top at MOUNTPOINT, from /proc/self/mountinfo."""
    top = None
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields = pre.split(" ")
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == mountpoint:
            fstype, _source, options = (post.split(" ") + ["", "", ""])[:3]
            top = (fstype, options)  # later lines are mounted on top of earlier ones
    return top


def assert_in_sandbox() -> None:
    """Fail loudly unless this process runs in run-in-sandbox (CLOUDLOGIN_SANDBOX=1 and an
    overlay mounted on /etc in this mount namespace)."""
    hint = "run these tests through Tests/Integration/accounts/run-in-sandbox, e.g.\n" \
           "  Tests/Integration/accounts/run-in-sandbox python3 -m pytest -q -p no:cacheprovider Tests/Integration/accounts"
    if os.environ.get("CLOUDLOGIN_SANDBOX") != "1":
        raise NotInSandbox(f"CLOUDLOGIN_SANDBOX is not 1: refusing to touch /etc.\n{hint}")
    top = _mountinfo_top("/etc")
    if top is None or top[0] != "overlay":
        raise NotInSandbox(f"/etc is not an overlay in this mount namespace ({top}): refusing to touch /etc.\n{hint}")
    if os.geteuid() != 0:
        raise NotInSandbox("the sandboxed tests must run as root")


def _run(argv: list[str], input: str | None = None, timeout: float = 60, check: bool = True,
         **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, input=input, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=TOOL_ENV, cwd="/", timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}")
    return proc


# ---- /etc inside the overlay ---------------------------------------------------------------

def install_pam_service(name: str, text: str) -> str | None:
    """Write /etc/pam.d/NAME (in the overlay). Returns the previous text, or None."""
    assert_in_sandbox()
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", name) and name not in (".", ".."), name
    path = pathlib.Path("/etc/pam.d") / name
    old = path.read_text() if path.exists() else None
    path.write_text(text)
    os.chmod(path, 0o644)
    return old


@contextlib.contextmanager
def pam_service(name: str, text: str) -> Iterator[None]:
    """install_pam_service for the duration of a with-block, then put back what was there."""
    old = install_pam_service(name, text)
    try:
        yield
    finally:
        path = pathlib.Path("/etc/pam.d") / name
        if old is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(old)


def allow_sudo(user_or_group: str) -> None:
    """Let USER (or %GROUP) run anything with sudo after authenticating: a line in
    /etc/sudoers.d/cloudlogin-test (mode 0440, checked with visudo). Debian's /etc/sudoers already
    has `%sudo ALL=(ALL:ALL) ALL`, so members of group sudo need nothing."""
    assert_in_sandbox()
    assert user_or_group == "ALL" or re.fullmatch(r"%?[a-z_][a-z0-9_-]*", user_or_group), user_or_group
    line = f"{user_or_group} ALL=(ALL:ALL) ALL\n"
    text = SUDOERS_FILE.read_text() if SUDOERS_FILE.exists() else ""
    if line not in text.splitlines(keepends=True):
        text += line
    tmp = SUDOERS_FILE.with_name(".cloudlogin-test.tmp")  # sudo ignores names containing '.'
    tmp.write_text(text)
    os.chmod(tmp, 0o440)
    _run(["visudo", "-cq", "-f", str(tmp)])
    os.replace(tmp, SUDOERS_FILE)


# ---- accounts -------------------------------------------------------------------------------

def user_exists(name: str) -> bool:
    return _run(["getent", "passwd", name], check=False).returncode == 0


def create_local_user(name: str, password: str | None, groups: tuple[str, ...] = (), shell: str = "/bin/bash") -> None:
    """A plain local account made with the real tools: useradd -m, then chpasswd (through PAM)."""
    assert_in_sandbox()
    argv = ["useradd", "-m", "-s", shell]
    if groups:
        argv += ["-G", ",".join(groups)]
    _run(argv + [name])
    if password is not None:
        _run(["chpasswd"], input=f"{name}:{password}\n")


def ensure_invoker() -> str:
    """The throwaway non-root user from which run_su starts `su` (created once per sandbox)."""
    assert_in_sandbox()
    if not user_exists(INVOKER):
        create_local_user(INVOKER, None, shell="/bin/sh")
    return INVOKER


def snapshot_account_files() -> dict[str, bytes]:
    return {path: pathlib.Path(path).read_bytes() for path in ACCOUNT_FILES}


def account_files_changed(before: dict[str, bytes], after: dict[str, bytes] | None = None) -> list[str]:
    """Paths whose content differs between two snapshots (after defaults to now)."""
    after = snapshot_account_files() if after is None else after
    return [path for path in ACCOUNT_FILES if before.get(path) != after.get(path)]


SANDBOX_INFO = pathlib.Path("/run/cloudlogin-sandbox")  # written by run-in-sandbox before CMD


def original_account_files() -> dict[str, bytes]:
    """The account files as they were when the sandbox started (the real machine's)."""
    return {path: (SANDBOX_INFO / "orig" / pathlib.Path(path).name).read_bytes() for path in ACCOUNT_FILES}


def pwck_grpck_clean() -> tuple[bool, str]:
    """Run `pwck -r` and `grpck -r` (read-only). Clean = they report nothing that they did not
    already report when the sandbox started (pwck-baseline.txt: Debian's system users such as
    lp/news/www-data have homes that do not exist, and host users' homes are not on the sandbox's
    fresh /home). Returns (clean, report)."""
    baseline = set((SANDBOX_INFO / "pwck-baseline.txt").read_text().splitlines())
    out, new = [], []
    for argv in (["pwck", "-r"], ["grpck", "-r"]):
        proc = _run(argv, check=False)
        out.append(f"$ {' '.join(argv)}  -> exit {proc.returncode}\n{proc.stdout}")
        new += [line for line in proc.stdout.splitlines()
                if line not in baseline and not line.endswith(": no changes")]
        if proc.returncode not in (0, 2) or (proc.returncode == 2 and not proc.stdout.strip()):
            new.append(f"{argv[0]} exited {proc.returncode}")
    report = "".join(out) + ("new problems:\n" + "\n".join(new) + "\n" if new else "no new problems\n")
    return not new, report


# ---- login ----------------------------------------------------------------------------------

@dataclasses.dataclass
class LoginResult:
    shell_started: bool       # a shell ran the command and printed the end marker
    output: list[str]         # the command's output lines (empty if no shell)
    status: int | None        # the command's exit status in that shell
    login_status: int | None  # exit status of /bin/login (None if it had to be killed)
    transcript: str           # everything the terminal showed, \r\n turned into \n, ANSI codes removed

    @property
    def login_incorrect(self) -> bool:
        return "Login incorrect" in self.transcript


def _clean(text: str) -> str:
    return _ANSI.sub("", text.replace("\r\n", "\n")).replace("\r", "")


def run_login(user: str, password: str, command: str = "id -un; echo HOME=$HOME", timeout: float = 30,
              password_prompt: str = r"[Pp]assword: ?") -> LoginResult:
    """Run the real /bin/login (shadow) as root on a new pseudo-terminal, answer "login:" with
    USER and the password prompt with PASSWORD. If a shell starts, run COMMAND (one line of sh)
    in it, then `exit`. PAM messages (pam_info/pam_error) end up in the transcript.

    A shell counts as started when its output ends in a prompt ("$ " or "# ") and a marker the
    command line prints afterwards comes back; a failed login shows "Login incorrect" (after
    pam_faildelay's 3 s in Debian's stack) and a new "login:" prompt, and is then killed."""
    assert_in_sandbox()
    deadline = time.monotonic() + timeout
    left = lambda: max(0.1, deadline - time.monotonic())  # noqa: E731
    child = pexpect.spawn("/bin/login", [], env={"TERM": "dumb", **TOOL_ENV}, encoding="utf-8",
                          codec_errors="replace", dimensions=(40, 400), timeout=timeout, cwd="/")
    log: list[str] = []
    shell, output, status = False, [], None
    try:
        child.expect(r"login: ", timeout=left())
        log.append(child.before + child.after)
        child.sendline(user)
        child.expect(password_prompt, timeout=left())
        log.append(child.before + child.after)
        child.sendline(password)
        # Not "login: " here: pam_lastlog's "Last login: ..." contains it. shadow's login always
        # says "Login incorrect" before it asks again.
        i = child.expect([re.compile(r"[$#] \Z"), "Login incorrect", pexpect.EOF], timeout=left())
        log.append(child.before + (child.after if isinstance(child.after, str) else ""))
        if i == 0:
            # One typed line. Its echo shows the markers with "" inside; only the shell's output
            # has them joined, so the echo (tty or readline) never matches.
            child.sendline(f"printf '%s\\n' __CL\"\"BEGIN__; {command}; printf '\\n%s\\n' \"__CL\"\"END_$?__\"")
            child.expect(r"__CLBEGIN__\r?\n", timeout=left())
            log.append(child.before + child.after)
            child.expect(r"__CLEND_(\d+)__", timeout=left())
            log.append(child.before + child.after)
            shell, status = True, int(child.match.group(1))
            output = _clean(child.before).split("\n")
            output.pop()  # what follows the newline printed before the END marker
            if output and output[-1] == "":
                output.pop()  # the command's own final newline
            child.sendline("exit")
            child.expect(pexpect.EOF, timeout=left())
            log.append(child.before)
        elif i == 1:
            # login asks again after a failure: collect up to the new prompt, then give up.
            child.expect(r"login: ", timeout=min(left(), 10))
            log.append(child.before + child.after)
    except pexpect.TIMEOUT:
        log.append(f"{child.before}\n<<TIMEOUT after {timeout} s>>")
    except pexpect.EOF:
        log.append(f"{child.before}\n<<EOF>>")
    finally:
        if child.isalive():
            child.close(force=True)
        else:
            child.close()
    return LoginResult(shell, output, status, child.exitstatus, _clean("".join(log)))


# ---- sudo / su ------------------------------------------------------------------------------

def run_sudo(user: str, password: str, command: list[str] | None = None, timeout: float = 60) -> tuple[int, str]:
    """As USER (via runuser), `sudo -S -k -p PW: COMMAND` with PASSWORD on stdin: sudo really
    authenticates USER through /etc/pam.d/sudo (-k: no cached credentials). Returns (exit code,
    stdout+stderr)."""
    assert_in_sandbox()
    command = ["true"] if command is None else command
    proc = _run(["runuser", "-u", user, "--", "sudo", "-S", "-k", "-p", "PW:", "--", *command],
                input=password + "\n", timeout=timeout, check=False)
    return proc.returncode, proc.stdout


def run_su(target_user: str, password: str, command: str = "id -un", timeout: float = 60) -> tuple[int, str]:
    """`su TARGET -c COMMAND` started by the non-root user `invoker` (root's su would skip
    authentication through pam_rootok); su reads PASSWORD from stdin (no tty). Returns (exit code,
    stdout+stderr)."""
    assert_in_sandbox()
    invoker = ensure_invoker()
    proc = _run(["runuser", "-u", invoker, "--", "su", target_user, "-c", command],
                input=password + "\n", timeout=timeout, check=False)
    return proc.returncode, proc.stdout
