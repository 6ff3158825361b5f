/// The login window's job (docs/design.md, "The local account"; docs/state.md): after the
/// IdP said yes, make the local account match the cloud identity — create it, sync the
/// password, grant and take back groups — and remember who it belongs to.
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

    /// GECOS from the `name` claim: no `:` `,` `=`, no line breaks, no control characters and
    /// no format characters (bidi overrides and isolates, zero-width joiners: a name that reads
    /// differently from what it is).
    public static func gecos(from name: String?) -> String {
        guard let name else { return "" }
        let kept = name.unicodeScalars.filter { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: return false
            default: return scalar != ":" && scalar != "," && scalar != "="
            }
        }
        return String(String.UnicodeScalarView(kept)).trimmed.prefix(200).description
    }

    /// Syncs the account of `identity`. `typedName` is what the user typed; a short name must
    /// map to itself (sudo and su cannot change the user).
    ///
    /// Order (docs/state.md): the record is written before the account exists and before the
    /// mark is set, and every group is recorded before it is granted, so a sync that stops
    /// half-way (a tool fails, the disk is full, the time is up) never leaves an account or a
    /// group CloudLogin does not know it made. The last online success is written last.
    ///
    /// `password` is the one the IdP verified, which becomes the local password; nil for
    /// device-only sign-in, where the local password is locked instead.
    public func sync(identity: Identity, typedName: String, password: SecretBytes?) -> Result {
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
            let exists = accounts.account(named: localName) != nil
            if !exists && !config.create { return .success(.refused(.noAccount)) }
            let marked = exists && accounts.isMarked(localName)

            // 1. The record, before the account and its mark. A new one has no online success
            //    yet: offline sign-in starts only once the whole sync is done.
            var current: ManagedUser
            // A marked account whose record was lost: the memberships the IdP calls for now are
            // taken for CloudLogin's grants (they are what it would grant), so a later demotion
            // takes them back.
            var adopt = false
            if var found = record {
                if found.subject.isEmpty {
                    log.warning("the record of \(localName) was lost earlier; the account is bound again to the IdP's subject")
                    found.subject = identity.subject
                    found.idpLogin = identity.idpLogin
                    adopt = true
                    if case .failure(let error) = state.save(found) { return .failure(error) }
                }
                current = found
            } else {
                if marked {
                    log.warning("the account \(localName) carries CloudLogin's mark but its record is missing; the record is written again and bound to the IdP's subject")
                    adopt = true
                }
                current = ManagedUser(name: localName, subject: identity.subject, idpLogin: identity.idpLogin,
                                      origin: exists && !marked ? .migrated : .created,
                                      grantedGroups: [], lastOnlineSuccess: 0, lastVerdict: .accepted, allowed: allowed)
                if case .failure(let error) = state.save(current) { return .failure(error) }
            }

            // 2. The account with the mark, or the mark on an existing account (migrated, or
            //    managed by a release that had no mark).
            var created = false
            let gecos = Self.gecos(from: identity.displayName)
            if !exists {
                if case .failure(let error) = accounts.createSystemGroup(ManagedMark.group) { return .failure(error) }
                if case .failure(let error) = accounts.createAccount(name: localName, gecos: gecos, shell: config.shell,
                                                                     groups: [ManagedMark.group]) {
                    return .failure(error)
                }
                created = true
            } else {
                if !marked {
                    if case .failure(let error) = accounts.createSystemGroup(ManagedMark.group) { return .failure(error) }
                    if case .failure(let error) = accounts.addMember(localName, to: ManagedMark.group) { return .failure(error) }
                }
                if !gecos.isEmpty, accounts.gecos(of: localName) != gecos {
                    if case .failure(let error) = accounts.setGECOS(name: localName, gecos: gecos) { return .failure(error) }
                }
            }

            // 3. The password: the verified one, or none (locked) for device-only sign-in.
            if let password {
                if accounts.passwordMatches(name: localName, password: password) != true {
                    if case .failure(let error) = accounts.setPassword(name: localName, password: password) { return .failure(error) }
                    log.info("local password of \(localName) synced with the IdP")
                }
            } else if accounts.passwordMatches(name: localName, password: SecretBytes()) != nil {
                // A usable hash (set when the password grant was on): locked, so that nothing
                // signs in with it behind the device step.
                if case .failure(let error) = accounts.lockPassword(name: localName) { return .failure(error) }
                log.info("local password of \(localName) locked: sign-in is by device authorization only")
            }

            // 4. The groups, each recorded before it is granted.
            if identity.groupsKnown {
                if case .failure(let error) = syncGroups(localName: localName, idpGroups: groups, record: &current, adopt: adopt) {
                    return .failure(error)
                }
            }

            // 5. The online success, last.
            current.lastOnlineSuccess = clock.now()
            current.lastVerdict = .accepted
            current.allowed = true
            return state.save(current).map { .ready(localName: localName, created: created) }
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
        if let record, !record.subject.isEmpty, record.subject != subject { return .subjectMismatch }
        if record == nil, let account = accounts.account(named: localName), !accounts.isMarked(localName) {
            if account.uid == 0 || account.uid < config.minUID { return .localOnlyName }
            if !config.migrate { return .unmanagedAccount }
            if accounts.isMember(localName, of: config.adminLocalGroup) && !config.migrateAdmins.contains(localName) {
                return .unmanagedAdmin
            }
        }
        return allowed ? nil : .notInAllowedGroups
    }

    /// The local groups the IdP groups call for.
    func wantedGroups(idpGroups: [String]) -> [String] {
        var wanted: [String] = []
        if !config.adminGroups.isEmpty && !Set(config.adminGroups).isDisjoint(with: idpGroups) {
            wanted.append(config.adminLocalGroup)
        }
        for mapping in config.groupMap where idpGroups.contains(mapping.idpGroup) && !wanted.contains(mapping.localGroup) {
            wanted.append(mapping.localGroup)
        }
        return wanted
    }

    /// Grants the local groups the IdP groups call for; with `demote`, takes back the ones
    /// CloudLogin granted earlier that the IdP no longer calls for. Groups added by hand are
    /// never touched. `record` is saved before each grant and after each removal, so it never
    /// misses a group CloudLogin gave. `adopt`: memberships of wanted groups are recorded as
    /// CloudLogin's (a marked account whose record was lost).
    func syncGroups(localName: String, idpGroups: [String], record: inout ManagedUser, adopt: Bool = false) -> Swift.Result<Void, AccountError> {
        let wanted = wantedGroups(idpGroups: idpGroups)
        for group in wanted {
            guard accounts.groupExists(group) else {
                log.warning("local group \(group) does not exist; not granting it")
                continue
            }
            // A member already: ours if we granted it before (it stays recorded), an admin's otherwise.
            if accounts.isMember(localName, of: group) {
                if adopt && !record.grantedGroups.contains(group) { record.grantedGroups.append(group) }
                continue
            }
            if !record.grantedGroups.contains(group) { record.grantedGroups.append(group) }
            record.revokedGroups.removeAll { $0 == group }
            if case .failure(let error) = state.save(record) { return .failure(error) }
            if case .failure(let error) = accounts.addMember(localName, to: group) { return .failure(error) }
            log.info("added \(localName) to local group \(group)")
        }
        // Recorded but not a member (a grant that failed, or an admin took it away): not ours.
        record.grantedGroups.removeAll { !wanted.contains($0) && !accounts.isMember(localName, of: $0) }
        guard config.demote else { return .success(()) }
        for group in record.grantedGroups where !wanted.contains(group) {
            if case .failure(let error) = takeAway(group, from: localName, record: &record) { return .failure(error) }
            log.info("removed \(localName) from local group \(group): no longer granted by the IdP")
        }
        return state.save(record)
    }

    /// Removes `localName` from `group` and records it: no longer granted, and taken away (a
    /// process started before still carries the group, see `LoginFlow.groupsTakenAway`).
    func takeAway(_ group: String, from localName: String, record: inout ManagedUser) -> Swift.Result<Void, AccountError> {
        if accounts.isMember(localName, of: group) {
            if case .failure(let error) = accounts.removeMember(localName, from: group) { return .failure(error) }
            if !record.revokedGroups.contains(group) { record.revokedGroups.append(group) }
        }
        record.grantedGroups.removeAll { $0 == group }
        return state.save(record)
    }

    /// After a definite "no" from the IdP: if the refused password is the synced one (or the
    /// answer revokes offline sign-in by itself, `RejectionReason.revokesOfflineSignIn`),
    /// offline sign-in stops until the next online success, and the groups CloudLogin granted
    /// are taken back. A mistyped password changes nothing. An account that carries the mark
    /// but lost its record gets a record again (unbound: the next online success binds it), and
    /// loses every group CloudLogin could have granted, since its grants can no longer be told
    /// from an admin's.
    public func recordRejection(localName: String, login: String, reason: RejectionReason, password: SecretBytes) {
        guard canChangeAccounts, accounts.account(named: localName) != nil else { return }
        let marked = accounts.isMarked(localName)
        guard case .success(let found) = state.user(named: localName), found != nil || marked else { return }
        let definite = reason.revokesOfflineSignIn
        guard definite || (reason == .badCredentials && accounts.passwordMatches(name: localName, password: password) == true) else { return }
        // Re-read under the lock: a concurrent sign-in may have saved a newer record.
        let saved = state.withLock { () -> Swift.Result<Void, AccountError> in
            var record: ManagedUser
            var grants: [String]
            switch state.user(named: localName) {
            case .failure(let error): return .failure(error)
            case .success(let current?):
                record = current
                grants = current.grantedGroups
            case .success(nil):
                guard accounts.isMarked(localName) else { return .success(()) }
                record = ManagedUser(name: localName, subject: "", idpLogin: login, origin: .created,
                                     lastOnlineSuccess: 0, lastVerdict: .revoked, allowed: false)
                grants = wantedGroups(idpGroups: config.adminGroups + config.groupMap.map(\.idpGroup))
            }
            record.lastVerdict = .revoked
            if case .failure(let error) = state.save(record) { return .failure(error) }
            for group in grants {
                if case .failure(let error) = takeAway(group, from: localName, record: &record) { return .failure(error) }
                log.notice("removed \(localName) from local group \(group): the IdP refused the account")
            }
            return .success(())
        }
        if case .failure(let error) = saved {
            log.error("cannot record that the IdP refused \(localName): \(error)")
        } else {
            log.notice("the IdP refused the synced password of \(localName) (\(reason.rawValue)); offline sign-in is off until the next online sign-in")
        }
    }
}

/// Why a sign-in the IdP accepted is still refused on this machine.
public enum AccountRefusal: String, Equatable, Sendable, CaseIterable {
    case unmappableName = "the cloud identity has no valid local user name in this computer's domain"
    case nameMismatch = "the cloud identity maps to another local user name"
    case localOnlyName = "the cloud identity maps to a local-only account"
    case unmanagedAccount = "a local account with that name exists and is not managed by CloudLogin (migrate = no)"
    case unmanagedAdmin = "a local administrator account with that name exists; migrate takes it over only when listed in migrate_admins"
    case groupsTakenAway = "your identity provider took away group rights this session still holds; sign out and sign in again"
    case subjectMismatch = "the local account belongs to another cloud identity"
    case notInAllowedGroups = "not in allow_groups"
    case noAccount = "no local account, and create = no (or not running as root)"
    case approvedByAnotherUser = "the sign-in was approved by another cloud identity than the one typed"
}
