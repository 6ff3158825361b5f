/// The login window's job (DESIGN.md §2): after the IdP said yes, make the local account
/// match the cloud identity — create it, sync the password, grant and take back groups —
/// and remember who it belongs to.
public struct AccountSync {
    let config: Config
    let accounts: LocalAccountStore
    let state: ManagedUserStore
    let clock: Clock
    let log: EventLog
    /// False in a process that is not root (a screen locker): nothing is changed.
    let canChangeAccounts: Bool

    /// What the sync decided.
    public enum Result: Equatable {
        /// The account matches the identity; `created` on the first sign-in.
        case ready(localName: String, created: Bool)
        /// Sign-in refused for a reason about the account, not the password.
        case refused(AccountRefusal)
        case failed(AccountError)
    }

    /// The local name for an identity: the `name_claim` value before '@', ASCII-lowercased.
    /// With a `username_suffix`, a value with a domain must be in that domain: otherwise
    /// `alice@contractor.example` would map onto the local account of `alice@example.com`.
    public static func localName(for identity: Identity, claim: String, usernameSuffix: String = "") -> String? {
        guard let value = identity.claims[claim]?.stringValue else { return nil }
        let parts = value.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2, !usernameSuffix.isEmpty,
           "@" + parts[1].lowercased() != usernameSuffix.lowercased() {
            return nil
        }
        let beforeAt = parts.first.map(String.init) ?? value
        let lowered = String(beforeAt.map { $0.isASCII ? Character($0.lowercased()) : $0 })
        return LoginName.isValidLocalName(lowered) ? lowered : nil
    }

    /// GECOS from the `name` claim: no `:` `,` `=`, no line breaks or control characters.
    public static func gecos(from name: String?) -> String {
        guard let name else { return "" }
        let kept = name.unicodeScalars.filter { scalar in
            !(scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
              || scalar == ":" || scalar == "," || scalar == "=" || scalar == "\u{2028}" || scalar == "\u{2029}")
        }
        return String(String.UnicodeScalarView(kept)).trimmed.prefix(200).description
    }

    /// Syncs the account of `identity`. `typedName` is what the user typed; a short name must
    /// map to itself (sudo and su cannot change the user).
    public func sync(identity: Identity, typedName: String, password: SecretBytes) -> Result {
        guard let localName = Self.localName(for: identity, claim: config.nameClaim, usernameSuffix: config.usernameSuffix) else {
            log.error("the IdP's \(config.nameClaim) claim is missing, not a valid local user name, or not in the username_suffix domain; refusing")
            return .refused(.unmappableName)
        }
        if !typedName.contains("@") && typedName != localName {
            log.error("the cloud identity of \(typedName) maps to another local name; refusing")
            return .refused(.nameMismatch)
        }
        if localName == "root" || config.exclude.contains(localName) { return .refused(.localOnlyName) }

        let groups = identity.groups(claim: config.groupsClaim)
        let allowed = config.allowGroups.isEmpty || (identity.groupsKnown && !Set(config.allowGroups).isDisjoint(with: groups))

        guard canChangeAccounts else {
            // A screen locker: check what can be checked, change nothing.
            log.info("not running as root: the local account of \(localName) is not updated")
            let record: ManagedUser?
            switch state.user(named: localName) {
            case .success(let found): record = found
            case .failure(let error): return .failed(error)
            }
            if let refusal = refusal(localName: localName, record: record, subject: identity.subject, allowed: allowed) {
                return .refused(refusal)
            }
            return accounts.account(named: localName) == nil ? .refused(.noAccount) : .ready(localName: localName, created: false)
        }

        // Everything that depends on the account files and the records is decided under the
        // lock, so that concurrent first sign-ins of one user create it once and agree.
        let outcome = state.withLock { () -> Swift.Result<Result, AccountError> in
            let record: ManagedUser?
            switch state.user(named: localName) {
            case .success(let found): record = found
            case .failure(let error): return .failure(error)
            }
            if let refusal = refusal(localName: localName, record: record, subject: identity.subject, allowed: allowed) {
                if refusal == .notInAllowedGroups, var record {
                    record.allowed = false
                    if case .failure(let error) = state.save(record) { return .failure(error) }
                }
                return .success(.refused(refusal))
            }
            var created = false
            let gecos = Self.gecos(from: identity.displayName)
            if accounts.account(named: localName) == nil {
                guard config.create else { return .success(.refused(.noAccount)) }
                if case .failure(let error) = accounts.createAccount(name: localName, gecos: gecos, shell: config.shell) {
                    return .failure(error)
                }
                created = true
            } else if !gecos.isEmpty, accounts.gecos(of: localName) != gecos {
                if case .failure(let error) = accounts.setGECOS(name: localName, gecos: gecos) { return .failure(error) }
            }
            if accounts.passwordMatches(name: localName, password: password) != true {
                if case .failure(let error) = accounts.setPassword(name: localName, password: password) { return .failure(error) }
                log.info("local password of \(localName) synced with the IdP")
            }
            var granted = record?.grantedGroups ?? []
            if identity.groupsKnown {
                switch syncGroups(localName: localName, idpGroups: groups, previouslyGranted: granted) {
                case .success(let now): granted = now
                case .failure(let error): return .failure(error)
                }
            }
            let updated = ManagedUser(name: localName, subject: identity.subject, idpLogin: identity.idpLogin,
                                      origin: record?.origin ?? (created ? .created : .migrated),
                                      grantedGroups: granted, lastOnlineSuccess: clock.now(),
                                      lastVerdict: .accepted, allowed: true)
            return state.save(updated).map { .ready(localName: localName, created: created) }
        }
        switch outcome {
        case .success(let result):
            if case .refused(.subjectMismatch) = result {
                log.error("subject mismatch for local account \(localName): the IdP named another subject than the one the account is bound to; refusing")
            }
            return result
        case .failure(let error):
            return .failed(error)
        }
    }

    /// The refusals that depend on the local account and its record.
    func refusal(localName: String, record: ManagedUser?, subject: String, allowed: Bool) -> AccountRefusal? {
        if let record, record.subject != subject { return .subjectMismatch }
        if record == nil, let account = accounts.account(named: localName) {
            if account.uid == 0 || account.uid < config.minUID { return .localOnlyName }
            if !config.migrate { return .unmanagedAccount }
        }
        return allowed ? nil : .notInAllowedGroups
    }

    /// Grants the local groups the IdP groups call for; with `demote`, takes back the ones
    /// CloudLogin granted earlier that the IdP no longer calls for. Groups added by hand are
    /// never touched. Returns the groups CloudLogin has granted now.
    func syncGroups(localName: String, idpGroups: [String], previouslyGranted: [String]) -> Swift.Result<[String], AccountError> {
        var wanted: [String] = []
        if !config.adminGroups.isEmpty && !Set(config.adminGroups).isDisjoint(with: idpGroups) {
            wanted.append(config.adminLocalGroup)
        }
        for mapping in config.groupMap where idpGroups.contains(mapping.idpGroup) && !wanted.contains(mapping.localGroup) {
            wanted.append(mapping.localGroup)
        }
        var granted: [String] = []
        for group in wanted {
            guard accounts.groupExists(group) else {
                log.warning("local group \(group) does not exist; not granting it")
                continue
            }
            if accounts.isMember(localName, of: group) {
                // Ours if we granted it before; an admin's otherwise.
                if previouslyGranted.contains(group) { granted.append(group) }
                continue
            }
            if case .failure(let error) = accounts.addMember(localName, to: group) { return .failure(error) }
            log.info("added \(localName) to local group \(group)")
            granted.append(group)
        }
        for group in previouslyGranted where !wanted.contains(group) {
            if config.demote {
                if accounts.isMember(localName, of: group) {
                    if case .failure(let error) = accounts.removeMember(localName, from: group) { return .failure(error) }
                    log.info("removed \(localName) from local group \(group): no longer granted by the IdP")
                }
            } else {
                granted.append(group)
            }
        }
        return .success(granted)
    }

    /// After a definite "no" from the IdP: if the refused password is the synced one (or the
    /// IdP said the user is disabled or unknown), offline sign-in stops until the next online
    /// success. A mistyped password changes nothing.
    public func recordRejection(localName: String, reason: RejectionReason, password: SecretBytes) {
        guard canChangeAccounts, case .success(.some) = state.user(named: localName) else { return }
        let definite = reason.revokesOfflineSignIn
        guard definite || (reason == .badCredentials && accounts.passwordMatches(name: localName, password: password) == true) else { return }
        // Re-read under the lock: a concurrent sign-in may have saved a newer record.
        let saved = state.withLock { () -> Swift.Result<Void, AccountError> in
            guard case .success(var record?) = state.user(named: localName) else { return .success(()) }
            record.lastVerdict = .revoked
            return state.save(record)
        }
        if case .failure(let error) = saved {
            log.error("cannot record that the IdP refused \(localName): \(error)")
        } else {
            log.notice("the IdP refused the synced password of \(localName) (\(reason.rawValue)); offline sign-in is off until the next online sign-in")
        }
    }
}

/// Why a sign-in the IdP accepted is still refused on this machine.
public enum AccountRefusal: String, Equatable, Sendable {
    case unmappableName = "the cloud identity has no valid local user name in this computer's domain"
    case nameMismatch = "the cloud identity maps to another local user name"
    case localOnlyName = "the cloud identity maps to a local-only account"
    case unmanagedAccount = "a local account with that name exists and is not managed by CloudLogin (migrate = no)"
    case subjectMismatch = "the local account belongs to another cloud identity"
    case notInAllowedGroups = "not in allow_groups"
    case noAccount = "no local account, and create = no (or not running as root)"
}
