import CloudLogin
@testable import CloudLoginAdmin
import Testing

/// `cloudlogin check`'s reading of pam.d stacks: which placements of pam_cloudlogin bypass it or
/// lock people out.
@Suite struct PAMStackTests {
    static let good = "[success=done ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die]"

    func findings(_ files: [String: String]) -> [String] {
        PAMStack.check(files: Array(files.keys), read: { files[$0] }).map(\.id)
    }

    @Test func parsesBracketControlsWithSpacesContinuationsAndComments() {
        let rules = PAMStack.parse("""
        # comment
        auth [success=2 ignore=ignore   default=die] pam_cloudlogin.so debug # trailing
        -session optional pam_systemd.so
        auth required \\
            pam_unix.so try_first_pass
        @include common-account
        """, file: "svc")
        #expect(rules.count == 7)
        #expect(rules[0].control == .actions(["success": "2", "ignore": "ignore", "default": "die"]))
        #expect(rules[0].arguments == ["debug"] && rules[0].line == 2)
        #expect(rules[1].type == "session")
        #expect(rules[2].isUnix && rules[2].line == 4 && rules[2].arguments == ["try_first_pass"])
        #expect(rules[3...].allSatisfy { $0.control == .keyword("include") && $0.module == "common-account" })
    }

    @Test func keywordControlsExpandAsPamConfSays() {
        #expect(PAMControl.keyword("sufficient").action(for: "auth_err") == "ignore")
        #expect(PAMControl.keyword("sufficient").action(for: "success") == "done")
        #expect(PAMControl.keyword("required").action(for: "authinfo_unavail") == "bad")
        #expect(PAMControl.keyword("required").action(for: "ignore") == "ignore")
        #expect(PAMControl.actions(["success": "ok"]).action(for: "authinfo_unavail") == "bad")
    }

    @Test func theShippedAndPamAuthUpdateStacksAreFine() {
        #expect(findings(["common-auth": """
        auth [success=2 ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die] pam_cloudlogin.so
        auth [success=1 default=ignore] pam_unix.so nullok try_first_pass
        auth requisite pam_deny.so
        auth required pam_permit.so
        """, "common-account": "account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so\naccount [success=ok new_authtok_reqd=ok ignore=ignore module_unknown=ignore default=bad] pam_cloudlogin.so\n"]).isEmpty)
        #expect(findings(["sudo": "auth \(Self.good) /lib/security/pam_cloudlogin.so\n@include common-auth\n",
                          "common-auth": "auth required pam_unix.so\n"]).isEmpty)
    }

    @Test(arguments: [
        ("auth [success=1 default=ignore] pam_unix.so\nauth \(PAMStackTests.good) pam_cloudlogin.so\n", "pam.order"),
        ("auth required pam_cloudlogin.so\nauth required pam_unix.so\n", "pam.lockout"),
        ("auth requisite pam_cloudlogin.so\nauth required pam_unix.so\n", "pam.lockout"),
        ("auth sufficient pam_cloudlogin.so\nauth required pam_unix.so\n", "pam.refusal-not-final"),
        ("auth optional pam_cloudlogin.so\nauth required pam_unix.so\n", "pam.refusal-not-final"),
        ("auth [success=done authinfo_unavail=ignore default=die] pam_cloudlogin.so\nauth required pam_unix.so\n", "pam.local-users-refused"),
        ("auth \(PAMStackTests.good) pam_cloudlogin.so\nauth required pam_permit.so\n", "pam.no-unix"),
        ("auth \(PAMStackTests.good) pam_cloudlogin.so\nauth required pam_unix.so\naccount sufficient pam_cloudlogin.so\n", "pam.account-sufficient"),
    ])
    func dangerousPlacementsAreNamed(stack: String, id: String) {
        #expect(findings(["svc": stack]).contains(id))
    }

    @Test func includesAreFollowedButLoopsEnd() {
        #expect(findings(["a": "auth \(Self.good) pam_cloudlogin.so\n@include b\n", "b": "@include a\n"]) == ["pam.no-unix"])
    }

    /// A line without module_unknown=ignore works today but refuses everyone once the module is
    /// removed: a warning (not an error: nothing is wrong while the package is installed).
    @Test func aLineThatFailsOnceTheModuleIsRemovedIsAWarning() {
        let found = PAMStack.check(files: ["svc"], read: { _ in
            "auth [success=done ignore=ignore authinfo_unavail=ignore default=die] pam_cloudlogin.so\nauth required pam_unix.so\naccount required pam_cloudlogin.so\n"
        })
        #expect(found.map(\.id) == ["pam.removal-lockout", "pam.removal-lockout"])
        #expect(found.allSatisfy { !$0.bitesNow })
        #expect(found.map(\.line) == [1, 3])
    }
}
