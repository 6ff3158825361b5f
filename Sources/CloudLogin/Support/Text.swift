extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    package var trimmed: String {
        let start = firstIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" }) ?? endIndex
        let end = lastIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" })
        guard let end, start <= end else { return "" }
        return String(self[start...end])
    }
}

extension String {
    /// The text with line breaks removed (header values end in CRLF).
    func replacingNewlines() -> String {
        String(filter { $0 != "\r" && $0 != "\n" && $0 != "\r\n" })
    }
}

/// Checks on the https URLs CloudLogin talks to.
public enum HTTPSURL {
    /// An https URL with a host, no user info, no fragment, no white space or control bytes.
    public static func isValid(_ value: String) -> Bool {
        guard value.hasPrefix("https://"), value.utf8.count <= 2048 else { return false }
        guard value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        let rest = value.dropFirst("https://".count)
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
        guard !authority.isEmpty, !authority.contains("@") else { return false }
        return !value.contains("#")
    }
}
