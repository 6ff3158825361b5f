// libFuzzer target: a JWK Set from the IdP (RSA n/e, EC crv/x/y through OpenSSL), then a valid
// fixture token checked against whatever keys came out of it.
import CloudLogin
import FuzzDriver
import FuzzSupport

private let verifier = IDTokenVerifier(issuer: fixtureIssuer, clientID: fixtureClientID,
                                       allowedAlgorithms: JWSAlgorithm.allCases, clockSkew: 60)
/// valid_rs256 from the fixtures would tie this target to them; any compact JWS with a kid
/// exercises key selection and the OpenSSL verify path with fuzzed keys.
private let probeToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEifQ.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
private let probeES256 = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMjU2In0.eyJzdWIiOiJhbGljZSJ9." + String(repeating: "A", count: 86)

@_cdecl("fuzz_jwks_main")
public func fuzzJWKSMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzJWKS(data, size) })
}

public func fuzzJWKS(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let document = JSONValue.parse(UnsafeRawBufferPointer(start: data, count: size)),
          let keys = KeySet(document: document) else { return 0 }
    for token in [probeToken, probeES256] {
        _ = try? verifier.verify(token, keys: keys, now: fixtureNow)
    }
    return 0
}
