import CShim
import CloudLogin

/// The one place where CloudLogin's outcomes become PAM codes and user-visible messages
/// (docs/design.md, "Situation by situation"). A table-driven test covers every case.
public struct PAMResult: Equatable, Sendable {
    /// The PAM return code.
    public var code: Int32
    /// What the user is told through the conversation (nil: nothing).
    public var message: String?
    /// Whether the message is an error (PAM_ERROR_MSG) rather than information.
    public var messageIsError: Bool
    /// How loud the syslog line is.
    public var logLevel: LogLevel

    public init(code: Int32, message: String?, messageIsError: Bool, logLevel: LogLevel) {
        self.code = code
        self.message = message
        self.messageIsError = messageIsError
        self.logLevel = logLevel
    }

    /// The authentication result for `outcome`.
    public init(for outcome: Outcome) {
        switch outcome {
        case .accepted(_, let localName, let created):
            self.init(code: PAM_SUCCESS, message: created ? "Created local account \(localName) from your cloud identity." : nil,
                      messageIsError: false, logLevel: .info)
        case .acceptedPasswordOnly:
            self.init(code: PAM_SUCCESS, message: nil, messageIsError: false, logLevel: .notice)
        case .rejected(.mfaRequired):
            self.init(code: PAM_AUTH_ERR, message: "Your organisation requires MFA for this sign-in.", messageIsError: true, logLevel: .notice)
        case .rejected(.passwordExpired):
            self.init(code: PAM_AUTH_ERR, message: "Password expired: change it with your identity provider, then sign in again.", messageIsError: true, logLevel: .notice)
        case .rejected(.emptyPassword), .rejected(.invalidName):
            self.init(code: PAM_AUTH_ERR, message: nil, messageIsError: false, logLevel: .notice)
        case .rejected(.badCredentials), .rejected(.unknownUser), .rejected(.disabled), .rejected(.accessPolicy),
             .rejected(.blocked), .rejected(.unrecognizedRefusal):
            // The same answer for all of them, so that names cannot be probed.
            self.init(code: PAM_AUTH_ERR, message: "Sign-in failed.", messageIsError: true, logLevel: .notice)
        case .rejected(.lockedOut):
            self.init(code: PAM_AUTH_ERR, message: "Your account is locked; unlock it at your identity provider or ask your administrator.", messageIsError: true, logLevel: .notice)
        case .rejected(.mfaEnrollmentRequired):
            self.init(code: PAM_AUTH_ERR, message: "Your organisation requires MFA: enroll a factor (Okta Verify, a code app or SMS) at your identity provider first.", messageIsError: true, logLevel: .notice)
        case .rejected(.mfaFailed):
            self.init(code: PAM_AUTH_ERR, message: "MFA verification failed.", messageIsError: true, logLevel: .notice)
        case .rejected(.mfaTimedOut):
            self.init(code: PAM_AUTH_ERR, message: "MFA was not completed in time.", messageIsError: true, logLevel: .notice)
        case .rejected(.recoveryInProgress):
            self.init(code: PAM_AUTH_ERR, message: "A password recovery is in progress for your account; finish it at your identity provider.", messageIsError: true, logLevel: .notice)
        case .rejected(.transactionExpired):
            self.init(code: PAM_AUTH_ERR, message: "The sign-in took too long; please start again.", messageIsError: true, logLevel: .notice)
        case .rejected(.abandoned):
            self.init(code: PAM_AUTH_ERR, message: nil, messageIsError: false, logLevel: .notice)
        case .rejected(.unsupportedState):
            self.init(code: PAM_AUTH_ERR, message: "Your identity provider asked for a step this computer cannot do; sign in with a browser first.", messageIsError: true, logLevel: .warning)
        case .rejected(.stateUnreadable):
            self.init(code: PAM_AUTH_ERR, message: "Sign-in is not possible: this computer cannot read its record of your account; tell your administrator.", messageIsError: true, logLevel: .error)
        case .rejected(.passwordChangeFailed):
            self.init(code: PAM_AUTH_ERR, message: "Your password was not changed, so the sign-in failed.", messageIsError: true, logLevel: .notice)
        case .refusedHere(let refusal):
            self.init(code: PAM_AUTH_ERR, message: "Sign-in refused on this computer: \(refusal.rawValue).", messageIsError: true,
                      logLevel: refusal == .subjectMismatch ? .error : .warning)
        case .notCloudUser:
            self.init(code: PAM_IGNORE, message: nil, messageIsError: false, logLevel: .info)
        case .idpUnavailable:
            self.init(code: PAM_AUTHINFO_UNAVAIL, message: "Identity provider unreachable; trying offline sign-in.", messageIsError: false, logLevel: .warning)
        case .idpMisconfigured:
            self.init(code: PAM_AUTHINFO_UNAVAIL, message: "Cloud sign-in is misconfigured; tell your administrator.", messageIsError: true, logLevel: .error)
        case .offlineRefused(_, let reason):
            self.init(code: PAM_AUTH_ERR, message: "Identity provider unreachable, and offline sign-in is not possible: \(reason.rawValue).",
                      messageIsError: true, logLevel: .warning)
        case .configInvalid(_, offlineFor: .some):
            // Never a yes from a config that cannot be trusted: pam_unix checks the synced password.
            self.init(code: PAM_AUTHINFO_UNAVAIL, message: "Cloud sign-in is misconfigured; trying offline sign-in.", messageIsError: false, logLevel: .error)
        case .configInvalid(_, offlineFor: nil):
            self.init(code: PAM_AUTH_ERR, message: "Cloud sign-in is misconfigured; tell your administrator.", messageIsError: true, logLevel: .error)
        case .accountStoreFailed, .localNameNotSet:
            self.init(code: PAM_SYSTEM_ERR, message: "Could not update the local account.", messageIsError: true, logLevel: .error)
        case .noPassword:
            self.init(code: PAM_AUTH_ERR, message: nil, messageIsError: false, logLevel: .notice)
        }
    }

    /// The account-phase result. Never PAM_SUCCESS: a yes here would skip the checks of the
    /// modules after it (expiry, nologin) under `sufficient`.
    public init(for decision: AccountDecision) {
        switch decision {
        case .noUser:
            self.init(code: PAM_USER_UNKNOWN, message: nil, messageIsError: false, logLevel: .notice)
        case .notManaged, .inGoodStanding:
            self.init(code: PAM_IGNORE, message: nil, messageIsError: false, logLevel: .debug)
        case .denied(let denial):
            self.init(code: PAM_PERM_DENIED, message: "Access denied: \(denial.rawValue).", messageIsError: true, logLevel: .notice)
        }
    }

    /// The password-phase result.
    public init(for decision: PasswordChangeDecision) {
        switch decision {
        case .notManaged:
            self.init(code: PAM_IGNORE, message: nil, messageIsError: false, logLevel: .debug)
        case .managedByIdP(let place):
            self.init(code: PAM_AUTHTOK_ERR, message: "Your password is managed by your identity provider; change it at \(place).",
                      messageIsError: true, logLevel: .notice)
        }
    }

    /// The credentials-phase result: CloudLogin sets no credentials, and answers only after its
    /// own sign-in in the same PAM handle (PAM_IGNORE otherwise, so another module's setcred runs).
    public init(forCredentialsAfterOwnSignIn signedIn: Bool) {
        self.init(code: signedIn ? PAM_SUCCESS : PAM_IGNORE, message: nil, messageIsError: false, logLevel: .debug)
    }

    /// The answer to a PAM phase CloudLogin does not provide.
    public static let unknownPhase = PAMResult(code: PAM_SERVICE_ERR, message: nil, messageIsError: false, logLevel: .error)

    /// PAM_SUCCESS, for hosts that ask whether a result is a yes.
    public static let success: Int32 = PAM_SUCCESS

    /// The name of a PAM code, for logs and the CLI.
    public static func name(of code: Int32) -> String {
        switch code {
        case PAM_SUCCESS: return "PAM_SUCCESS"
        case PAM_AUTH_ERR: return "PAM_AUTH_ERR"
        case PAM_IGNORE: return "PAM_IGNORE"
        case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL"
        case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR"
        case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR"
        case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN"
        case PAM_PERM_DENIED: return "PAM_PERM_DENIED"
        case PAM_CONV_ERR: return "PAM_CONV_ERR"
        case PAM_BUF_ERR: return "PAM_BUF_ERR"
        case PAM_CRED_INSUFFICIENT: return "PAM_CRED_INSUFFICIENT"
        case PAM_NEW_AUTHTOK_REQD: return "PAM_NEW_AUTHTOK_REQD"
        case PAM_AUTHTOK_ERR: return "PAM_AUTHTOK_ERR"
        case PAM_ABORT: return "PAM_ABORT"
        default: return "PAM code \(code)"
        }
    }
}
