/// Builds a small JSON object into wiped storage, for request bodies that carry a password or
/// a state token. Only string and boolean members, which is all the Okta API needs.
public struct JSONBody {
    public let bytes = SecretBytes(capacity: 256)
    private var first = true

    public init() {
        bytes.append(UInt8(ascii: "{"))
    }

    public mutating func add(_ key: String, _ value: String) {
        var value = value
        value.withUTF8 { add(key, bytes: UnsafeRawBufferPointer($0)) }
    }

    public mutating func add(_ key: String, _ value: SecretBytes) {
        value.withBytes { add(key, bytes: $0) }
    }

    /// A member whose value is raw JSON written by the caller (e.g. a nested object).
    public mutating func addRaw(_ key: String, _ json: String) {
        separator()
        appendString(key)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(json)
    }

    /// The finished document.
    public mutating func finish() -> SecretBytes {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private mutating func add(_ key: String, bytes value: UnsafeRawBufferPointer) {
        separator()
        appendString(key)
        bytes.append(UInt8(ascii: ":"))
        appendString(value)
    }

    private mutating func separator() {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
    }

    private func appendString(_ text: String) {
        var text = text
        text.withUTF8 { appendString(UnsafeRawBufferPointer($0)) }
    }

    /// A JSON string: quotes, backslashes and control characters escaped, UTF-8 kept as is.
    private func appendString(_ value: UnsafeRawBufferPointer) {
        let hex = Array("0123456789abcdef".utf8)
        bytes.append(UInt8(ascii: "\""))
        for byte in value {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                bytes.append(UInt8(ascii: "\\"))
                bytes.append(byte)
            case 0..<0x20, 0x7F:
                bytes.append("\\u00")
                bytes.append(hex[Int(truncatingIfNeeded: byte >> 4)])
                bytes.append(hex[Int(truncatingIfNeeded: byte & 0x0F)])
            default:
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
