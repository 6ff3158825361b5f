/// Whether the synced local password may be used while the IdP cannot be reached
/// (docs/design.md, "Offline sign-in": bounded in time, and never after the IdP said no).
public enum OfflinePolicy {
    public enum Decision: Equatable, Sendable {
        /// pam_unix may check the synced password; `daysLeft` until `max_days` runs out.
        case allowed(daysLeft: Int)
        case refused(OfflineRefusal)
    }

    public static func decide(record: ManagedUser?, config: Config, now: Int64) -> Decision {
        guard config.offlineAllowed else { return .refused(.turnedOff) }
        guard config.passwordGrant else { return .refused(.deviceOnly) }
        guard let record else { return .refused(.neverOnline) }
        guard record.lastVerdict == .accepted else { return .refused(.revoked) }
        guard record.allowed else { return .refused(.notAllowed) }
        let age = now &- record.lastOnlineSuccess
        let limit = Int64(truncatingIfNeeded: config.offlineMaxDays) &* 86_400
        guard age >= 0, age <= limit else { return .refused(.tooOld) }
        let daysLeft = (limit &- age) / 86_400
        return .allowed(daysLeft: Int(truncatingIfNeeded: daysLeft))
    }
}

/// Why offline sign-in was refused.
public enum OfflineRefusal: String, Equatable, Sendable, CaseIterable {
    case turnedOff = "offline sign-in is turned off ([offline] allow = no)"
    case neverOnline = "this account has not signed in online on this machine yet"
    case revoked = "the identity provider refused this account since its last online sign-in"
    case notAllowed = "the account is no longer in allow_groups"
    case tooOld = "the last online sign-in is older than [offline] max_days"
    case deviceOnly = "sign-in is by device authorization only (password_grant = no), so there is no local password to check"
}
