"""Proves the harness of the device-grant tests (device.py) without CloudLogin: a small PAM
module (support/pam_device_probe.c) shows a device step shaped as the contract says — a sentence
with the URI and the code, a QR code drawn by `qrencode`, the waiting line; under sshd the same as
one echo-on prompt ending in the Enter request — and the console (/bin/login), pamdriver
(--echo-on-stdin) and the real ssh client must read it back, the QR code included (zbarimg).

It also pins what OpenSSH 9.2's client does with such a prompt: it shows the lines and the
block characters as they are in a UTF-8 locale, and Ctrl-D answers it with an empty line (the
module cannot tell it from Enter)."""
from __future__ import annotations

import pathlib
import subprocess
import time

import pytest

from cltest import ROOT
from device import (PRESS_ENTER, Console, Driver, SshDialog, parse_device_prompt, qr_decode, qr_lines)
from sandbox import create_local_user, pam_service, user_exists
from sshd import Sshd

URI = "https://127.0.0.1:9/api/oidc/device"
CODE = "ABCD-EFGH"
USER = "dvprobe"


def qrencode(text: str, inverted: bool = False) -> list[str]:
    proc = subprocess.run(["qrencode", "-t", "UTF8i" if inverted else "UTF8", "-m", "2", text],
                          capture_output=True, text=True, check=True)
    return proc.stdout.rstrip("\n").split("\n")


def device_text(prompt: bool) -> str:
    text = (f"To finish signing in, open {URI} and enter the code {CODE}, or scan this QR code with your phone:\n"
            + "\n".join(qrencode(f"{URI}?code={CODE}")) + "\nWaiting for your approval (up to 60 seconds)\u2026")
    return text + "\n" + PRESS_ENTER if prompt else text


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    work = tmp_path_factory.mktemp("device-harness")
    module = work / "pam_device_probe.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(module), str(ROOT / "Tests/Integration/support/pam_device_probe.c"),
                    "-lpam"], check=True)
    driver = work / "pamdriver"
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", str(driver), str(ROOT / "Tests/Integration/pamdriver.c"), "-lpam"],
                   check=True)
    (work / "info.txt").write_text(device_text(prompt=False))
    (work / "prompt.txt").write_text(device_text(prompt=True))
    confdir = work / "pam.d"
    confdir.mkdir()
    (confdir / "other").write_text("auth required pam_deny.so\naccount required pam_deny.so\n")
    rest = "account required pam_permit.so\nsession required pam_permit.so\n"
    (confdir / "probe-info").write_text(f"auth required {module} {work}/info.txt info\n{rest}")
    (confdir / "probe-prompt").write_text(f"auth required {module} {work}/prompt.txt prompt\n{rest}")
    if not user_exists(USER):
        create_local_user(USER, None)
    return {"module": module, "driver": driver, "confdir": confdir, "work": work, "rest": rest}


def check(prompt) -> None:
    assert (prompt.uri, prompt.code, prompt.seconds) == (URI, CODE, 60), prompt.text
    assert prompt.qr == qrencode(f"{URI}?code={CODE}"), prompt.text
    assert prompt.qr_texts() == [f"{URI}?code={CODE}"]


def test_qr_decode_reads_both_polarities_and_only_qr_codes():
    for inverted in (False, True):
        lines = qrencode("https://example.test/device?code=WXYZ-1234", inverted)
        assert qr_decode(lines) == ["https://example.test/device?code=WXYZ-1234"], inverted
        # Lines of spaces alone (a quiet zone drawn in the background colour) are not taken.
        assert qr_lines("before:\n" + "\n".join(lines) + "\nafter\n") == [line for line in lines if line.strip()]
    assert qr_decode(["\u2588 \u2580 \u2584 " * 6] * 12) == []
    assert qr_lines("no code here\n\u2588\u2588\n") == []


def test_driver_reads_an_info_message(probe):
    run = Driver(probe["driver"], probe["confdir"], "probe-info", USER)
    check(run.device_prompt())
    assert run.result() == "PAM_SUCCESS" and not run.asked_password


def test_driver_answers_an_echo_on_prompt_only_when_told(probe):
    run = Driver(probe["driver"], probe["confdir"], "probe-prompt", USER)
    check(run.device_prompt())
    time.sleep(1)
    assert run.proc.poll() is None, "the driver answered the prompt by itself"
    run.send("")
    assert run.result() == "PAM_SUCCESS"
    run = Driver(probe["driver"], probe["confdir"], "probe-prompt", USER)
    run.device_prompt()
    run.close_stdin()  # Ctrl-D: the conversation fails
    assert run.result() == "PAM_AUTH_ERR"


def test_console_reads_the_device_step_at_a_real_login(probe):
    with pam_service("login", f"auth required {probe['module']} {probe['work']}/info.txt info\n{probe['rest']}"):
        console = Console(USER, password=None)
        check(console.device_prompt())
        result = console.finish()
    assert result.shell_started and result.output == [USER], result.transcript


def test_the_ssh_client_shows_the_prompt_and_ctrl_d_is_an_empty_answer(probe, tmp_path: pathlib.Path):
    with pam_service("sshd", f"auth required {probe['module']} {probe['work']}/prompt.txt prompt\n{probe['rest']}"), \
            Sshd(tmp_path / "sshd") as server:
        ssh = SshDialog(server, USER, password=None)
        prompt = ssh.device_prompt()
        check(prompt)
        assert parse_device_prompt(ssh.transcript).text.endswith(PRESS_ENTER)
        ssh.child.sendline("")
        status, transcript = ssh.finish()
        assert status == 0 and transcript.rstrip().endswith(USER), transcript
        # Ctrl-D at ssh's prompt: the client sends an empty answer, as for Enter.
        ssh = SshDialog(server, USER, password=None)
        ssh.device_prompt()
        ssh.child.sendcontrol("d")
        status, transcript = ssh.finish()
        assert status == 0 and transcript.rstrip().endswith(USER), transcript
