/// The names a user may type, and how they become an IdP login.
public enum LoginName {
    /// A local user or group name: `^[a-z_][a-z0-9_-]{0,31}$`.
    public static func isValidLocalName<S: StringProtocol>(_ name: S) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 32 else { return false }
        guard (first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) || first == UInt8(ascii: "_") else { return false }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    /// A user principal name as typed at `login`: `local@domain`, ASCII letters, digits and
    /// `. _ % + ' -` only, at most 254 bytes.
    public static func isValidPrincipalName(_ name: String) -> Bool {
        let parts = name.split(separator: "@", omittingEmptySubsequences: false)
        guard name.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        let localOK = parts[0].utf8.allSatisfy { byte in
            isASCIIAlphanumeric(byte) || ".-_%+'".utf8.contains(byte)
        }
        let domainOK = parts[1].utf8.allSatisfy { isASCIIAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
        return localOK && domainOK && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
    }

    /// The login to send to the IdP for a typed name: a UPN as it is, a short name with
    /// `username_suffix` appended. Nil for a name that is neither.
    public static func idpLogin(typed: String, suffix: String) -> String? {
        if typed.contains("@") {
            return isValidPrincipalName(typed) ? typed : nil
        }
        guard isValidLocalName(typed) else { return nil }
        return typed + suffix
    }

    private static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
