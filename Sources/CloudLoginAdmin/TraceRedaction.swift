import CloudLogin

/// What `cloudlogin login --trace` may show of a request to the IdP: its URL and body parsed,
/// with the value of every query parameter, form field and JSON member hidden unless its name is
/// on a short list of values that are never secret (`client_id`, `scope`, `username`, …).
///
/// An allow-list, not a search for things that look like tokens: Okta's `sessionToken` in the
/// /authorize query, `stateToken` and `passCode` in Authentication API bodies, the password,
/// the authorization `code` and PKCE verifier, and any parameter CloudLogin does not know are
/// all hidden because their names are not on the list.
public enum TraceRedaction {
    public static let hidden = "(hidden)"

    /// Query parameters and form fields whose values are shown.
    public static let shownParameters: Set<String> = [
        "client_id", "response_type", "response_mode", "scope", "redirect_uri", "prompt",
        "code_challenge_method", "grant_type", "username", "error", "error_description",
        // The MFA API: which kinds and channel were asked for (never the mfa_token or a code).
        "challenge_types_supported", "channel_hint",
    ]

    /// Members of a JSON request body whose (string, number or boolean) values are shown.
    public static let shownMembers: Set<String> = ["username", "factorType", "provider",
                                                   // Auth0's MFA challenge: the client and the authenticator challenged.
                                                   "client_id", "challenge_type", "authenticator_id"]

    /// `url` with the values of its query parameters hidden (except `shownParameters`) and its
    /// fragment hidden. Scheme, host and path are shown as they are.
    public static func url(_ url: String) -> String {
        guard let mark = url.firstIndex(where: { $0 == "?" || $0 == "#" }) else { return url }
        var shown = String(url[..<mark])
        var rest = url[mark...]
        if rest.first == "?" {
            let query = rest.dropFirst().prefix { $0 != "#" }
            shown += "?" + parameters(Array(query.utf8))
            rest = rest[query.endIndex...]
        }
        if !rest.isEmpty { shown += "#" + hidden }
        return shown
    }

    /// A request body as it may be shown, from its Content-Type header line: a form's fields or a
    /// JSON object's members, with the values hidden except `shownParameters`/`shownMembers`.
    /// Any other body is described by its size only.
    public static func body(_ body: SecretBytes, headers: [String]) -> String {
        let contentType = headers.first { $0.lowercased().hasPrefix("content-type:") }
            .map { $0.dropFirst("content-type:".count).trimmed.lowercased() } ?? ""
        if contentType.hasPrefix("application/x-www-form-urlencoded") {
            return "form body: " + body.withBytes { parameters(Array($0)) }
        }
        if contentType.hasPrefix("application/json"), case .object(let members)? = JSONValue.parse(body) {
            let shown = members.keys.sorted().map { name -> String in
                let value = members[name] ?? .null
                switch value {
                case .object: return "\(self.name(name))={…}"
                case .array: return "\(self.name(name))=[…]"
                case .null: return "\(self.name(name))=null"
                case .string(let text) where shownMembers.contains(name): return "\(name)=\(ConfigParser.printable(text))"
                case .bool(let flag) where shownMembers.contains(name): return "\(name)=\(flag)"
                case .number(let number) where shownMembers.contains(name): return "\(name)=\(number)"
                default: return "\(self.name(name))=\(hidden)"
                }
            }
            return "JSON body: {" + shown.joined(separator: ", ") + "}"
        }
        return "body of \(body.count) bytes: not shown"
    }

    /// `a=1&b=2` (form-encoded bytes) with every value hidden but those of `shownParameters`.
    /// Values stay percent-encoded, as they were sent. A field without `=` is hidden whole.
    static func parameters(_ bytes: [UInt8]) -> String {
        guard !bytes.isEmpty else { return "" }
        return bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false).map { field -> String in
            guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { return hidden }
            let name = String(decoding: field[..<equals], as: UTF8.self)
            guard shownParameters.contains(name) else { return "\(self.name(name))=\(hidden)" }
            return "\(name)=\(ConfigParser.printable(String(decoding: field[field.index(after: equals)...], as: UTF8.self)))"
        }.joined(separator: "&")
    }

    /// A parameter or member name as it may be shown: a short word of printable ASCII, else
    /// hidden too (names are CloudLogin's or the IdP's, but an IdP's link could put anything there).
    static func name(_ name: String) -> String {
        guard !name.isEmpty, name.utf8.count <= 64, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "=") }) else {
            return hidden
        }
        return name
    }
}
