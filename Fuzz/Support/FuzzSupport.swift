// Shared pieces of the libFuzzer targets: fixture keys and an in-memory IdP.
import CloudLogin

/// The public keys of Tests/CloudLoginTests/Fixtures/id_tokens.json (rsa1 RS256 with alg,
/// rsa2 without alg, ec256, ec384): the JWT target verifies mutated tokens against them.
public let fixtureJWKS = """
{"keys":[
{"kty":"RSA","kid":"rsa1","use":"sig","alg":"RS256","e":"AQAB","n":"tSVXejKfiINbpAvrqZ1qocA5dPTelP2cxECUsrJ8mNTlJzwkyfV2ivNxAe5v0iNuahu0vteFEsV_1OR6Vjq5XbVZk_qAjB_XNcdmovDxXqQBS7a4tVqxlWgb4Az6DYbhpnzwxe38mUXyPWZQ1qJotFX7JzwFweJwBnD9ZXv5el-ZGguh-oPUaVMKBtayZ-_3gcipNg_tvqiBvUqtCaQ4Z4Zbrrlg_7CWGyF0k1eCFF9aAeENNGI6U-pEj8xQ1RDuHUGbcVGNgwrBAX7hmFAg1GnZuT8pJtogw1-VZ3OYwyWvUkIug66J3T0NMb4_cNaS83EMWmXjO3kz0ZpH2QbKbQ"},
{"kty":"RSA","kid":"rsa2","use":"sig","e":"AQAB","n":"wEXslBFp5os_yUk8QzFP468ITt6txNiBk-pEFXQlyDNM5rkeDuar3cKotQI-6oKkZ2EGk6ldhr5VRybM5CXh0r_R83B6ds_dowGOreJJ99FeadckiBChpcZY-CcSnrTfKfWkbLTDuyZjbhKahzTvVIpqUkjpg4Cp6uDZ4VQfIu6Tvvbxy9LWdY3_xBnn-hZQweMOc-vMOfMVBOe1As-2vnYWULFY3TdO-vyO0pE_L_YQMn8SUe2vIKYsJtLIZCCGYHRzyHVW0zQdy-celp8yJ06KLBwgXjjNv4p_Yj-VvD20Yr9Vg3UnwtJh42nNnn-_2Amt87ylAextgJ5MLHW19Q"},
{"kty":"EC","kid":"ec256","use":"sig","alg":"ES256","crv":"P-256","x":"1j8aOW8FOAomj2pf1WMOJwexJ3LOKRihnZUoD1_NQG8","y":"9eZpS4iLkiDtF1Ll9wC1Zclk9ColEyBVa4duiBiCYb0"}
]}
"""

public let fixtureIssuer = "https://idp.test/realms/corp"
public let fixtureClientID = "linux-login"
/// The fixtures' clock (id_tokens.json "now").
public let fixtureNow: Int64 = 1_900_000_000

public func fixtureKeys() -> KeySet {
    KeySet(document: JSONValue.parse(fixtureJWKS) ?? .null) ?? KeySet(keys: [])
}

/// Walks a JSON value the way the login flow reads claims, so lazily computed accessors run.
public func touch(_ value: JSONValue?, depth: Int = 0) {
    guard let value, depth < 64 else { return }
    _ = value.stringValue
    _ = value.integerValue
    _ = value.stringArray
    if let members = value.objectValue {
        for (_, member) in members { touch(member, depth: depth + 1) }
    }
    if let elements = value.arrayValue {
        for element in elements { touch(element, depth: depth + 1) }
    }
}

/// A clock stopped at the fixtures' "now".
public struct FixtureClock: Clock {
    public init() {}
    public func now() -> Int64 { fixtureNow }
    public func monotonicMilliseconds() -> Int64 { 1_000_000 }
    public func sleep(milliseconds: Int64) {}
}

/// An IdP in memory: every request gets `answer`.
public final class OneAnswerTransport: HTTPTransport {
    let status: Int
    let body: [UInt8]
    let jwks: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
        self.jwks = Array(fixtureJWKS.utf8)
    }

    public func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        if request.url.hasSuffix("/jwks") { return .success(HTTPResponse(status: 200, body: SecretBytes(jwks))) }
        return .success(HTTPResponse(status: status, body: SecretBytes(body)))
    }
}
