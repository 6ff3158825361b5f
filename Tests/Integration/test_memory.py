"""Memory safety and secrets, with the release pam_cloudlogin.so in real libpam (pamdriver).

1. valgrind (memcheck) runs the driver through the main flows — success, wrong password, IdP
   down — for a few cycles and for more cycles: no invalid read or write, no use of
   uninitialised memory in a decision, and no memory lost per cycle (the leak totals of the long
   run equal those of the short run).
2. The password is searched for in the whole writable memory of a driver that stays alive after
   its logins (pamdriver --hold). What the search proves: libpam wipes PAM_AUTHTOK and the
   conversation's answer at pam_end, and the driver wipes and frees its own copy before it
   holds, so any copy still found after several cycles was made by pam_cloudlogin.so or a
   library working for it (libcurl, OpenSSL, the Swift runtime) and not wiped. The control run
   (--hold-unwiped: the driver keeps its copy) shows the search does find a live copy.
"""
from __future__ import annotations

import pathlib
import re
import shutil
import socket
import subprocess

import pytest

from cltest import DRIVER, Site
from llng import LemonLDAP

MEMUSER = "memtest"
# Letters and digits only, so the form-encoded copy in a request body is the same bytes.
MEMPASSWORD = "Mq7vXw9kPmT4rLs2Zb8nQ"
WRONG = "Wr0ngPassWd5kYt3Hj8mZ"


@pytest.fixture(scope="module")
def memsite(tmp_path_factory, syslog_shim, idp: LemonLDAP) -> Site:
    idp.add_user(MEMUSER, MEMPASSWORD, name="Mem Test", email="memtest@example.com", groups=[])
    site = Site(tmp_path_factory.mktemp("memory"), syslog_shim, idp)
    site.write_config()
    assert site.pam(site.module_only(), MEMUSER, MEMPASSWORD).code == "PAM_SUCCESS"  # managed, cache warm
    return site


# ---- 1. valgrind ------------------------------------------------------------------------------

def valgrind(site: Site, service: str, user: str, password: str, cycles: int) -> tuple[str, str]:
    proc = subprocess.run(
        ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,indirect",
         "--errors-for-leak-kinds=none", "--track-origins=no", "--num-callers=30",
         f"--suppressions={pathlib.Path(__file__).resolve().parent / 'valgrind.supp'}",
         str(DRIVER), "--confdir", str(site.confdir), "--service", service, "--user", user, "--cycles", str(cycles)],
        input=(password + "\n").encode(), capture_output=True, timeout=600)
    return proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def lost(report: str, kind: str) -> int:
    match = re.search(rf"{kind} lost: ([\d,]+) bytes", report)
    return int(match.group(1).replace(",", "")) if match else 0


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


FLOWS = {
    "success": (MEMPASSWORD, "PAM_SUCCESS", {}),
    "wrong_password": (WRONG, "PAM_AUTH_ERR", {}),
    "idp_down": (MEMPASSWORD, "PAM_AUTHINFO_UNAVAIL", {"token_endpoint": "CLOSED"}),
}


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (scripts/install-deps installs it)")
@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_no_invalid_access_and_no_growth_per_cycle_under_valgrind(flow: str, memsite: Site):
    password, expected, overrides = FLOWS[flow]
    overrides = {k: (f"https://127.0.0.1:{closed_port()}/token" if v == "CLOSED" else v) for k, v in overrides.items()}
    memsite.write_config(**overrides)
    try:
        service = memsite.module_only("")
        short_out, short = valgrind(memsite, service, MEMUSER, password, 2)
        long_out, long = valgrind(memsite, service, MEMUSER, password, 7)
    finally:
        memsite.write_config()
    for out, report, cycles in ((short_out, short, 2), (long_out, long, 7)):
        codes = [line.split()[3] for line in out.splitlines() if line.startswith("RESULT ")]
        assert codes == [expected] * cycles, out + report[-3000:]
        summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
        assert summary and summary.group(1) == "0", report[-6000:]
    for kind in ("definitely", "indirectly"):
        assert lost(long, kind) == lost(short, kind), \
            f"{kind} lost grew from {lost(short, kind)} bytes (2 cycles) to {lost(long, kind)} bytes (7 cycles):\n{long[-6000:]}"


# ---- 2. the password in memory --------------------------------------------------------------

def writable_memory(pid: int) -> list[tuple[str, bytes]]:
    """(mapping name, content) of every readable and writable mapping: heap, stacks, anonymous
    memory, the data segments of the program and its libraries."""
    regions = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            perms, name = fields[1], (fields[5].strip() if len(fields) > 5 else "[anonymous]")
            if not perms.startswith("rw") or name in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(start)
                regions.append((name, mem.read(end - start)))
            except OSError:
                continue
    return regions


def copies_left(site: Site, user: str, password: str, hold: str, cycles: int = 3) -> tuple[list[str], list[str]]:
    """Runs the driver for `cycles` logins with --hold/--hold-unwiped, then searches its memory.
    Returns (PAM results, the mappings in which the password was found, one entry per copy)."""
    proc = subprocess.Popen([str(DRIVER), "--confdir", str(site.confdir), "--service", site.module_only(""), "--user", user,
                             "--cycles", str(cycles), hold],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        proc.stdin.write((password + "\n").encode())
        proc.stdin.flush()
        results, pid = [], None
        for raw in proc.stdout:
            line = raw.decode().strip()
            if line.startswith("RESULT "):
                results.append(line.split()[3])
            if line.startswith("HOLD "):
                pid = int(line.split()[1])
                break
        assert pid == proc.pid, f"the driver did not hold: {results}"
        needle = password.encode()
        found = [name for name, content in writable_memory(pid) for _ in range(content.count(needle))]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return results, found


def test_the_search_finds_a_live_copy(memsite: Site):
    results, found = copies_left(memsite, MEMUSER, MEMPASSWORD, "--hold-unwiped", cycles=1)
    assert results == ["PAM_SUCCESS"]
    assert found, "the control failed: the driver's own copy was not found, so the search proves nothing"


@pytest.mark.parametrize("password,expected", [(MEMPASSWORD, "PAM_SUCCESS"), (WRONG, "PAM_AUTH_ERR")],
                         ids=["after_successful_logins", "after_rejected_logins"])
def test_no_copy_of_the_password_is_left_in_memory(memsite: Site, password: str, expected: str):
    results, found = copies_left(memsite, MEMUSER, password, "--hold", cycles=3)
    assert results == [expected] * 3
    assert found == [], f"{len(found)} copies of the password left after 3 logins, in: {sorted(set(found))}"
