/// An error answer of the Okta API (`errorCode`, `errorSummary`, `errorCauses`).
public struct OktaError: Equatable, Sendable {
    /// Okta's `errorCode` (https://developer.okta.com/docs/reference/error-codes/): the codes
    /// CloudLogin acts on; every other code is `other` (`OktaName`).
    public enum Code: OktaName {
        /// E0000001, "Api validation failed" (a new password, for one).
        case apiValidationFailed
        /// E0000004, "Authentication failed": the user or password is wrong.
        case authenticationFailed
        /// E0000011, "Invalid token provided": the transaction's stateToken expired.
        case invalidToken
        /// E0000014, "Update of credentials failed".
        case credentialsUpdateFailed
        /// E0000068, "Invalid Passcode/Answer": a wrong code.
        case invalidPasscode
        /// E0000080, the new password does not meet the password policy.
        case passwordPolicyNotMet
        /// Any other code, as Okta sent it.
        case other(String)

        public static let known: [Code] = [.apiValidationFailed, .authenticationFailed, .invalidToken, .credentialsUpdateFailed,
                                           .invalidPasscode, .passwordPolicyNotMet]

        /// Okta's name for the code, e.g. "E0000004", as it was sent.
        public var name: String {
            switch self {
            case .apiValidationFailed: return "E0000001"
            case .authenticationFailed: return "E0000004"
            case .invalidToken: return "E0000011"
            case .credentialsUpdateFailed: return "E0000014"
            case .invalidPasscode: return "E0000068"
            case .passwordPolicyNotMet: return "E0000080"
            case .other(let name): return name
            }
        }
    }

    public var code: Code
    public var summary: String
    public var causes: [String]

    public init?(_ document: JSONValue?) {
        guard let code = document?["errorCode"]?.stringValue else { return nil }
        self.code = Code(code)
        summary = document?["errorSummary"]?.stringValue ?? ""
        causes = document?["errorCauses"]?.arrayValue?.compactMap { $0["errorSummary"]?.stringValue } ?? []
    }
}
