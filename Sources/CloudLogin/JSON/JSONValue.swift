/// A JSON document as the IdP sent it. Members CloudLogin does not know are kept and ignored,
/// as RFC 6749 §5.1 asks of clients.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Deepest nesting accepted. IdP documents nest two or three levels; a hostile document
    /// nested thousands of levels deep is refused before any recursive decoding.
    public static let maximumDepth = 32

    /// Parses `bytes` as a JSON document, or nil for anything that is not one: invalid UTF-8,
    /// trailing garbage, nesting deeper than `maximumDepth`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        guard nestingDepth(of: bytes) <= maximumDepth else { return nil }
        guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
        let data = Data(bytes)
        return try? JSONDecoder().decode(JSONValue.self, from: data)
    }

    public static func parse(_ secret: SecretBytes) -> JSONValue? {
        secret.withBytes { parse($0) }
    }

    public static func parse(_ text: String) -> JSONValue? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// The deepest bracket nesting outside string literals; a cheap scan with no recursion.
    static func nestingDepth(of bytes: UnsafeRawBufferPointer) -> Int {
        var depth = 0, deepest = 0
        var inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// A JSON number that is a whole number of seconds within Int64, as `exp` and `iat` are.
    public var integerValue: Int64? {
        guard case .number(let value) = self, value.isFinite,
              value >= -9.0e15, value <= 9.0e15 else { return nil }
        return Int64(exactly: value.rounded(.down))
    }

    /// Strings of an array of strings; other elements are skipped.
    public var stringArray: [String]? {
        guard case .array(let values) = self else { return nil }
        return values.compactMap(\.stringValue)
    }
}

extension JSONValue: Decodable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}
