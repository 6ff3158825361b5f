/// base64url (RFC 4648 §5) as JWS and JWK use it: no padding, no line breaks.
public enum Base64URL {
    /// Decodes `text`, or nil if it holds anything but the base64url alphabet (a trailing
    /// `=` padding is tolerated only when `allowPadding` is set, as some JWKS carry it).
    public static func decode<S: StringProtocol>(_ text: S, allowPadding: Bool = false) -> [UInt8]? {
        var sextets: [UInt8] = []
        sextets.reserveCapacity(text.utf8.count)
        var sawPadding = false
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") && allowPadding {
                sawPadding = true
                continue
            }
            if sawPadding { return nil }
            guard let value = sextet(byte) else { return nil }
            sextets.append(value)
        }
        if sextets.count % 4 == 1 { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(sextets.count * 3 / 4)
        var index = 0
        while index + 4 <= sextets.count {
            let a = sextets[index], b = sextets[index + 1], c = sextets[index + 2], d = sextets[index + 3]
            output.append(a << 2 | b >> 4)
            output.append((b & 0x0F) << 4 | c >> 2)
            output.append((c & 0x03) << 6 | d)
            index += 4
        }
        let rest = sextets.count - index
        if rest >= 2 {
            let a = sextets[index], b = sextets[index + 1]
            output.append(a << 2 | b >> 4)
            if rest == 3 {
                let c = sextets[index + 2]
                output.append((b & 0x0F) << 4 | c >> 2)
            }
        }
        return output
    }

    /// base64url without padding (PKCE verifiers, state and nonce values).
    public static func encode(_ bytes: [UInt8]) -> String {
        let output = SecretBytes(capacity: bytes.count * 4 / 3 + 4)
        bytes.withUnsafeBytes { encodeStandard($0, into: output) }
        let standard = output.withBytes { String(decoding: $0, as: UTF8.self) }
        return String(standard.compactMap { character -> Character? in
            switch character {
            case "+": return "-"
            case "/": return "_"
            case "=": return nil
            default: return character
            }
        })
    }

    /// Standard base64 with padding (for HTTP Basic).
    public static func encodeStandard(_ bytes: UnsafeRawBufferPointer, into output: SecretBytes) {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1: UInt8 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2: UInt8 = index + 2 < bytes.count ? bytes[index + 2] : 0
            output.append(alphabet[Int(truncatingIfNeeded: b0 >> 2)])
            output.append(alphabet[Int(truncatingIfNeeded: (b0 & 0x03) << 4 | b1 >> 4)])
            output.append(index + 1 < bytes.count ? alphabet[Int(truncatingIfNeeded: (b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[Int(truncatingIfNeeded: b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}

/// application/x-www-form-urlencoded, as the token endpoint expects (RFC 6749 Appendix B).
public enum FormEncoding {
    /// Appends `bytes` percent-encoded: unreserved characters as they are, all else as %XX.
    public static func append(_ bytes: UnsafeRawBufferPointer, to output: SecretBytes) {
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(byte)
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hex[Int(truncatingIfNeeded: byte >> 4)])
                output.append(hex[Int(truncatingIfNeeded: byte & 0x0F)])
            }
        }
    }

    public static func append(_ text: String, to output: SecretBytes) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0), to: output) }
    }

    public static func append(_ secret: SecretBytes, to output: SecretBytes) {
        secret.withBytes { append($0, to: output) }
    }
}
