// libFuzzer target: IDTokenVerifier.verify on mutated compact JWS against the fixture keys
// (RSA with and without alg, P-256), at the fixtures' clock.
import CloudLogin
import FuzzDriver
import FuzzSupport

private let keys = fixtureKeys()
private let verifier = IDTokenVerifier(issuer: fixtureIssuer, clientID: fixtureClientID,
                                       allowedAlgorithms: JWSAlgorithm.allCases, clockSkew: 60)

@_cdecl("fuzz_jwt_main")
public func fuzzJWTMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzJWT(data, size) })
}

public func fuzzJWT(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let token = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let claims = try verifier.verify(token, keys: keys, now: fixtureNow)
        touch(.object(claims))
    } catch {
        _ = error.kind
        _ = error.description
    }
    return 0
}
