/// The mark's floor and the screening that runs before CloudLogin reads any file of its own:
/// root and system accounts are decided from the user database alone, so a missing, unsafe or
/// broken config or state directory can never lock them out (docs/security.md).
public enum EarlyScreen {
    /// Accounts below this uid are system accounts unless they carry CloudLogin's mark.
    /// `min_uid` can raise the floor; a lower `min_uid` only matters for marked accounts.
    public static let systemUIDFloor: UInt32 = 1000

    /// Local-only before the config is read: root (by name or uid 0) and unmarked accounts
    /// below the floor, for the name as typed and for the part before '@'.
    public static func localOnly(typedName: String, accounts: LocalAccountDirectory) -> LocalOnlyReason? {
        for name in candidateNames(typedName) {
            if name == "root" { return .root }
            guard let account = accounts.account(named: name) else { continue }
            if account.uid == 0 { return .root }
            if account.uid < systemUIDFloor && !accounts.isMarked(name) { return .systemAccount }
        }
        return nil
    }

    /// Local-only when the config cannot be used: every existing account without the mark is
    /// a local user's, left to the rest of the stack.
    public static func localOnlyWithoutConfig(typedName: String, accounts: LocalAccountDirectory) -> LocalOnlyReason? {
        for name in candidateNames(typedName) {
            if accounts.account(named: name) != nil && !accounts.isMarked(name) { return .unmanagedLocalAccount }
        }
        return nil
    }

    /// The typed name, and its part before '@' in lower case when that differs.
    static func candidateNames(_ typedName: String) -> [String] {
        let local = typedName.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).first.map { $0.lowercased() } ?? typedName
        return local == typedName ? [typedName] : [typedName, local]
    }
}
