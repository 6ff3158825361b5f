"""Helpers for the device-grant tests (test_device_mfa.py): sign-ins that run in the background
while the test reads what the person is shown, approves the code as the person on the phone
would (Glewlwyd.approve_device) and then reads the result.

- `Console`: the real /bin/login on a pseudo-terminal, step by step.
- `Driver`: real libpam through pamdriver (the PAM code, PAM_TEXT_INFO messages, prompts;
  `--echo-on-stdin` answers an echo-on prompt only when the test says so).
- `Terminal`: sudo or su on a pseudo-terminal, step by step.
- `Background`: any command (the cloudlogin CLI) whose output is read as it comes.
- `SshDialog`: the real ssh client on a pseudo-terminal, step by step.
- `parse_device_prompt`: the verification URI, the user code, the QR code and the announced wait,
  from what was shown; `qr_decode` reads the QR code back with zbarimg (zbar-tools).

Everything here runs inside run-in-sandbox (see sandbox.py)."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import tempfile
import threading
import time

import pexpect

from sandbox import TOOL_ENV, LoginResult, _clean, assert_in_sandbox
from sshd import SSH, Sshd, ssh_argv

# What the contract says the person sees in the device step.
INTRO = "To finish signing in, open "
WAITING = re.compile(r"Waiting for your approval \(up to (\d+) seconds\)\u2026")
PRESS_ENTER = "Press Enter once you have approved the sign-in: "
CODE = re.compile(r"enter the code (\S+)")
URI = re.compile(r"open (\S+) and enter the code")
QR_CHARS = set("\u2588\u2580\u2584 ")  # █ ▀ ▄ and spaces
NOT_IN_TIME = "MFA was not completed in time."
REFUSED_HERE = "Sign-in refused on this computer:"
OFFLINE = "Identity provider unreachable; trying offline sign-in."
NO_OFFLINE = "Identity provider unreachable, and offline sign-in is not possible: "


# ---- what is shown --------------------------------------------------------------------------

def qr_lines(text: str) -> list[str]:
    """The longest run of consecutive lines made only of █ ▀ ▄ and spaces (at least one block),
    at least 5 lines (a version 1 QR code is 21 modules: 11 lines of half blocks)."""
    best: list[str] = []
    run: list[str] = []
    for line in text.split("\n") + [""]:
        if line.strip() and set(line) <= QR_CHARS:
            run.append(line)
            continue
        if len(run) > len(best):
            best = run
        run = []
    return best if len(best) >= 5 else []


def qr_decode(lines: list[str]) -> list[str]:
    """What a phone reads from a QR code drawn with half blocks (each character is one module
    wide and two high: █ both, ▀ the upper, ▄ the lower). The dark modules may be the blocks
    (a light terminal) or the spaces (a dark one): both pictures are given to zbarimg, with a
    quiet zone around them. Returns the decoded texts (empty: not a readable QR code)."""
    halves = {"\u2588": (1, 1), "\u2580": (1, 0), "\u2584": (0, 1), " ": (0, 0)}
    width = max(len(line) for line in lines)
    rows: list[list[int]] = []
    for line in lines:
        line = line.ljust(width)
        rows.append([halves[c][0] for c in line])
        rows.append([halves[c][1] for c in line])
    found: list[str] = []
    margin, scale = 4, 4
    w, h = (width + 2 * margin) * scale, (len(rows) + 2 * margin) * scale
    for ink in (1, 0):
        pixels = bytearray([255]) * (w * h)
        for y, row in enumerate(rows):
            for x, value in enumerate(row):
                if value == ink:
                    for dy in range(scale):
                        start = ((y + margin) * scale + dy) * w + (x + margin) * scale
                        pixels[start:start + scale] = b"\0" * scale
        with tempfile.NamedTemporaryFile(suffix=".pgm") as image:
            image.write(f"P5 {w} {h} 255\n".encode() + bytes(pixels))
            image.flush()
            proc = subprocess.run(["zbarimg", "-q", "--raw", image.name], capture_output=True, text=True, timeout=30)
        found += [text for text in proc.stdout.splitlines() if text]
    return found


@dataclasses.dataclass
class DevicePrompt:
    text: str            # from "To finish signing in" to the waiting line and the Enter prompt if any
    uri: str             # the verification URI as shown
    code: str            # the user code as shown
    qr: list[str]        # the QR code's lines ([] if none)
    seconds: int | None  # "up to N seconds"

    def qr_texts(self) -> list[str]:
        return qr_decode(self.qr) if self.qr else []


def parse_device_prompt(shown: str) -> DevicePrompt:
    """The device step in SHOWN (the transcript, messages or prompt text), from its first line to
    the waiting line. Fails the test if a part is missing."""
    start = shown.find(INTRO)
    assert start >= 0, f"no {INTRO!r} in what was shown:\n{shown}"
    waiting = WAITING.search(shown, start)
    enter = shown.find(PRESS_ENTER, start)
    assert waiting or enter >= 0, f"no waiting line (or Enter prompt) after the instructions:\n{shown[start:]}"
    end = max(waiting.end() if waiting else -1, enter + len(PRESS_ENTER) if enter >= 0 else -1)
    text = shown[start:end]
    code = CODE.search(text)
    uri = URI.search(text)
    assert code and uri, f"no verification URI or code in:\n{text}"
    return DevicePrompt(text=text, uri=uri.group(1), code=code.group(1).rstrip(",.;:"), qr=qr_lines(text),
                        seconds=int(waiting.group(1)) if waiting else None)


# ---- /bin/login -----------------------------------------------------------------------------

class Console:
    """The real /bin/login on a pseudo-terminal, step by step: the name, the password if one is
    given (PASSWORD None: no password prompt may come), then `device_prompt()` waits for the
    device step, and `finish()` waits for the shell (running COMMAND) or the refusal."""

    PASSWORD = r"[Pp]assword: ?"

    def __init__(self, user: str, password: str | None, timeout: float = 120):
        assert_in_sandbox()
        self.deadline = time.monotonic() + timeout
        self.log: list[str] = []
        self.child = pexpect.spawn("/bin/login", [], env={"TERM": "dumb", **TOOL_ENV}, encoding="utf-8",
                                   codec_errors="replace", dimensions=(60, 400), timeout=timeout, cwd="/")
        self.user = user
        self.device_only = password is None
        self._expect("login: ")
        self.child.sendline(user)
        if password is not None:
            self._expect(self.PASSWORD)
            self.child.sendline(password)

    def _left(self) -> float:
        return max(0.1, self.deadline - time.monotonic())

    def _expect(self, patterns, timeout: float | None = None) -> int:
        try:
            i = self.child.expect(patterns, timeout=min(self._left(), timeout or self._left()))
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            self.log.append(f"{self.child.before}\n<<{type(error).__name__}>>")
            self.close()
            raise AssertionError(f"login: {type(error).__name__} waiting for {patterns!r}; it showed:\n{self.transcript}") from None
        self.log.append(self.child.before + (self.child.after if isinstance(self.child.after, str) else ""))
        return i

    @property
    def transcript(self) -> str:
        return _clean("".join(self.log))

    def device_prompt(self, timeout: float = 30) -> DevicePrompt:
        """Wait for the waiting line of the device step (fails on a password prompt, a refusal or
        the end of login first)."""
        i = self._expect([WAITING, self.PASSWORD, "Login incorrect", pexpect.EOF, re.compile(r"[$#] \Z")], timeout)
        if i != 0:
            self.close()
        assert i == 0, (f"login showed no device step (got {['', 'a password prompt', 'Login incorrect', 'EOF', 'a shell'][i]}):\n"
                        f"{self.transcript}")
        return parse_device_prompt(self.transcript)

    def finish(self, command: str = "id -un", timeout: float | None = None) -> LoginResult:
        """Wait for the shell prompt and run COMMAND, or for "Login incorrect"."""
        shell, output, status = False, [], None
        try:
            patterns = [re.compile(r"[$#] \Z"), "Login incorrect", pexpect.EOF]
            i = self._expect(patterns + ([self.PASSWORD] if self.device_only else []), timeout)
            assert i != 3, f"login asked for a password after a device-only sign-in:\n{self.transcript}"
            if i == 0:
                self.child.sendline(f"printf '%s\\n' __CL\"\"BEGIN__; {command}; printf '\\n%s\\n' \"__CL\"\"END_$?__\"")
                self._expect(r"__CLBEGIN__\r?\n")
                self._expect(r"__CLEND_(\d+)__")
                shell, status = True, int(self.child.match.group(1))
                output = _clean(self.child.before).split("\n")
                output.pop()
                if output and output[-1] == "":
                    output.pop()
                self.child.sendline("exit")
                self._expect(pexpect.EOF)
            elif i == 1:
                self._expect(r"login: ", timeout=10)
        finally:
            self.close()
        return LoginResult(shell, output, status, self.child.exitstatus, self.transcript)

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)
        else:
            self.child.close()


class Terminal:
    """ARGV (sudo, su: run through runuser as the user) on a pseudo-terminal, as a person runs
    it: `answer(prompt, text)` types at a prompt, `device_prompt()` waits for the device step,
    `finish()` waits for the end. (sudo and su write PAM's messages to the terminal; on a pipe
    they may sit in stdio's buffer until the program ends.)"""

    def __init__(self, argv: list[str], timeout: float = 120):
        assert_in_sandbox()
        self.started = time.monotonic()
        self.child = pexpect.spawn(argv[0], argv[1:], env={"TERM": "dumb", **TOOL_ENV}, encoding="utf-8",
                                   codec_errors="replace", dimensions=(60, 400), timeout=timeout, cwd="/")
        self.log: list[str] = []

    def _expect(self, pattern, timeout: float | None = None) -> int:
        try:
            i = self.child.expect(pattern, timeout=timeout or self.child.timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            self.log.append(str(self.child.before))
            self.child.close(force=True)
            raise AssertionError(f"{type(error).__name__} waiting for {pattern!r}; the terminal showed:\n{self.transcript}") from None
        self.log.append(self.child.before + (self.child.after if isinstance(self.child.after, str) else ""))
        return i

    @property
    def transcript(self) -> str:
        return _clean("".join(self.log))

    def answer(self, prompt: str, text: str) -> None:
        self._expect(prompt)
        self.child.sendline(text)

    def device_prompt(self, timeout: float = 30) -> DevicePrompt:
        self._expect(WAITING, timeout)
        return parse_device_prompt(self.transcript)

    def finish(self, timeout: float = 90) -> tuple[int | None, str]:
        """(exit status, everything shown)."""
        self._expect(pexpect.EOF, timeout)
        self.child.close()
        self.elapsed = time.monotonic() - self.started
        return self.child.exitstatus, self.transcript


# ---- processes read as they run --------------------------------------------------------------

class _Reader(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.chunks, self.lock = stream, [], threading.Lock()

    def run(self) -> None:
        while True:
            data = os.read(self.stream.fileno(), 65536)
            if not data:
                return
            with self.lock:
                self.chunks.append(data)

    def text(self) -> str:
        with self.lock:
            return b"".join(self.chunks).decode(errors="replace")


class Background:
    """ARGV running with STDIN_TEXT written to it (stdin kept open for `send`), stdout and stderr
    read as they come (merged unless SEPARATE)."""

    def __init__(self, argv: list[str], stdin_text: str = "", env: dict | None = None, separate: bool = False):
        assert_in_sandbox()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE if separate else subprocess.STDOUT,
                                     env=env or TOOL_ENV, cwd="/")
        self.out = _Reader(self.proc.stdout)
        self.out.start()
        self.err = _Reader(self.proc.stderr) if separate else None
        if self.err:
            self.err.start()
        if stdin_text:
            self.send(stdin_text, newline=False)

    def shown(self) -> str:
        """What the person would see (for a driver: its stderr, where messages and prompts go)."""
        return (self.err or self.out).text()

    def send(self, text: str, newline: bool = True) -> None:
        self.proc.stdin.write((text + ("\n" if newline else "")).encode())
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """EOF on stdin: Ctrl-D for a conversation that reads it."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def wait_for(self, pattern: str | re.Pattern, timeout: float = 30) -> re.Match:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.shown())
            if match:
                return match
            if self.proc.poll() is not None:
                time.sleep(0.1)  # the readers' last chunks
                match = regex.search(self.shown())
                if match:
                    return match
                raise AssertionError(f"{self.proc.args[0]} ended ({self.proc.returncode}) without {regex.pattern!r}:\n"
                                     f"{self.out.text()}{self.err.text() if self.err else ''}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {regex.pattern!r} within {timeout} s:\n{self.out.text()}"
                                     f"{self.err.text() if self.err else ''}")
            time.sleep(0.05)

    def device_prompt(self, timeout: float = 30) -> DevicePrompt:
        """Wait for the device step's waiting line (or, for an sshd-style prompt, the Enter prompt)."""
        self.wait_for(re.compile(rf"{WAITING.pattern}|{re.escape(PRESS_ENTER)}"), timeout)
        return parse_device_prompt(self.shown())

    def wait(self, timeout: float = 60) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.proc.args} still running after {timeout} s:\n{self.out.text()}"
                                 f"{self.err.text() if self.err else ''}") from None
        self.close_stdin()
        self.out.join(5)
        if self.err:
            self.err.join(5)
        self.elapsed = time.monotonic() - self.started
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Driver(Background):
    """pamdriver (built from Tests/Integration/pamdriver.c with --echo-on-stdin) for one
    pam_authenticate of USER in SERVICE from CONFDIR; PASSWORD answers every echo-off prompt
    (pamdriver reads it at start, so device-only sign-ins get one too, and the test checks it was
    never asked for). Echo-on prompts wait for `send()`; `close_stdin()` is Ctrl-D."""

    def __init__(self, driver: pathlib.Path, confdir: pathlib.Path | str, service: str, user: str,
                 password: str = "no password expected", silent: bool = False, syslog: tuple[pathlib.Path, pathlib.Path] | None = None,
                 tty: str | None = None):
        argv = [str(driver), "--confdir", str(confdir), "--service", service, "--user", user, "--echo-on-stdin"]
        if silent:
            argv.append("--silent")
        if tty is not None:
            argv += ["--tty", tty]
        env = dict(TOOL_ENV)
        if syslog:
            shim, log = syslog
            env.update(LD_PRELOAD=str(shim), SYSLOG_CAPTURE=str(log))
        super().__init__(argv, stdin_text=password + "\n", env=env, separate=True)

    def result(self, timeout: float = 120) -> str:
        """The PAM code of pam_authenticate (after the driver ended)."""
        self.wait(timeout)
        results = [line.split()[3] for line in self.out.text().splitlines() if line.startswith("RESULT ")]
        assert results, f"no RESULT from pamdriver:\n{self.out.text()}{self.err.text()}"
        return results[-1]

    @property
    def messages(self) -> str:
        """Messages and prompts as the person would read them: pamdriver's "MSG info: ",
        "MSG error: " and "PROMPT echo_on: " prefixes removed."""
        return re.sub(r"(?m)^(MSG (info|error)|PROMPT echo_(on|off)): ", "", self.err.text())

    def shown(self) -> str:
        return self.messages

    @property
    def asked_password(self) -> bool:
        return "PROMPT echo_off: " in self.err.text()


# ---- ssh ------------------------------------------------------------------------------------

class SshDialog:
    """The real ssh client on a pseudo-terminal: the password prompt, then the device step's one
    prompt (`device_prompt()`); the test then presses Enter (`child.sendline("")`) or Ctrl-D
    (`child.sendcontrol("d")`), and `finish()` reads the rest. One keyboard-interactive attempt
    (NumberOfPasswordPrompts=1): a refusal ends ssh instead of asking for the password again."""

    def __init__(self, server: Sshd, user: str, password: str | None, timeout: float = 120):
        self.child = pexpect.spawn(SSH, ssh_argv(server.port, user, "id -un", attempts=1, known_hosts=server.known_hosts),
                                   env={"TERM": "dumb", "HOME": "/nonexistent", **TOOL_ENV}, encoding="utf-8",
                                   codec_errors="replace", dimensions=(60, 400), timeout=timeout, cwd="/")
        self.log: list[str] = []
        if password is not None:
            self._expect(r"[Pp]assword: ?")
            self.child.sendline(password)

    def _expect(self, pattern) -> None:
        try:
            self.child.expect(pattern)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            self.log.append(str(self.child.before))
            self.child.close(force=True)
            raise AssertionError(f"ssh: {type(error).__name__} waiting for {pattern!r}:\n{self.transcript}") from None
        self.log.append(self.child.before + (self.child.after if isinstance(self.child.after, str) else ""))

    @property
    def transcript(self) -> str:
        return "".join(self.log).replace("\r\n", "\n").replace("\r", "")

    def device_prompt(self) -> DevicePrompt:
        self._expect(re.escape(PRESS_ENTER))
        return parse_device_prompt(self.transcript)

    def finish(self) -> tuple[int | None, str]:
        self._expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus, self.transcript
