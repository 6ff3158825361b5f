/// A value Okta sends as a name (a transaction's state, a factor result, an error code): the
/// names CloudLogin knows are cases, any other is `other(name)`, so a name Okta adds later is
/// kept as sent, never dropped, and a `switch` over the cases stays exhaustive.
public protocol OktaName: Equatable, Sendable, CustomStringConvertible {
    /// The cases CloudLogin knows, each with its own `name`.
    static var known: [Self] { get }
    /// A name CloudLogin does not know, as Okta sent it.
    static func other(_ name: String) -> Self
    /// Okta's name for the value, exactly as it is sent.
    var name: String { get }
}

extension OktaName {
    /// The value Okta names `name`: the known case of that name, else `other(name)`.
    public init(_ name: String) {
        self = Self.known.first { $0.name == name } ?? .other(name)
    }

    public var description: String { name }
}
