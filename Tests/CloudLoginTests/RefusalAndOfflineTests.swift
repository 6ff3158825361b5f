@testable import CloudLogin
import Testing

/// What each IdP answer does to a managed user within max_days, through the whole flow: the
/// outcome (whose PAM code PAMResult gives), whether offline sign-in is revoked, and so what a
/// later outage leads to.
@Suite struct RefusalAndOfflineTests {
    enum Afterwards: Equatable { case offlineAllowed, revoked }

    @Test(arguments: [
        // An unknown OAuth error on a 4xx is a refusal, not "misconfigured" (which would let
        // pam_unix check the synced password), and a refusal of this attempt only.
        (400, #"{"error":"something_new"}"#, Outcome.rejected(.unrecognizedRefusal), Afterwards.offlineAllowed),
        // Auth0: blocked in the dashboard, denied by an Action, brute-force protection (429).
        (403, #"{"error":"unauthorized","error_description":"user is blocked"}"#, .rejected(.blocked), .revoked),
        (403, #"{"error":"access_denied","error_description":"Unauthorized"}"#, .rejected(.blocked), .revoked),
        (429, #"{"error":"too_many_attempts","error_description":"Your account has been blocked after multiple consecutive login attempts."}"#, .rejected(.blocked), .revoked),
        // Entra: disabled, locked (Smart Lockout), blocked by Conditional Access.
        (400, #"{"error":"invalid_grant","error_codes":[50057]}"#, .rejected(.disabled), .revoked),
        (400, #"{"error":"invalid_grant","error_codes":[50053]}"#, .rejected(.blocked), .revoked),
        (400, #"{"error":"interaction_required","error_codes":[53003]}"#, .rejected(.accessPolicy), .revoked),
        // A wrong password that is not the synced one changes nothing.
        (400, #"{"error":"invalid_grant"}"#, .rejected(.badCredentials), .offlineAllowed),
    ] as [(Int, String, Outcome, Afterwards)])
    func refusalOfAManagedUser(_ status: Int, _ body: String, _ outcome: Outcome, _ afterwards: Afterwards) {
        let world = AccountSyncTests.World(claims: AccountSyncTests.alice)
        _ = world.login()
        world.transport.answers[fixtureTokenURL] = [.success(.init(status: status, body: body))]
        world.clock.seconds += 86_400
        #expect(world.login("alice", "not the synced one") == outcome)
        #expect(world.state.records["alice"]?.lastVerdict == (afterwards == .revoked ? .revoked : .accepted))
        world.idpDown()
        switch (world.login(), afterwards) {
        case (.idpUnavailable(let problem, "alice"), .offlineAllowed):
            #expect(problem == IdPProblem(stage: .token, cause: .transport(.connect("refused"))))
        case (.offlineRefused(_, .revoked), .revoked):
            break
        case (let other, _):
            Issue.record("after \(status) \(body): \(other)")
        }
    }

    /// The client-side codes stay misconfigurations: the offline rule applies, with the typed
    /// problem in the outcome.
    @Test(arguments: [
        (401, #"{"error":"invalid_client"}"#, IdPProblem.Cause.oauthError(.invalidClient, status: 401)),
        (400, #"{"error":"unauthorized_client"}"#, .oauthError(.unauthorizedClient, status: 400)),
        (400, #"{"error":"unsupported_grant_type"}"#, .oauthError(.unsupportedGrantType, status: 400)),
        (400, #"{"error":"invalid_scope"}"#, .oauthError(.invalidScope, status: 400)),
        (400, #"{"error":"invalid_request"}"#, .oauthError(.invalidRequest, status: 400)),
        (400, #"{"error":"invalid_grant","error_codes":[7000218]}"#, .entraCode(7000218)),
        (403, "<html>Access denied by the proxy</html>", .notJSON(status: 403)),
        (404, "", .http(status: 404)),
    ] as [(Int, String, IdPProblem.Cause)])
    func misconfigurationKeepsTheOfflineRule(_ status: Int, _ body: String, _ cause: IdPProblem.Cause) {
        let world = AccountSyncTests.World(claims: AccountSyncTests.alice)
        _ = world.login()
        world.transport.answers[fixtureTokenURL] = [.success(.init(status: status, body: body))]
        #expect(world.login() == .idpMisconfigured(IdPProblem(stage: .token, cause: cause), localName: "alice"))
        #expect(world.state.records["alice"]?.lastVerdict == .accepted)
        guard case .offlineRefused(let problem, .neverOnline) = world.login("carol", "pw") else { Issue.record("offline for a stranger"); return }
        #expect(problem.kind == .misconfigured)
    }

    @Test func anOutageCarriesItsTypedProblem() {
        let world = AccountSyncTests.World(claims: AccountSyncTests.alice)
        _ = world.login()
        world.transport.answers[fixtureTokenURL] = [.success(.init(status: 503, body: ""))]
        let outcome = world.login()
        #expect(outcome == .idpUnavailable(IdPProblem(stage: .token, cause: .http(status: 503)), localName: "alice"))
        #expect(outcome.summary == "IdP unavailable, offline sign-in allowed: the token endpoint answered HTTP 503")
    }
}
