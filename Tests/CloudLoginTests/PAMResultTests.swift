import CloudLogin
import CloudLoginPAM
import CShim
import Testing

@Suite struct PAMResultTests {
    static let identity = Identity(subject: "alice", idpLogin: "alice@example.com", claims: [:])

    /// DESIGN.md §1, one row per outcome.
    @Test(arguments: [
        (Outcome.accepted(identity), PAM_SUCCESS, nil as String?),
        (.acceptedPasswordOnly(idpLogin: "alice@example.com"), PAM_SUCCESS, nil),
        (.rejected(.badCredentials), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.unknownUser), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.disabled), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.accessPolicy), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.emptyPassword), PAM_AUTH_ERR, nil),
        (.rejected(.invalidName), PAM_AUTH_ERR, nil),
        (.rejected(.mfaRequired), PAM_AUTH_ERR, "Your organisation requires MFA for this sign-in."),
        (.rejected(.passwordExpired), PAM_AUTH_ERR, "Password expired: change it with your identity provider, then sign in again."),
        (.notCloudUser(.root), PAM_IGNORE, nil),
        (.notCloudUser(.excluded), PAM_IGNORE, nil),
        (.notCloudUser(.systemAccount), PAM_IGNORE, nil),
        (.notCloudUser(.unmanagedLocalAccount), PAM_IGNORE, nil),
        (.idpUnavailable("down"), PAM_AUTHINFO_UNAVAIL, "Identity provider unreachable; trying offline sign-in."),
        (.idpMisconfigured("bad client"), PAM_AUTHINFO_UNAVAIL, "Cloud sign-in is misconfigured; tell your administrator."),
        (.configInvalid("bad file"), PAM_SERVICE_ERR, nil),
        (.accountStoreFailed("disk full"), PAM_SYSTEM_ERR, "Could not update the local account."),
        (.noPassword, PAM_AUTH_ERR, nil),
    ] as [(Outcome, Int32, String?)])
    func outcomeMapsToCode(_ outcome: Outcome, _ code: Int32, _ message: String?) {
        let result = PAMResult(for: outcome)
        #expect(result.code == code)
        #expect(result.message == message)
    }

    @Test func onlyAcceptedIsSuccess() {
        let outcomes: [Outcome] = [.rejected(.badCredentials), .notCloudUser(.root), .idpUnavailable(""), .idpMisconfigured(""),
                                   .configInvalid(""), .accountStoreFailed(""), .noPassword]
        for outcome in outcomes { #expect(PAMResult(for: outcome).code != PAM_SUCCESS) }
    }

    @Test func moduleArguments() {
        let arguments = ModuleArguments(["config=/etc/x.conf", "debug", "try_first_pass", "use_first_pass", "bogus"])
        #expect(arguments.configPath == "/etc/x.conf")
        #expect(arguments.debug)
        #expect(arguments.unknown == ["bogus"])
        #expect(ModuleArguments([]).configPath == "/etc/cloudlogin/cloudlogin.conf")
    }
}
