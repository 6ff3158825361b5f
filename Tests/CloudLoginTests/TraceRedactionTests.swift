import CloudLogin
@testable import CloudLoginAdmin
import Testing

@Suite struct TraceRedactionTests {
    @Test func theSessionTokenInTheAuthorizeQueryIsHidden() {
        let url = "https://example.okta.com/oauth2/default/v1/authorize?client_id=0oa1&response_type=code&scope=openid%20groups"
            + "&redirect_uri=com.example%3A%2Fcb&state=s3cr3tstate&nonce=n0nce&code_challenge=abc&code_challenge_method=S256"
            + "&prompt=none&sessionToken=20111SeSsIoNtOkEn"
        #expect(TraceRedaction.url(url) == "https://example.okta.com/oauth2/default/v1/authorize?client_id=0oa1&response_type=code"
            + "&scope=openid%20groups&redirect_uri=com.example%3A%2Fcb&state=(hidden)&nonce=(hidden)&code_challenge=(hidden)"
            + "&code_challenge_method=S256&prompt=none&sessionToken=(hidden)")
    }

    @Test(arguments: [
        ("https://idp.test/token", "https://idp.test/token"),
        ("https://idp.test/cb?code=abc&state=xyz", "https://idp.test/cb?code=(hidden)&state=(hidden)"),
        ("app:/cb#access_token=abc&id_token=def", "app:/cb#(hidden)"),
        ("https://idp.test/x?access_token=abc#frag", "https://idp.test/x?access_token=(hidden)#(hidden)"),
        ("https://idp.test/x?token", "https://idp.test/x?(hidden)"),
        ("https://idp.test/x?a%3Db=1&=2&error=login_required", "https://idp.test/x?a%3Db=(hidden)&(hidden)=(hidden)&error=login_required"),
        ("https://idp.test/x?", "https://idp.test/x?"),
    ])
    func everyUnlistedValueIsHidden(_ url: String, _ shown: String) {
        #expect(TraceRedaction.url(url) == shown)
    }

    @Test func aPasswordGrantShowsItsFieldsButNotThePasswordOrSecret() {
        let body = SecretBytes("grant_type=password&username=alice%40example.com&password=hunter2%20x&scope=openid&client_id=c&client_secret=s3".utf8)
        let shown = TraceRedaction.body(body, headers: ["Accept: application/json", "Content-Type: application/x-www-form-urlencoded"])
        #expect(shown == "form body: grant_type=password&username=alice%40example.com&password=(hidden)&scope=openid&client_id=c&client_secret=(hidden)")
    }

    @Test func oktaBodiesShowTheirMembersButNotTheStateTokenOrCodes() {
        let authn = SecretBytes(#"{"username":"alice@example.com","password":"hunter2","options":{"warnBeforePasswordExpired":true}}"#.utf8)
        #expect(TraceRedaction.body(authn, headers: ["content-type: application/json"])
                == "JSON body: {options={…}, password=(hidden), username=alice@example.com}")
        let verify = SecretBytes(#"{"stateToken":"007abcSTATE","passCode":"123456","answer":null,"list":[1]}"#.utf8)
        #expect(TraceRedaction.body(verify, headers: ["Content-Type: application/json; charset=UTF-8"])
                == "JSON body: {answer=null, list=[…], passCode=(hidden), stateToken=(hidden)}")
    }

    @Test func anyOtherBodyIsOnlyMeasured() {
        #expect(TraceRedaction.body(SecretBytes("secret".utf8), headers: []) == "body of 6 bytes: not shown")
        #expect(TraceRedaction.body(SecretBytes("[\"token\"]".utf8), headers: ["Content-Type: application/json"]) == "body of 9 bytes: not shown")
    }
}
