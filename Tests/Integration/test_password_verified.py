"""`ropg_mfa_required = password-verified` is bound to the account (real libpam, the release
module, the hostile IdP of test_faults.py answering "password right, MFA required").

Such an answer carries no claims: it proves only that whoever holds the login at the IdP today
typed their own password. A login reused by another person at the IdP must not open the old
owner's account: the password must also be the account's synced local password, and the offline
rule must allow the account.
"""
from __future__ import annotations

from hostile_idp import HostileIdP, Status
from test_faults import MANAGED, PASSWORD, configure, fsite, hostile  # noqa: F401 (fixtures)

from cltest import Site

AUTH0_MFA_REQUIRED = Status(403, b'{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"Fe26.2*x"}')
ENTRA_MFA_REQUIRED = Status(400, b'{"error":"invalid_grant","error_description":"AADSTS50076: MFA","error_codes":[50076]}')


def test_a_login_reused_by_someone_else_does_not_open_the_old_owners_account(fsite: Site, hostile: HostileIdP):
    try:
        configure(fsite, ropg_mfa_required="password-verified")
        for answer in (AUTH0_MFA_REQUIRED, ENTRA_MFA_REQUIRED):
            hostile.token = answer
            # The new holder of the login, with their own password (which the IdP verified).
            run = fsite.pam(fsite.module_only(), MANAGED, "the new holder's own password")
            assert run.code == "PAM_AUTH_ERR", run
            # The account's owner, with the synced password: let in on the password alone.
            run = fsite.pam(fsite.module_only(), MANAGED, PASSWORD[MANAGED])
            assert run.code == "PAM_SUCCESS", run
            assert any("accepted on the password alone" in line for line in run.syslog), run.syslog
    finally:
        hostile.reset()
        configure(fsite)
