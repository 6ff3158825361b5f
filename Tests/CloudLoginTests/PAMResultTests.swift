import CloudLogin
import CloudLoginPAM
import CShim
import Testing

@Suite struct PAMResultTests {
    static let identity = Identity(subject: "alice", idpLogin: "alice@example.com", claims: [:])
    static let badFile = ConfigDiagnostic(path: "/etc/cloudlogin/cloudlogin.conf", line: 3, key: "idp.timeout", message: "'soon' must be a whole number")
    static let down = IdPClassifier.problem(.connect("refused"), stage: .token)
    static let badClient = IdPProblem(stage: .token, cause: .oauthError(.invalidClient, status: 401))

    /// docs/design.md, "Situation by situation": one row per outcome.
    @Test(arguments: [
        (Outcome.accepted(identity, localName: "alice", created: false), PAM_SUCCESS, nil as String?),
        (.accepted(identity, localName: "alice", created: true), PAM_SUCCESS, "Created local account alice from your cloud identity."),
        (.acceptedPasswordOnly(localName: "alice"), PAM_SUCCESS, nil),
        (.refusedHere(.subjectMismatch), PAM_AUTH_ERR, "Sign-in refused on this computer: the local account belongs to another cloud identity."),
        (.refusedHere(.notInAllowedGroups), PAM_AUTH_ERR, "Sign-in refused on this computer: not in allow_groups."),
        (.offlineRefused(problem: down, reason: .tooOld), PAM_AUTH_ERR, "Identity provider unreachable, and offline sign-in is not possible: the last online sign-in is older than [offline] max_days."),
        (.offlineRefused(problem: down, reason: .revoked), PAM_AUTH_ERR, "Identity provider unreachable, and offline sign-in is not possible: the identity provider refused this account since its last online sign-in."),
        (.rejected(.badCredentials), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.unknownUser), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.disabled), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.accessPolicy), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.blocked), PAM_AUTH_ERR, "Sign-in failed."),
        (.rejected(.unrecognizedRefusal), PAM_AUTH_ERR, "Sign-in failed."),
        (.offlineRefused(problem: badClient, reason: .neverOnline), PAM_AUTH_ERR, "Identity provider unreachable, and offline sign-in is not possible: this account has not signed in online on this machine yet."),
        (.rejected(.emptyPassword), PAM_AUTH_ERR, nil),
        (.rejected(.invalidName), PAM_AUTH_ERR, nil),
        (.rejected(.mfaRequired), PAM_AUTH_ERR, "Your organisation requires MFA for this sign-in."),
        (.rejected(.passwordExpired), PAM_AUTH_ERR, "Password expired: change it with your identity provider, then sign in again."),
        (.notCloudUser(.root), PAM_IGNORE, nil),
        (.notCloudUser(.excluded), PAM_IGNORE, nil),
        (.notCloudUser(.systemAccount), PAM_IGNORE, nil),
        (.notCloudUser(.unmanagedLocalAccount), PAM_IGNORE, nil),
        (.notCloudUser(.unmanagedAdmin), PAM_IGNORE, nil),
        (.refusedHere(.groupsTakenAway), PAM_AUTH_ERR, "Sign-in refused on this computer: your identity provider took away group rights this session still holds; sign out and sign in again."),
        (.idpUnavailable(down, localName: "alice"), PAM_AUTHINFO_UNAVAIL, "Identity provider unreachable; trying offline sign-in."),
        (.idpMisconfigured(badClient, localName: nil), PAM_AUTHINFO_UNAVAIL, "Cloud sign-in is misconfigured; tell your administrator."),
        (.configInvalid(badFile, offlineFor: nil), PAM_AUTH_ERR, "Cloud sign-in is misconfigured; tell your administrator."),
        (.configInvalid(badFile, offlineFor: "alice"), PAM_AUTHINFO_UNAVAIL, "Cloud sign-in is misconfigured; trying offline sign-in."),
        (.accountStoreFailed(.toolFailed("useradd", "disk full")), PAM_SYSTEM_ERR, "Could not update the local account."),
        (.localNameNotSet("alice"), PAM_SYSTEM_ERR, "Could not update the local account."),
        (.noPassword, PAM_AUTH_ERR, nil),
    ] as [(Outcome, Int32, String?)])
    func outcomeMapsToCode(_ outcome: Outcome, _ code: Int32, _ message: String?) {
        let result = PAMResult(for: outcome)
        #expect(result.code == code)
        #expect(result.message == message)
    }

    @Test func onlyAcceptedIsSuccess() {
        let outcomes: [Outcome] = [.rejected(.badCredentials), .notCloudUser(.root), .idpUnavailable(Self.down, localName: nil), .idpMisconfigured(Self.badClient, localName: nil),
                                   .refusedHere(.subjectMismatch), .offlineRefused(problem: Self.down, reason: .tooOld),
                                   .configInvalid(Self.badFile, offlineFor: nil), .configInvalid(Self.badFile, offlineFor: "a"),
                                   .accountStoreFailed(.stateFailed("full")), .localNameNotSet("a"), .noPassword]
        for outcome in outcomes { #expect(PAMResult(for: outcome).code != PAM_SUCCESS) }
    }

    @Test(arguments: [
        (AccountDecision.notManaged, PAM_IGNORE),
        (.inGoodStanding, PAM_IGNORE),
        (.denied(.revoked), PAM_PERM_DENIED),
        (.denied(.notAllowed), PAM_PERM_DENIED),
        (.denied(.recordUnreadable), PAM_PERM_DENIED),
        (.denied(.recordMissing), PAM_PERM_DENIED),
        (.denied(.groupsTakenAway), PAM_PERM_DENIED),
    ])
    func accountPhaseNeverSaysYes(_ decision: AccountDecision, _ code: Int32) {
        #expect(PAMResult(for: decision).code == code)
    }

    @Test func passwordPhase() {
        #expect(PAMResult(for: PasswordChangeDecision.notManaged).code == PAM_IGNORE)
        let managed = PAMResult(for: PasswordChangeDecision.managedByIdP(where: "https://idp.example.com"))
        #expect(managed.code == PAM_AUTHTOK_ERR)
        #expect(managed.message == "Your password is managed by your identity provider; change it at https://idp.example.com.")
    }

    @Test func moduleArguments() {
        let arguments = ModuleArguments(["config=/etc/x.conf", "debug", "try_first_pass", "use_first_pass", "bogus"])
        #expect(arguments.configPath == "/etc/x.conf")
        #expect(arguments.debug)
        #expect(arguments.unknown == ["bogus"])
        #expect(ModuleArguments([]).configPath == "/etc/cloudlogin/cloudlogin.conf")
    }

    /// Every case of every reason enum has its row: refusals and rejections are never a yes and
    /// always PAM_AUTH_ERR, local-only users PAM_IGNORE, account denials PAM_PERM_DENIED.
    @Test func everyReasonHasARowInTheCodeTable() {
        for reason in RejectionReason.allCases {
            #expect(PAMResult(for: .rejected(reason)).code == PAM_AUTH_ERR, "\(reason)")
        }
        for refusal in AccountRefusal.allCases {
            let result = PAMResult(for: .refusedHere(refusal))
            #expect(result.code == PAM_AUTH_ERR, "\(refusal)")
            #expect(result.message == "Sign-in refused on this computer: \(refusal.rawValue).")
        }
        for reason in LocalOnlyReason.allCases {
            let result = PAMResult(for: .notCloudUser(reason))
            #expect(result.code == PAM_IGNORE && result.message == nil, "\(reason)")
        }
        for refusal in OfflineRefusal.allCases {
            let result = PAMResult(for: .offlineRefused(problem: Self.down, reason: refusal))
            #expect(result.code == PAM_AUTH_ERR, "\(refusal)")
            #expect(result.message?.hasSuffix("\(refusal.rawValue).") == true)
        }
        for denial in AccountDenial.allCases {
            let result = PAMResult(for: AccountDecision.denied(denial))
            #expect(result.code == PAM_PERM_DENIED && result.message == "Access denied: \(denial.rawValue).", "\(denial)")
        }
        #expect(PAMResult(for: AccountDecision.noUser).code == PAM_USER_UNKNOWN)
        #expect(PAMResult(forCredentialsAfterOwnSignIn: true).code == PAM_SUCCESS)
        #expect(PAMResult(forCredentialsAfterOwnSignIn: false).code == PAM_IGNORE)
        #expect(PAMResult.unknownPhase.code == PAM_SERVICE_ERR)
    }
}
