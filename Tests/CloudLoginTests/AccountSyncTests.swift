@testable import CloudLogin
import Foundation
import Testing

/// The login window's job, through the whole flow with claims from userinfo (which the tests
/// can shape freely), local accounts and state in memory.
@Suite struct AccountSyncTests {
    static let now: Int64 = 1_900_000_000

    final class World {
        let transport = ScriptedTransport()
        let accounts = AccountTable()
        let state = StateTable()
        let clock = FixedClock(AccountSyncTests.now)
        var caller = FixedCaller()
        var config = fixtureConfig { config in
            config.adminGroups = ["g-admins"]
            config.groupMap = [GroupMapping(idpGroup: "g-dev", localGroup: "developers")]
        }

        init(claims: String) {
            transport.on(fixtureDiscoveryURL, 200, fixtureDiscovery)
            answer(claims)
        }

        func answer(_ claims: String) {
            transport.answers[fixtureTokenURL] = [.success(.init(status: 200, body: #"{"access_token":"at","token_type":"Bearer"}"#))]
            transport.answers[fixtureUserinfoURL] = [.success(.init(status: 200, body: claims))]
        }

        func flow(canChange: Bool = true) -> LoginFlow {
            LoginFlow(config: config, transport: transport, cache: MemoryCache(), accounts: accounts, state: state,
                      clock: clock, log: RecordingLog(), canChangeAccounts: canChange, caller: caller)
        }

        func reject(_ body: String = #"{"error":"invalid_grant"}"#) {
            transport.answers[fixtureTokenURL] = [.success(.init(status: 400, body: body))]
        }

        func idpDown() {
            transport.answers[fixtureTokenURL] = [.failure(.connect("refused"))]
        }

        func login(_ name: String = "alice", _ secret: String = "pw1", canChange: Bool = true) -> Outcome {
            flow(canChange: canChange)
                .authenticate(typedName: name, password: password(secret))
        }
    }

    static let alice = #"{"sub":"s-alice","preferred_username":"alice@example.com","name":"Alice Example","groups":["g-admins","g-dev"]}"#

    @Test func firstLoginCreatesTheAccount() {
        let world = World(claims: Self.alice)
        let outcome = world.login()
        guard case .accepted(_, "alice", true) = outcome else {
            Issue.record("expected a created account, got \(outcome)")
            return
        }
        #expect(world.accounts.changes == ["useradd alice /bin/bash Alice Example", "chpasswd alice",
                                            "gpasswd -a alice sudo", "gpasswd -a alice developers"])
        #expect(world.accounts.passwords["alice"] == "pw1")
        let record = world.state.records["alice"]
        #expect(record?.subject == "s-alice")
        #expect(record?.origin == .created)
        #expect(record?.grantedGroups == ["sudo", "developers"])
        #expect(record?.lastOnlineSuccess == Self.now)
    }

    @Test func steadyStateChangesNothing() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.accounts.changes = []
        guard case .accepted(_, "alice", false) = world.login() else { Issue.record("second login failed"); return }
        #expect(world.accounts.changes == [])
    }

    @Test func newCloudPasswordIsSyncedAfterTheNextSuccess() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.accounts.changes = []
        _ = world.login("alice", "pw2")
        #expect(world.accounts.changes == ["chpasswd alice"])
        #expect(world.accounts.passwords["alice"] == "pw2")
    }

    @Test func removalAtTheIdPDemotesButHandAddedGroupsStay() {
        let world = World(claims: Self.alice)
        world.accounts.groups["adm"] = ["alice"] // added by an admin by hand
        _ = world.login()
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","name":"Alice Example","groups":[]}"#)
        world.accounts.changes = []
        _ = world.login()
        #expect(world.accounts.changes == ["gpasswd -d alice sudo", "gpasswd -d alice developers"])
        #expect(world.accounts.groups["adm"] == ["alice"])
        #expect(world.state.records["alice"]?.grantedGroups == [])
    }

    @Test func groupTheAdminGrantedIsNotTakenBack() {
        let world = World(claims: Self.alice)
        world.accounts.groups["sudo"] = ["alice"]
        world.accounts.uids["alice"] = 1500
        world.config.migrate = true
        world.config.migrateAdmins = ["alice"]
        _ = world.login()
        #expect(world.state.records["alice"]?.grantedGroups == ["developers"])
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","groups":[]}"#)
        _ = world.login()
        #expect(world.accounts.groups["sudo"] == ["alice"])
    }

    @Test func withoutDemoteGrantedGroupsStay() {
        let world = World(claims: Self.alice)
        world.config.demote = false
        _ = world.login()
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","groups":[]}"#)
        world.accounts.changes = []
        _ = world.login()
        #expect(world.accounts.changes == [])
    }

    @Test func anotherSubjectForTheSameNameIsRefusedAndChangesNothing() {
        let world = World(claims: Self.alice)
        _ = world.login()
        let before = (world.accounts.changes, world.state.records)
        world.answer(#"{"sub":"s-someone-else","preferred_username":"alice","name":"Mallory"}"#)
        #expect(world.login() == .refusedHere(.subjectMismatch))
        #expect(world.accounts.changes == before.0)
        #expect(world.state.records == before.1)
    }

    @Test func allowGroupsGateTheSignIn() {
        let world = World(claims: Self.alice)
        world.config.allowGroups = ["g-linux"]
        #expect(world.login() == .refusedHere(.notInAllowedGroups))
        #expect(world.accounts.changes == [])
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","groups":["g-linux"]}"#)
        guard case .accepted = world.login() else { Issue.record("member of allow_groups refused"); return }
        // Removed from the allowed group: refused, and the account phase denies too.
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","groups":[]}"#)
        #expect(world.login() == .refusedHere(.notInAllowedGroups))
        #expect(world.state.records["alice"]?.allowed == false)
    }

    @Test(arguments: [
        #"{"sub":"s1","preferred_username":"-o"}"#,
        #"{"sub":"s1","preferred_username":"../x"}"#,
        #"{"sub":"s1","preferred_username":"a:b"}"#,
        #"{"sub":"s1","preferred_username":"élodie"}"#,
        #"{"sub":"s1"}"#,
        #"{"sub":"s1","preferred_username":42}"#,
    ])
    func unmappableNameClaimIsRefused(_ claims: String) {
        let world = World(claims: claims)
        #expect(world.login("x@example.com") == .refusedHere(.unmappableName))
        #expect(world.accounts.changes == [])
    }

    @Test func principalNameMapsToTheShortName() {
        let world = World(claims: #"{"sub":"s-alice","preferred_username":"Alice@Example.com"}"#)
        guard case .accepted(_, "alice", true) = world.login("Alice@Example.com") else { Issue.record("UPN did not map"); return }
        #expect(world.state.records["alice"]?.idpLogin == "Alice@Example.com")
    }

    @Test func nameClaimFromAnotherDomainIsRefused() {
        let world = World(claims: #"{"sub":"s-other","preferred_username":"alice@contractor.example"}"#)
        #expect(world.login("alice@contractor.example") == .refusedHere(.unmappableName))
        #expect(world.accounts.changes == [])
        // Without a username_suffix the domain is not checked.
        world.config.usernameSuffix = ""
        guard case .accepted(_, "alice", true) = world.login("alice@contractor.example") else { Issue.record("no suffix, no check"); return }
    }

    @Test func unreadableRecordNeitherSendsNorIgnores() {
        final class BrokenState: ManagedUserStore {
            func user(named name: String) -> Result<ManagedUser?, AccountError> { .failure(.stateFailed("corrupt")) }
            func save(_ user: ManagedUser) -> Result<Void, AccountError> { .failure(.stateFailed("corrupt")) }
            func allUsers() -> Result<[ManagedUser], AccountError> { .failure(.stateFailed("corrupt")) }
            func withLock<T>(_ body: () -> Result<T, AccountError>) -> Result<T, AccountError> { body() }
        }
        let world = World(claims: Self.alice)
        let flow = LoginFlow(config: world.config, transport: world.transport, cache: nil, accounts: world.accounts,
                             state: BrokenState(), clock: world.clock, log: RecordingLog(), canChangeAccounts: true)
        var asked = false
        #expect(flow.authenticate(typedName: "localuser") { asked = true; return .password(SecretBytes("pw".utf8)) } == .rejected(.stateUnreadable))
        #expect(!asked)
        #expect(world.transport.requests.isEmpty)
        #expect(flow.accountDecision(user: "localuser") == .denied(.recordUnreadable))
    }

    @Test func passwordOnlyNeedsTheSameLoginAndAllowedRecord() {
        let world = World(claims: Self.alice)
        world.config.ropgMFARequired = .passwordVerified
        _ = world.login()
        world.transport.answers[fixtureTokenURL] = [.success(.init(status: 400, body: #"{"error":"invalid_grant","error_codes":[50076]}"#))]
        #expect(world.login() == .acceptedPasswordOnly(localName: "alice"))
        world.state.records["alice"]?.idpLogin = "previous.owner@example.com"
        #expect(world.login() == .refusedHere(.noAccount))
        world.state.records["alice"]?.idpLogin = "alice@example.com"
        world.state.records["alice"]?.allowed = false
        #expect(world.login() == .refusedHere(.noAccount))
    }

    @Test func shortNameMustMapToItself() {
        let world = World(claims: #"{"sub":"s-bob","preferred_username":"bob"}"#)
        #expect(world.login("alice") == .refusedHere(.nameMismatch))
        #expect(world.accounts.changes == [])
    }

    @Test func cloudNameOfAnUnmanagedLocalAccountIsNeverSent() {
        // Typed as name@domain, the part before '@' is an unmanaged local account: not sent.
        let world = World(claims: #"{"sub":"s","preferred_username":"localuser"}"#)
        #expect(world.login("localuser@example.com") == .notCloudUser(.unmanagedLocalAccount))
        #expect(world.login("LocalUser@Example.com") == .notCloudUser(.unmanagedLocalAccount))
        #expect(world.login("daemon@example.com") == .notCloudUser(.systemAccount))
        #expect(world.login("root@example.com") == .notCloudUser(.root))
        #expect(!world.transport.requests.contains { $0.url == fixtureTokenURL })
        // A cloud identity whose claim maps onto a local-only name is refused after the IdP.
        let root = World(claims: #"{"sub":"s","preferred_username":"root"}"#)
        #expect(root.login("boss@example.com") == .refusedHere(.localOnlyName))
        let local = World(claims: #"{"sub":"s","preferred_username":"localuser"}"#)
        #expect(local.login("boss@example.com") == .refusedHere(.unmanagedAccount))
    }

    @Test func migrateNeverTakesOverAnAdministratorWhoIsNotListed() {
        let world = World(claims: Self.alice)
        world.accounts.uids["alice"] = 1500
        world.accounts.groups["sudo"] = ["alice"]
        world.config.migrate = true
        #expect(world.login() == .notCloudUser(.unmanagedAdmin))
        #expect(world.transport.requests.isEmpty)
        #expect(world.state.records.isEmpty)
        // Listed: taken over, and the mark is set.
        world.config.migrateAdmins = ["alice"]
        guard case .accepted(_, "alice", false) = world.login() else { Issue.record("listed admin not migrated"); return }
        #expect(world.state.records["alice"]?.origin == .migrated)
        #expect(world.accounts.isMarked("alice"))
    }

    @Test func gecosIsSanitised() {
        #expect(AccountSync.gecos(from: "Alice: the\nAdmin, =x\u{7}") == "Alice theAdmin x")
        // Bidi overrides and isolates, zero-width characters: a name that reads as another.
        #expect(AccountSync.gecos(from: "Eve \u{202E}nimda\u{202C} \u{2066}x\u{2069}\u{200B}\u{200D}\u{FEFF}") == "Eve nimda x")
        #expect(AccountSync.gecos(from: "Zoë Ångström 李") == "Zoë Ångström 李")
        let world = World(claims: #"{"sub":"s","preferred_username":"alice","name":"Evil:0:0\nroot"}"#)
        _ = world.login()
        #expect(world.accounts.gecosFields["alice"] == "Evil00root")
    }

    @Test func createNoRefusesNewAccounts() {
        let world = World(claims: Self.alice)
        world.config.create = false
        #expect(world.login() == .refusedHere(.noAccount))
    }

    @Test func failingToolIsSystemErrorAndTheRecordCameFirst() {
        let world = World(claims: Self.alice)
        world.accounts.failing = "useradd"
        guard case .accountStoreFailed(let why) = world.login() else { Issue.record("tool failure not reported"); return }
        #expect(why.description.contains("useradd failed"))
        // The record was written before the account: bound, never online, so never offline.
        #expect(world.state.records["alice"]?.subject == "s-alice")
        #expect(world.state.records["alice"]?.lastOnlineSuccess == 0)
        world.idpDown()
        guard case .offlineRefused = world.login() else { Issue.record("offline after a failed first sync"); return }
    }

    @Test func aSyncThatFailsAfterAGrantKeepsTheGrantRecordedAndAnIdPNoTakesItBack() {
        let world = World(claims: Self.alice)
        world.accounts.failing = "gpasswd -a developers"
        guard case .accountStoreFailed = world.login() else { Issue.record("tool failure not reported"); return }
        // The account exists, carries the mark and the synced password; sudo was granted and
        // recorded; the failed grant was recorded before it was tried.
        #expect(world.accounts.isMarked("alice"))
        #expect(world.accounts.passwords["alice"] == "pw1")
        #expect(world.accounts.isMember("alice", of: "sudo"))
        #expect(world.state.records["alice"]?.grantedGroups == ["sudo", "developers"])
        #expect(world.state.records["alice"]?.lastOnlineSuccess == 0)
        // Still managed: sent to the IdP, which now refuses the synced password.
        world.accounts.failing = nil
        world.reject()
        #expect(world.login() == .rejected(.badCredentials))
        #expect(world.state.records["alice"]?.lastVerdict == .revoked)
        #expect(!world.accounts.isMember("alice", of: "sudo"))
        #expect(world.state.records["alice"]?.grantedGroups == [])
        #expect(world.flow().accountDecision(user: "alice") == .denied(.revoked))
        world.idpDown()
        guard case .offlineRefused(_, .revoked) = world.login() else { Issue.record("offline after revocation"); return }
    }

    @Test func aMarkedAccountWithoutItsRecordIsSentToTheIdPNeverIgnored() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.accounts.groups["adm"]?.insert("alice") // by hand
        world.state.records = [:] // the record is lost
        #expect(world.flow().screen(typedName: "alice") == .cloud(idpLogin: "alice@example.com", localName: "alice"))
        #expect(world.flow().accountDecision(user: "alice") == .denied(.recordMissing))
        #expect(world.flow().passwordChangeDecision(user: "alice") != .notManaged)
        world.idpDown()
        guard case .offlineRefused(_, .neverOnline) = world.login() else { Issue.record("offline without a record"); return }
        // The IdP refuses: a record again (revoked), and every group CloudLogin could have
        // granted is taken away, since its grants are no longer known.
        world.reject(#"{"error":"invalid_grant","error_codes":[50057]}"#)
        #expect(world.login() == .rejected(.disabled))
        #expect(world.state.records["alice"]?.lastVerdict == .revoked)
        #expect(!world.accounts.isMember("alice", of: "sudo"))
        #expect(!world.accounts.isMember("alice", of: "developers"))
        #expect(world.accounts.isMember("alice", of: "adm"))
        // The next online success binds the account again.
        world.answer(Self.alice)
        guard case .accepted = world.login() else { Issue.record("online after a lost record"); return }
        #expect(world.state.records["alice"]?.subject == "s-alice")
        #expect(world.state.records["alice"]?.lastVerdict == .accepted)
    }

    @Test func aMarkedAccountWithoutRecordIsRestoredAtTheNextOnlineSuccess() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.state.records = [:]
        guard case .accepted(_, "alice", false) = world.login() else { Issue.record("marked account refused"); return }
        #expect(world.state.records["alice"]?.origin == .created)
        #expect(world.state.records["alice"]?.grantedGroups.sorted() == ["developers", "sudo"])
    }

    @Test func aDemotionRefusesTheCallFromAProcessThatStillHoldsTheGroup() {
        let world = World(claims: Self.alice)
        _ = world.login()
        let uid = world.accounts.uids["alice"] ?? 0
        let sudo = world.accounts.groupID(of: "sudo") ?? 0
        // sudo run from a shell opened while alice was an admin: her uid, the sudo gid.
        world.caller = FixedCaller(realUID: uid, groups: [uid, sudo])
        #expect(world.flow().accountDecision(user: "alice") == .inGoodStanding)
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","name":"Alice Example","groups":["g-dev"]}"#)
        #expect(world.login() == .refusedHere(.groupsTakenAway))
        #expect(!world.accounts.isMember("alice", of: "sudo"))
        #expect(world.state.records["alice"]?.revokedGroups == ["sudo"])
        // The same process again: refused in both phases, offline too.
        #expect(world.login() == .refusedHere(.groupsTakenAway))
        #expect(world.flow().accountDecision(user: "alice") == .denied(.groupsTakenAway))
        world.idpDown()
        #expect(world.login() == .refusedHere(.groupsTakenAway))
        // A new session (groups from the database) is fine; so is root's process (login).
        world.answer(#"{"sub":"s-alice","preferred_username":"alice","name":"Alice Example","groups":["g-dev"]}"#)
        world.caller = FixedCaller(realUID: uid, groups: [uid])
        guard case .accepted = world.login() else { Issue.record("new session refused"); return }
        world.caller = FixedCaller(realUID: 0, groups: [0, sudo])
        guard case .accepted = world.login() else { Issue.record("root's process refused"); return }
        // Granted again: no longer counted as taken away.
        world.answer(Self.alice)
        world.caller = FixedCaller(realUID: uid, groups: [uid, sudo])
        guard case .accepted = world.login() else { Issue.record("re-granted admin refused"); return }
        #expect(world.state.records["alice"]?.revokedGroups == [])
    }

    @Test func recordsOfTheFirstReleaseAreReadAndMarkedAtTheNextSignIn() throws {
        // A record as the first release wrote it (no revoked_groups), and no mark.
        let old = #"{"allowed":true,"granted_groups":["sudo"],"idp_login":"alice@example.com","last_online_success":1899990000,"last_verdict":"accepted","name":"alice","origin":"created","subject":"s-alice"}"#
        let record = try JSONDecoder().decode(ManagedUser.self, from: Data(old.utf8))
        #expect(record.revokedGroups == [])
        let world = World(claims: Self.alice)
        world.accounts.uids["alice"] = 2100
        world.accounts.groups["sudo"] = ["alice"]
        world.accounts.passwords["alice"] = "pw1"
        world.state.records["alice"] = record
        #expect(world.flow().screen(typedName: "alice") == .cloud(idpLogin: "alice@example.com", localName: "alice"))
        #expect(world.flow().accountDecision(user: "alice") == .inGoodStanding)
        world.idpDown()
        guard case .idpUnavailable(_, "alice") = world.login() else { Issue.record("offline refused after the upgrade"); return }
        world.answer(Self.alice)
        guard case .accepted(_, "alice", false) = world.login() else { Issue.record("online refused after the upgrade"); return }
        #expect(world.accounts.isMarked("alice"))
        #expect(world.state.records["alice"]?.grantedGroups.sorted() == ["developers", "sudo"])
    }

    @Test func notRootAuthenticatesWithoutChanges() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.accounts.changes = []
        guard case .accepted = world.login("alice", "pw2", canChange: false) else { Issue.record("screen locker refused"); return }
        #expect(world.accounts.changes == [])
        #expect(world.login("carol", "pw", canChange: false) == .refusedHere(.nameMismatch))
    }

    // MARK: - Offline

    @Test func offlineWithinMaxDaysIsUnavailable() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.idpDown()
        world.clock.seconds = Self.now + 13 * 86_400
        guard case .idpUnavailable(_, "alice") = world.login() else { Issue.record("offline refused within max_days"); return }
        world.clock.seconds = Self.now + 15 * 86_400
        guard case .offlineRefused(_, .tooOld) = world.login() else { Issue.record("offline allowed past max_days"); return }
    }

    @Test func offlineIsRefusedForAUserNeverSeenOnline() {
        let world = World(claims: Self.alice)
        world.idpDown()
        guard case .offlineRefused(_, .neverOnline) = world.login() else { Issue.record("offline for unknown user"); return }
    }

    @Test func offlineTurnedOff() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.idpDown()
        world.config.offlineAllowed = false
        guard case .offlineRefused(_, .turnedOff) = world.login() else { Issue.record("allow = no ignored"); return }
    }

    @Test func refusedSyncedPasswordRevokesOffline() {
        let world = World(claims: Self.alice)
        _ = world.login()
        // A typo changes nothing.
        world.transport.answers[fixtureTokenURL] = [.success(.init(status: 400, body: #"{"error":"invalid_grant"}"#))]
        #expect(world.login("alice", "typo") == .rejected(.badCredentials))
        #expect(world.state.records["alice"]?.lastVerdict == .accepted)
        // The synced password refused: the user is disabled, or the password changed.
        #expect(world.login("alice", "pw1") == .rejected(.badCredentials))
        #expect(world.state.records["alice"]?.lastVerdict == .revoked)
        let flow = LoginFlow(config: world.config, transport: world.transport, cache: nil, accounts: world.accounts,
                             state: world.state, clock: world.clock, log: RecordingLog(), canChangeAccounts: true)
        #expect(flow.accountDecision(user: "alice") == .denied(.revoked))
        world.idpDown()
        guard case .offlineRefused(_, .revoked) = world.login() else { Issue.record("offline after revocation"); return }
        // The next online success restores it.
        world.answer(Self.alice)
        guard case .accepted = world.login("alice", "pw3") else { Issue.record("online after revocation"); return }
        #expect(world.state.records["alice"]?.lastVerdict == .accepted)
        #expect(flow.accountDecision(user: "alice") == .inGoodStanding)
    }

    @Test func disabledAtEntraRevokesWhateverThePassword() {
        let world = World(claims: Self.alice)
        _ = world.login()
        world.transport.answers[fixtureTokenURL] = [.success(.init(status: 400, body: #"{"error":"invalid_grant","error_codes":[50057]}"#))]
        #expect(world.login("alice", "anything") == .rejected(.disabled))
        #expect(world.state.records["alice"]?.lastVerdict == .revoked)
    }

    @Test func passwordPhaseForManagedAndLocalUsers() {
        let world = World(claims: Self.alice)
        _ = world.login()
        let flow = LoginFlow(config: world.config, transport: world.transport, cache: nil, accounts: world.accounts,
                             state: world.state, clock: world.clock, log: RecordingLog(), canChangeAccounts: true)
        #expect(flow.passwordChangeDecision(user: "alice") == .managedByIdP(where: "https://idp.test/realms/corp"))
        #expect(flow.passwordChangeDecision(user: "root") == .notManaged)
        #expect(flow.accountDecision(user: "root") == .notManaged)
        #expect(flow.accountDecision(user: "daemon") == .notManaged)
        #expect(flow.passwordChangeDecision(user: "localuser") == .notManaged)
        #expect(flow.accountDecision(user: "localuser") == .notManaged)
    }
}
