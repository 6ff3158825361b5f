/// Why an ID token was not accepted. `kind` is a stable name for logs and tests.
public enum IDTokenError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case algorithmNotAllowed(String)
    case unknownKeyID
    case badSignature
    case wrongIssuer
    case wrongAudience
    case authorizedPartyMismatch
    case expired
    case issuedInFuture
    case notYetValid
    case missingClaim(String)

    public var kind: String {
        switch self {
        case .malformed: return "malformed"
        case .algorithmNotAllowed: return "alg_not_allowed"
        case .unknownKeyID: return "unknown_kid"
        case .badSignature: return "bad_signature"
        case .wrongIssuer: return "wrong_issuer"
        case .wrongAudience: return "wrong_audience"
        case .authorizedPartyMismatch: return "azp_mismatch"
        case .expired: return "expired"
        case .issuedInFuture: return "issued_in_future"
        case .notYetValid: return "not_yet_valid"
        case .missingClaim: return "missing_claim"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why): return "ID token is malformed (\(why))"
        case .algorithmNotAllowed(let alg): return "ID token algorithm '\(ConfigParser.printable(alg))' is not allowed (id_token_algs)"
        case .unknownKeyID: return "ID token is signed with a key that is not in the IdP's JWKS"
        case .badSignature: return "ID token signature does not verify"
        case .wrongIssuer: return "ID token issuer (iss) is not the configured issuer"
        case .wrongAudience: return "ID token audience (aud) does not name this client_id alone"
        case .authorizedPartyMismatch: return "ID token authorized party (azp) is not this client_id"
        case .expired: return "ID token has expired (check the clock)"
        case .issuedInFuture: return "ID token was issued in the future (check the clock)"
        case .notYetValid: return "ID token is not yet valid (nbf; check the clock)"
        case .missingClaim(let claim): return "ID token lacks the '\(claim)' claim"
        }
    }
}

/// A JWS in compact serialisation, split and decoded but not yet trusted.
struct CompactJWS {
    let header: [String: JSONValue]
    let claims: [String: JSONValue]
    let signingInput: [UInt8]
    let signature: [UInt8]

    init(_ token: String) throws(IDTokenError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected 3 dot-separated parts, found \(parts.count)") }
        guard let headerBytes = Base64URL.decode(parts[0]),
              let claimBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]) else { throw .malformed("a part is not base64url") }
        guard let header = headerBytes.withUnsafeBytes({ JSONValue.parse($0) })?.objectValue else { throw .malformed("header is not a JSON object") }
        guard let claims = claimBytes.withUnsafeBytes({ JSONValue.parse($0) })?.objectValue else { throw .malformed("payload is not a JSON object") }
        self.header = header
        self.claims = claims
        self.signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        self.signature = signature
    }
}

/// Validates an ID token received from the token endpoint over TLS (OIDC Core §3.1.3.7).
public struct IDTokenVerifier {
    public var issuer: String
    public var clientID: String
    public var allowedAlgorithms: [JWSAlgorithm]
    public var clockSkew: Int64

    public init(issuer: String, clientID: String, allowedAlgorithms: [JWSAlgorithm], clockSkew: Int) {
        self.issuer = issuer
        self.clientID = clientID
        self.allowedAlgorithms = allowedAlgorithms
        self.clockSkew = Int64(truncatingIfNeeded: clockSkew)
    }

    /// The token's claims if it is signed by one of `keys` and valid at `now`.
    public func verify(_ token: String, keys: KeySet, now: Int64) throws(IDTokenError) -> [String: JSONValue] {
        guard token.utf8.count <= 64 * 1024 else { throw .malformed("longer than 64 KiB") }
        let jws = try CompactJWS(token)
        guard let algorithmName = jws.header["alg"]?.stringValue else { throw .malformed("header has no alg") }
        guard let algorithm = JWSAlgorithm(rawValue: algorithmName), allowedAlgorithms.contains(algorithm) else {
            throw .algorithmNotAllowed(algorithmName)
        }
        if jws.header["crit"] != nil { throw .malformed("header has crit extensions CloudLogin does not understand") }

        if let size = algorithm.signatureSize, jws.signature.count != size {
            throw .malformed("\(algorithmName) signature must be \(size) bytes (raw R||S), found \(jws.signature.count)")
        }

        let keyID = jws.header["kid"]?.stringValue
        let candidates = keys.keys.filter { key in
            key.fits(algorithm) && (keyID == nil || key.keyID == keyID)
        }
        guard !candidates.isEmpty else { throw .unknownKeyID }
        guard candidates.contains(where: { $0.verify(jws.signingInput, signature: jws.signature, algorithm: algorithm) }) else {
            throw .badSignature
        }
        try checkClaims(jws.claims, now: now)
        return jws.claims
    }

    /// The claim checks, after the signature.
    func checkClaims(_ claims: [String: JSONValue], now: Int64) throws(IDTokenError) {
        guard let iss = claims["iss"]?.stringValue else { throw .missingClaim("iss") }
        guard iss == issuer else { throw .wrongIssuer }
        guard let sub = claims["sub"]?.stringValue, !sub.isEmpty else { throw .missingClaim("sub") }

        let audiences: [String]
        switch claims["aud"] {
        case .string(let single)?: audiences = [single]
        case .array(let values)?:
            audiences = values.compactMap(\.stringValue)
            guard audiences.count == values.count else { throw .malformed("aud holds a non-string") }
        default: throw .missingClaim("aud")
        }
        guard audiences.contains(clientID) else { throw .wrongAudience }
        let azp = claims["azp"]?.stringValue
        if claims["azp"] != nil && azp != clientID { throw .authorizedPartyMismatch }
        // Other audiences are trusted only when the token names us as its authorized party.
        if audiences.count > 1 && azp != clientID { throw .wrongAudience }

        guard let exp = claims["exp"]?.integerValue else { throw .missingClaim("exp") }
        guard let iat = claims["iat"]?.integerValue else { throw .missingClaim("iat") }
        guard now <= exp &+ clockSkew else { throw .expired }
        guard iat <= now &+ clockSkew else { throw .issuedInFuture }
        if let nbf = claims["nbf"]?.integerValue, nbf > now &+ clockSkew { throw .notYetValid }
    }
}
