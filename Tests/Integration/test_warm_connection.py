"""The connection opened while the person types (issue 12; docs/design.md, "Performance
targets"), through real libpam (pamdriver) against the hostile IdP, which counts TCP
connections and logs every request.

pamdriver's --answer-delay-ms answers the password prompt as a person would, that many ms after
it was asked. Timing is not asserted here (`make bench` measures it): these tests pin what the
warm-up does and must never do — which requests and connections the IdP sees, that an IdP
closing the idle connection or going down during the prompt changes nothing for the person but
the time, and that a local user never causes a connection.
"""
from __future__ import annotations

import threading
import time

from cltest import Site
from hostile_idp import HostileIdP
from sandbox import account_files_changed, create_local_user, snapshot_account_files, user_exists
from test_faults import BOUND, MANAGED, NEVER_ONLINE, PASSWORD, UNAVAILABLE, fsite, hostile  # noqa: F401 (fixtures)

DISCOVERY = "GET /.well-known/openid-configuration 200"
GRANT = "POST /token 200"


def typing(site: Site, user: str, password: str, delay_ms: int):
    """A sign-in whose password is typed `delay_ms` after the prompt; (run, ms from the answer
    to the result as the driver measured it)."""
    run = site.pam(site.module_only(), user, password, "--answer-delay-ms", str(delay_ms), timeout=60)
    timing = [float(line.split()[2]) for line in run.stdout.splitlines() if line.startswith("TIMING auth ")]
    assert "RESULT auth" in run.stdout, f"the driver did not finish (crash?):\n{run.stdout}\n{run.stderr}"
    return run, (timing[0] if timing else None)


def test_the_grant_goes_on_the_connection_opened_while_typing(fsite: Site, hostile: HostileIdP):
    hostile.keep_alive = 10
    try:
        connections, mark = hostile.connections, hostile.mark()
        run, _ = typing(fsite, MANAGED, PASSWORD[MANAGED], 300)
        assert run.code == "PAM_SUCCESS", run
        # One connection; on it the one cheap request of the warm-up (the public discovery
        # document), then the grant.
        assert hostile.requests_since(mark) == [DISCOVERY, GRANT]
        assert hostile.connections - connections == 1
    finally:
        hostile.reset()


def test_a_password_given_at_once_sends_no_warm_up_request(fsite: Site, hostile: HostileIdP):
    # sudo -S, a script: the answer comes within the warm-up's hold, so nothing is sent early.
    hostile.keep_alive = 10
    try:
        connections, mark = hostile.connections, hostile.mark()
        run = fsite.pam(fsite.module_only(), MANAGED, PASSWORD[MANAGED])
        assert run.code == "PAM_SUCCESS", run
        assert hostile.requests_since(mark) == [GRANT]
        assert hostile.connections - connections == 1
    finally:
        hostile.reset()


def test_reconnects_when_the_idp_closes_the_idle_connection_during_the_prompt(fsite: Site, hostile: HostileIdP):
    # The IdP keeps an idle connection 0.4 s; the person answers after 1 s. The warm-up opens a
    # new connection each time the IdP closes one, and the grant goes on the last of them.
    hostile.keep_alive = 0.4
    try:
        connections, mark = hostile.connections, hostile.mark()
        run, _ = typing(fsite, MANAGED, PASSWORD[MANAGED], 1000)
        assert run.code == "PAM_SUCCESS", run
        seen = hostile.requests_since(mark)
        assert seen[-1] == GRANT and set(seen[:-1]) == {DISCOVERY}, seen
        assert len(seen) >= 3, f"no reconnect happened: {seen}"
        assert hostile.connections - connections == len(seen) - 1, "the grant did not go on the warm connection"
    finally:
        hostile.reset()


def test_an_idp_that_closes_after_every_answer_costs_one_more_connection(fsite: Site, hostile: HostileIdP):
    # "Connection: close" (HTTP/1.0 servers, LemonLDAP::NG under plackup): nothing stays warm,
    # and the grant opens its own connection as it would without a warm-up.
    connections, mark = hostile.connections, hostile.mark()
    run, _ = typing(fsite, MANAGED, PASSWORD[MANAGED], 300)
    assert run.code == "PAM_SUCCESS", run
    assert hostile.requests_since(mark) == [DISCOVERY, GRANT]
    assert hostile.connections - connections == 2


def test_idp_down_during_the_prompt_gives_the_usual_offline_rule(fsite: Site, hostile: HostileIdP):
    for user, code in ((MANAGED, "PAM_AUTHINFO_UNAVAIL"), (NEVER_ONLINE, "PAM_AUTH_ERR")):
        hostile.keep_alive = 10
        # The IdP goes down 250 ms into a 700 ms prompt: after the warm-up connected.
        timer = threading.Timer(0.25, lambda: setattr(hostile, "down", True))
        before = snapshot_account_files()
        mark = hostile.mark()
        try:
            timer.start()
            run, after_answer = typing(fsite, user, PASSWORD[user], 700)
        finally:
            timer.cancel()
            hostile.reset()
        assert run.code == code, (user, run)
        if user == MANAGED:
            assert UNAVAILABLE in " ".join(run.messages), run.messages
        assert hostile.requests_since(mark) == [DISCOVERY], "only the warm-up's request reached the IdP"
        assert after_answer is not None and after_answer < BOUND * 1000
        assert account_files_changed(before) == []


def test_a_local_user_never_causes_a_connection(fsite: Site, hostile: HostileIdP):
    if not user_exists("warmlocal"):
        create_local_user("warmlocal", "Warm local pw 1")
    hostile.keep_alive = 10
    try:
        connections, mark = hostile.connections, hostile.mark()
        run, _ = typing(fsite, "warmlocal", "Warm local pw 1", 300)
        # The module ignores her (libpam turns a stack that only ignored into PAM_PERM_DENIED).
        assert any("PAM_IGNORE; local" in line for line in run.syslog), run
        time.sleep(0.2)
        assert hostile.connections == connections
        assert hostile.requests_since(mark) == []
    finally:
        hostile.reset()
