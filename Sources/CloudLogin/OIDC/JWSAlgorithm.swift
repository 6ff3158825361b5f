import COpenSSL

/// The JWS algorithms CloudLogin accepts for ID tokens: asymmetric only. `none` and the HMAC
/// family are not representable, so a token cannot talk CloudLogin into them.
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    case RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384

    /// The JWK key type the algorithm needs.
    var keyType: String {
        switch self {
        case .RS256, .RS384, .RS512, .PS256, .PS384, .PS512: return "RSA"
        case .ES256, .ES384: return "EC"
        }
    }

    /// The EC curve the algorithm is defined for (RFC 7518 §3.4).
    var curve: String? {
        switch self {
        case .ES256: return "P-256"
        case .ES384: return "P-384"
        default: return nil
        }
    }

    /// The fixed JWS signature length of ECDSA algorithms (RFC 7518 §3.4), nil for RSA.
    var signatureSize: Int? {
        switch self {
        case .ES256: return 64
        case .ES384: return 96
        default: return nil
        }
    }

    var digest: String {
        switch self {
        case .RS256, .PS256, .ES256: return "SHA256"
        case .RS384, .PS384, .ES384: return "SHA384"
        case .RS512, .PS512: return "SHA512"
        }
    }

    /// Padding selector for COpenSSL_verify: 0 PKCS#1 v1.5, 1 PSS, 2 ECDSA (raw R||S).
    var paddingMode: Int32 {
        switch self {
        case .RS256, .RS384, .RS512: return 0
        case .PS256, .PS384, .PS512: return 1
        case .ES256, .ES384: return 2
        }
    }
}

/// A public key from the IdP's JWKS, ready for OpenSSL.
public final class SigningKey {
    public let keyID: String?
    public let keyType: String
    /// The JWK's `alg`, when it names one.
    public let algorithm: String?
    public let curve: String?
    private let key: OpaquePointer

    /// Builds the key from a JWK object, or nil for keys CloudLogin cannot use (encryption
    /// keys, symmetric keys, unknown types, malformed or too-small parameters).
    public init?(jwk: [String: JSONValue]) {
        guard let kty = jwk["kty"]?.stringValue else { return nil }
        if let use = jwk["use"]?.stringValue, use != "sig" { return nil }
        let keyID = jwk["kid"]?.stringValue
        let algorithm = jwk["alg"]?.stringValue
        switch kty {
        case "RSA":
            guard let n = jwk["n"]?.stringValue.flatMap({ Base64URL.decode($0, allowPadding: true) }),
                  let e = jwk["e"]?.stringValue.flatMap({ Base64URL.decode($0, allowPadding: true) }),
                  !n.isEmpty, !e.isEmpty,
                  let key = COpenSSL_rsa_key(n, n.count, e, e.count) else { return nil }
            guard COpenSSL_key_bits(key) >= 2048 else {
                COpenSSL_key_free(key)
                return nil
            }
            self.key = key
            self.curve = nil
        case "EC":
            guard let crv = jwk["crv"]?.stringValue,
                  let x = jwk["x"]?.stringValue.flatMap({ Base64URL.decode($0, allowPadding: true) }),
                  let y = jwk["y"]?.stringValue.flatMap({ Base64URL.decode($0, allowPadding: true) }),
                  !x.isEmpty, !y.isEmpty,
                  let key = COpenSSL_ec_key(crv, x, x.count, y, y.count) else { return nil }
            self.key = key
            self.curve = crv
        default:
            return nil
        }
        self.keyID = keyID
        self.keyType = kty
        self.algorithm = algorithm
    }

    deinit { COpenSSL_key_free(key) }

    /// Whether this key may verify a token signed with `algorithm`.
    func fits(_ algorithm: JWSAlgorithm) -> Bool {
        guard keyType == algorithm.keyType else { return false }
        if let own = self.algorithm, own != algorithm.rawValue { return false }
        if let curve = algorithm.curve, curve != self.curve { return false }
        return true
    }

    /// Checks `signature` over `signingInput`.
    func verify(_ signingInput: [UInt8], signature: [UInt8], algorithm: JWSAlgorithm) -> Bool {
        guard !signature.isEmpty, !signingInput.isEmpty else { return false }
        return COpenSSL_verify(key, algorithm.digest, algorithm.paddingMode,
                               signingInput, signingInput.count, signature, signature.count) == 1
    }
}

/// The IdP's signing keys (a JWK Set, RFC 7517 §5).
public struct KeySet {
    public let keys: [SigningKey]

    public init(keys: [SigningKey]) { self.keys = keys }

    /// Parses a JWKS document; unusable keys are skipped. Nil if it is not a JWKS at all.
    public init?(document: JSONValue) {
        guard let entries = document["keys"]?.arrayValue else { return nil }
        keys = entries.compactMap { $0.objectValue.flatMap(SigningKey.init(jwk:)) }
    }
}
