"""Okta MFA over SSH, for real: Debian's OpenSSH server (support/sshd.py: `sshd -D -e` on
127.0.0.1, UsePAM, keyboard-interactive only) with the shipped pam.d/sshd and the built module,
the real `ssh` client on a pseudo-terminal (support/sshd.py's SshDialog), against the
Okta-shaped server (support/okta.py, Okta's documented JSON) — inside run-in-sandbox.

sshd holds PAM messages until it next talks to the client (facts.md, "sshd: what the user sees
of PAM's messages"), so over SSH the module puts what the person must see while it waits into a
prompt answered with Enter: the push notice, and the number to tap when Okta sends one (only in
a poll answer, so the module waits for the first poll before it asks). These tests read what
the ssh client shows, act at the Okta-shaped server as the person would on the phone
(`OktaServer.set_push`), then answer. sshd looks the user up before PAM, so every user here
signs in at the real console (/bin/login) once first, with the password alone, as a person
would before MFA was turned on for them.

Each assertion's message carries what the ssh user saw and what sshd logged."""
from __future__ import annotations

import pathlib
import re
import signal
import time

import pytest

from okta import OktaServer
from sandbox import pam_service, user_exists
from sshd import Sshd, SshDialog, SshResult
from test_okta import (SUFFIX, cancelled, default_config, login, okta, pam, paths, shipped,  # noqa: F401 (fixtures)
                       write_config)

PRESS_ENTER = "Press Enter once you have approved it on your phone: "
NOTICE = "Approve the sign-in on Okta Verify."
POLL_SECONDS = 2  # OktaPush.pollIntervalMilliseconds


@pytest.fixture(scope="module")
def sshd(okta: OktaServer, tmp_path_factory):
    if not pathlib.Path("/usr/sbin/sshd").exists():
        pytest.fail("/usr/sbin/sshd is missing: scripts/install-deps installs openssh-server")
    with pam_service("sshd", shipped("sshd")), Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def evidence(seen: SshResult | SshDialog | str, server: Sshd) -> str:
    """For assertion messages: what the ssh user saw, and the end of sshd's log."""
    text = seen if isinstance(seen, str) else seen.transcript
    log = "\n".join(server.log().splitlines()[-25:])
    return f"\n--- the ssh client showed:\n{text}\n--- sshd's log (last lines):\n{log}"


def signed_in_at_the_console(okta: OktaServer, name: str, password: str, **mfa) -> str:
    """NAME at Okta, signed in once at the real /bin/login with the password alone (which
    creates the local account sshd needs), then given the factors in MFA (add_user's
    arguments) under the same Okta user id. Returns the local name."""
    uid = okta.add_user(name + SUFFIX, password, first_name=name.title())
    assert not user_exists(name)
    shell, transcript = login(name, password)
    assert shell, transcript
    assert user_exists(name)
    okta.add_user(name + SUFFIX, password, user_id=uid, first_name=name.title(), **mfa)
    time.sleep(1.1)  # Okta allows 4 requests per second per user: a 429 would mean offline sign-in
    return name


def prompt_re(user: str, text: str) -> str:
    """A regex for the keyboard-interactive prompt TEXT as ssh shows it ("(USER@HOST) TEXT"),
    at the end of what has come so far; a newline in TEXT may reach the terminal as \\r\\n."""
    return re.escape(f"({user}@127.0.0.1) ") + re.escape(text).replace("\\\n", "\r?\n") + r"\Z"


def number_prompt_re(user: str) -> str:
    return (re.escape(f"({user}@127.0.0.1) Approve the sign-in on Okta Verify: tap ") + r"(\d+)"
            + re.escape(" on your phone.") + "\r?\n" + re.escape(PRESS_ENTER) + r"\Z")


def denied(user: str) -> str:
    return f"{user}@127.0.0.1: Permission denied (keyboard-interactive).\n"


def polls(okta: OktaServer, mark: int) -> list[dict]:
    """The push polls since MARK (opaque links: …/factors/{id}/transactions/{tx}/verify)."""
    return [entry for entry in okta.requests_since(mark) if "/transactions/" in entry["path"]]


def cancelled_at_okta(okta: OktaServer, mark: int) -> bool:
    """The transaction was cancelled, and Okta took it (200, not a 429)."""
    return any(entry["path"] == "/api/v1/authn/cancel" and entry["status"] == 200 for entry in okta.requests_since(mark))


def approved_at_okta(okta: OktaServer, mark: int) -> bool:
    return any((entry.get("response") or {}).get("status") == "SUCCESS" for entry in okta.requests_since(mark))


# --- 1. password + TOTP -------------------------------------------------------------------------

def test_totp_code_prompt_reaches_the_ssh_client_and_the_right_code_signs_in(okta: OktaServer, sshd: Sshd):
    user = signed_in_at_the_console(okta, "sstom", "Tom ssh pw 1", factors=["totp"], totp_code="246810")
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Tom ssh pw 1")
        ssh.expect(prompt_re(user, "Okta Verify code: "))
        ssh.answer("246810")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    # The code is typed with echo on (it is not a secret past its 30 s), the command runs.
    assert result.transcript == (f"({user}@127.0.0.1) Password: \n"
                                 f"({user}@127.0.0.1) Okta Verify code: 246810\n{user}\n"), evidence(result, sshd)
    verifies = [entry for entry in okta.requests_since(mark) if "/verify" in entry["path"]]
    assert [entry["body"].get("passCode") for entry in verifies] == ["246810"]
    assert f"Accepted keyboard-interactive/pam for {user} from 127.0.0.1" in sshd.log()


def test_totp_wrong_three_times_is_denied_and_the_transaction_cancelled(okta: OktaServer, sshd: Sshd):
    user = signed_in_at_the_console(okta, "sstara", "Tara ssh pw 1", factors=["totp"], totp_code="135791")
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Tara ssh pw 1")
        ssh.expect(prompt_re(user, "Okta Verify code: "))
        time.sleep(0.4)  # a person types: keeps the 5 requests of this dialogue under Okta's 4/s
        ssh.answer("000001")
        # The module's "try again" is held by sshd until the next prompt, and comes with it.
        for wrong in ("000002", "000003"):
            ssh.expect(prompt_re(user, "That code is not right; try again.\nOkta Verify code: "))
            time.sleep(0.4)
            ssh.answer(wrong)
        result = ssh.finish()
    assert result.status == 255, evidence(result, sshd)
    assert result.transcript.endswith(f"Too many wrong codes.\nMFA verification failed.\n\n{denied(user)}"), \
        evidence(result, sshd)
    assert f"\n{user}\n" not in result.transcript  # the command never ran
    verifies = [entry for entry in okta.requests_since(mark) if "/verify" in entry["path"]]
    assert [entry["body"].get("passCode") for entry in verifies] == ["000001", "000002", "000003"]
    assert cancelled_at_okta(okta, mark)
    assert f"Failed keyboard-interactive/pam for {user} from 127.0.0.1" in sshd.log()


# --- 2. push with number challenge --------------------------------------------------------------

def wait_for_number(ssh: SshDialog, user: str, password: str) -> tuple[int, float]:
    """Password, then the number prompt: (the number shown, seconds from the password to it)."""
    ssh.expect(prompt_re(user, "Password: "))
    ssh.answer(password)
    sent = time.monotonic()
    match = ssh.expect(number_prompt_re(user))
    return int(match.group(1)), time.monotonic() - sent


def test_push_number_is_shown_before_approval_then_approved_signs_in(okta: OktaServer, sshd: Sshd):
    user = signed_in_at_the_console(okta, "ssnina", "Nina ssh pw 1", factors=["push"], push="never", push_number=58)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        number, shown_after = wait_for_number(ssh, user, "Nina ssh pw 1")
        # What the person reads on the terminal, while the push still waits at Okta.
        assert number == 58, evidence(ssh, sshd)
        assert not approved_at_okta(okta, mark)
        # The number comes only in a poll answer: the module asked after the first poll, and
        # did not poll again while the prompt waited.
        assert len(polls(okta, mark)) == 1, [entry["path"] for entry in okta.requests_since(mark)]
        assert POLL_SECONDS - 0.5 <= shown_after <= POLL_SECONDS + 2, shown_after
        time.sleep(1)
        assert len(polls(okta, mark)) == 1, "the module polled while its prompt waited for Enter"
        okta.set_push(user + SUFFIX, "approve")  # the person taps 58 on the phone
        entered = time.monotonic()
        ssh.answer("")
        result = ssh.finish()
        approved_after = time.monotonic() - entered
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript == (f"({user}@127.0.0.1) Password: \n"
                                 f"({user}@127.0.0.1) Approve the sign-in on Okta Verify: tap 58 on your phone.\n"
                                 f"{PRESS_ENTER}\n{user}\n"), evidence(result, sshd)
    assert approved_at_okta(okta, mark) and not cancelled(okta, mark)
    assert f"Accepted keyboard-interactive/pam for {user} from 127.0.0.1" in sshd.log()
    print(f"number prompt {shown_after:.2f} s after the password; signed in {approved_after:.2f} s after Enter")


def test_push_number_shown_then_rejected_on_the_phone_is_denied(okta: OktaServer, sshd: Sshd):
    user = signed_in_at_the_console(okta, "ssrolf", "Rolf ssh pw 1", factors=["push"], push="never", push_number=26)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        number, _ = wait_for_number(ssh, user, "Rolf ssh pw 1")
        assert number == 26, evidence(ssh, sshd)
        okta.set_push(user + SUFFIX, "reject")  # "No, it's not me" on the phone
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 255, evidence(result, sshd)
    assert result.transcript.endswith(
        f"{PRESS_ENTER}\nThe sign-in was rejected on Okta Verify.\nMFA verification failed.\n\n{denied(user)}"), \
        evidence(result, sshd)
    assert f"\n{user}\n" not in result.transcript
    assert not approved_at_okta(okta, mark)
    assert cancelled_at_okta(okta, mark)


# --- 3. push without number challenge -----------------------------------------------------------

def test_push_notice_prompt_then_approved_signs_in(okta: OktaServer, sshd: Sshd):
    user = signed_in_at_the_console(okta, "sspaul", "Paul ssh pw 1", factors=["push"], push="never")
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Paul ssh pw 1")
        sent = time.monotonic()
        ssh.expect(prompt_re(user, f"{NOTICE}\n{PRESS_ENTER}"))
        shown_after = time.monotonic() - sent
        assert not approved_at_okta(okta, mark)
        assert len(polls(okta, mark)) == 1  # also without a number, the first poll's answer comes first
        okta.set_push(user + SUFFIX, "approve")
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript == (f"({user}@127.0.0.1) Password: \n({user}@127.0.0.1) {NOTICE}\n{PRESS_ENTER}\n{user}\n"), \
        evidence(result, sshd)
    assert POLL_SECONDS - 0.5 <= shown_after <= POLL_SECONDS + 2, shown_after
    print(f"push notice prompt {shown_after:.2f} s after the password")


def test_enter_before_approving_keeps_polling_until_the_approval(okta: OktaServer, sshd: Sshd):
    """Enter is not checked against Okta: pressed before the phone is touched, the module polls
    on (no second prompt) and the approval, seconds later, signs in."""
    user = signed_in_at_the_console(okta, "sspeta", "Peta ssh pw 1", factors=["push"], push="never", push_number=73)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        number, _ = wait_for_number(ssh, user, "Peta ssh pw 1")
        assert number == 73
        ssh.answer("")
        time.sleep(2 * POLL_SECONDS + 0.5)
        assert len(polls(okta, mark)) >= 2, "no poll after Enter"
        okta.set_push(user + SUFFIX, "approve")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript.count(PRESS_ENTER) == 1, evidence(result, sshd)
    assert result.transcript.endswith(f"{PRESS_ENTER}\n{user}\n"), evidence(result, sshd)


def test_push_approved_before_the_first_poll_signs_in_without_a_prompt(okta: OktaServer, sshd: Sshd):
    """Approved on the phone within the first poll interval: nothing left to wait for, so no
    prompt after the password."""
    user = signed_in_at_the_console(okta, "ssquin", "Quin ssh pw 1", factors=["push"], push="approve", push_wait_polls=0)
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Quin ssh pw 1")
        result = ssh.finish()
    assert result.status == 0, evidence(result, sshd)
    assert result.transcript == f"({user}@127.0.0.1) Password: \n{user}\n", evidence(result, sshd)


def test_push_never_approved_ends_at_push_timeout(okta: OktaServer, sshd: Sshd):
    """Replaces test_okta.py's test_push_notice_over_ssh_arrives_only_after_the_wait (the
    previous release: the notice reached the SSH user only with the outcome). Now the notice is
    a prompt shown after the first poll; Enter, then the module polls until push_timeout."""
    write_config(okta, push_timeout="6")
    user = signed_in_at_the_console(okta, "sssasha", "Sasha ssh pw 1", factors=["push"], push="never")
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Sasha ssh pw 1")
        sent = time.monotonic()
        ssh.expect(prompt_re(user, f"{NOTICE}\n{PRESS_ENTER}"))
        notice = time.monotonic() - sent
        ssh.answer("")
        ssh.expect(re.escape("The push was not approved within 6 seconds."))
        outcome = time.monotonic() - sent
        result = ssh.finish()
    assert result.status == 255, evidence(result, sshd)
    assert result.transcript.endswith(
        f"{PRESS_ENTER}\nThe push was not approved within 6 seconds.\nMFA was not completed in time.\n\n{denied(user)}"), \
        evidence(result, sshd)
    assert notice < 3.5, f"the push notice came {notice:.1f} s after the password"
    assert outcome < 6 + 3, f"the outcome came {outcome:.1f} s after the password"
    assert cancelled_at_okta(okta, mark)
    print(f"push notice prompt after {notice:.2f} s, outcome after {outcome:.2f} s")


def test_approved_in_time_but_enter_pressed_after_push_timeout_signs_in(okta: OktaServer, sshd: Sshd):
    """The prompt says "Press Enter once you have approved it": a person who approves at once
    and comes back to the terminal later than push_timeout has still approved in time: the
    Enter makes one more poll, which says so."""
    write_config(okta, push_timeout="6")
    user = signed_in_at_the_console(okta, "sslena", "Lena ssh pw 1", factors=["push"], push="never", push_number=33)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        number, shown_after = wait_for_number(ssh, user, "Lena ssh pw 1")
        assert number == 33
        okta.set_push(user + SUFFIX, "approve")  # at once, well within push_timeout
        time.sleep(6 - shown_after + 1)        # Enter 7 s after the password
        ssh.answer("")
        result = ssh.finish()
    assert result.status == 0 and result.transcript.endswith(f"{PRESS_ENTER}\n{user}\n"), \
        evidence(result, sshd) + f"\n--- requests at Okta: {paths(okta, mark)}"


def test_push_rejected_before_the_first_poll_is_not_offered_for_approval(okta: OktaServer, sshd: Sshd):
    """Rejected on the phone before the first poll: over SSH the module has the poll's answer
    before it prompts, so there is nothing to approve and nothing to wait for: no prompt, the
    rejection at once."""
    user = signed_in_at_the_console(okta, "ssrita", "Rita ssh pw 1", factors=["push"], push="reject", push_wait_polls=0)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        ssh.expect(prompt_re(user, "Password: "))
        ssh.answer("Rita ssh pw 1")
        if ssh.expect(re.escape(PRESS_ENTER), timeout=POLL_SECONDS + 5, or_end=True):
            ssh.answer("")  # the prompt came: answer it, so the transcript shows what follows
        result = ssh.finish()
    assert cancelled_at_okta(okta, mark)
    assert result.status == 255 and result.transcript == (
        f"({user}@127.0.0.1) Password: \nThe sign-in was rejected on Okta Verify.\nMFA verification failed.\n\n{denied(user)}"), \
        evidence(result, sshd)


# --- abandoning at the prompt -------------------------------------------------------------------

def test_a_conversation_that_fails_at_the_push_prompt_abandons_at_once(okta: OktaServer, sshd: Sshd):
    """Real libpam with PAM service `sshd` (the module knows sshd by that name): the push notice
    and its number are a prompt, not a message; a conversation that cannot answer it ends the
    sign-in at once with PAM_AUTH_ERR and cancels the Okta transaction."""
    user = signed_in_at_the_console(okta, "sscora", "Cora ssh pw 1", factors=["push"], push="never", push_number=41)
    mark = okta.mark()
    started = time.monotonic()
    code, messages = pam(user, "Cora ssh pw 1", code=None, service="sshd")
    elapsed = time.monotonic() - started
    assert code == "PAM_AUTH_ERR", messages
    assert f"PROMPT echo_on: Approve the sign-in on Okta Verify: tap 41 on your phone.\n{PRESS_ENTER}" in messages, messages
    assert "MSG info: Approve the sign-in" not in messages, messages
    assert cancelled_at_okta(okta, mark)
    assert len(polls(okta, mark)) == 1
    assert elapsed < POLL_SECONDS + 3, elapsed


def test_ctrl_d_at_the_push_prompt(okta: OktaServer, sshd: Sshd):
    """Ctrl-D on the ssh client's terminal at the push prompt. The real `ssh` reads a
    keyboard-interactive answer with read_passphrase() without RP_ALLOW_EOF: end of input is an
    empty answer, the same as Enter, so the conversation does not fail and the module goes on
    polling (here until push_timeout)."""
    write_config(okta, push_timeout="6")
    user = signed_in_at_the_console(okta, "ssdora", "Dora ssh pw 1", factors=["push"], push="never", push_number=19)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        wait_for_number(ssh, user, "Dora ssh pw 1")
        ssh.send_control("d")
        result = ssh.finish()
    assert result.status == 255, evidence(result, sshd)
    assert "The push was not approved within 6 seconds." in result.transcript, evidence(result, sshd)
    assert result.transcript.endswith(denied(user)), evidence(result, sshd)
    assert len(polls(okta, mark)) >= 2  # polled on after the empty answer
    assert cancelled_at_okta(okta, mark)


def test_ctrl_c_at_the_push_prompt_ends_ssh_and_the_sign_in(okta: OktaServer, sshd: Sshd):
    """Ctrl-C at the push prompt ends the ssh client (it dies of the signal). sshd then ends the
    connection's processes, the module's with them, while it waits for the answer: it polls no
    more, and it cannot cancel the transaction at Okta, which is left to expire there."""
    write_config(okta, push_timeout="10")
    user = signed_in_at_the_console(okta, "sscarl", "Carl ssh pw 1", factors=["push"], push="never", push_number=64)
    mark = okta.mark()
    with sshd.dialog(user) as ssh:
        wait_for_number(ssh, user, "Carl ssh pw 1")
        interrupted = time.monotonic()
        ssh.send_control("c")
        result = ssh.finish(timeout=10)
        ended = time.monotonic() - interrupted
    # ssh restores the terminal and dies of the SIGINT (no exit status).
    assert not result.timed_out and result.status is None and ssh.child.signalstatus == signal.SIGINT, evidence(result, sshd)
    assert ended < 3, ended
    assert f"\n{user}\n" not in result.transcript
    deadline = time.monotonic() + 5
    while sshd.processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sshd.processes() == [], "the connection's processes outlived the client" + evidence(result, sshd)
    time.sleep(2 * POLL_SECONDS + 1)
    print(f"after Ctrl-C: ssh ended in {ended:.2f} s; requests at Okta: {paths(okta, mark)}")
    assert len(polls(okta, mark)) == 1, f"the module polled Okta after the client left: {paths(okta, mark)}"
    assert not cancelled(okta, mark)  # measured: the process is ended before it can cancel

