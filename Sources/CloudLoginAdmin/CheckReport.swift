import CloudLogin

/// What `check` (and the IdP half of `setup`) found, printed as it goes unless the output is
/// JSON, and the exit status that follows.
public struct CheckReport {
    /// `info`: something worth knowing that is neither fine nor wrong (sshd is not installed,
    /// its effective config could not be asked for); it does not change the exit status.
    public enum Status: String, Sendable { case ok, info, warning, error }
    /// Which exit status an error leads to.
    public enum Area: Sendable { case none, config, idp, local }

    public struct Finding: Equatable, Sendable {
        public var id: String
        public var status: Status
        public var area: Area
        public var message: String
        public var fix: String?
    }

    public let json: Bool
    public private(set) var findings: [Finding] = []
    /// Where text lines go (standard output).
    private let output: (String) -> Void

    public init(json: Bool, output: @escaping (String) -> Void = { print($0) }) {
        self.json = json
        self.output = output
    }

    /// Keeps a finding without printing it.
    public mutating func record(_ id: String, _ status: Status, _ area: Area, _ message: String, fix: String?) {
        findings.append(Finding(id: id, status: status, area: area, message: message, fix: fix))
    }

    public mutating func add(_ id: String, _ status: Status, _ area: Area, _ message: String, fix: String?) {
        record(id, status, area, message, fix: fix)
        guard !json else { return }
        switch status {
        case .ok: output("ok: \(message)")
        case .info: output("info: \(message)")
        case .warning: output("warning: \(message)")
        case .error: output("PROBLEM: \(message)")
        }
        if let fix, status != .ok { output("  fix: \(fix)") }
    }

    /// Adds an indented detail line to the text output.
    public func detail(_ text: String) {
        if !json { output("  \(text)") }
    }

    /// A config error wins over the IdP, the IdP over local problems.
    public var exitStatus: ExitStatus {
        let areas = findings.filter { $0.status == .error }.map(\.area)
        if areas.contains(.config) { return .configUnusable }
        if areas.contains(.idp) { return .identityProviderFails }
        if areas.contains(.local) { return .localProblem }
        return .success
    }

    /// The last thing `check` prints: the JSON object (`--json`), or the verdict line.
    public func summary(configPath: String) -> String {
        let code = exitStatus.code
        if json {
            let items: [JSONText] = findings.map { finding in
                .object([("id", .string(finding.id)), ("status", .string(finding.status.rawValue)),
                         ("message", .string(finding.message)), ("fix", .optional(finding.fix))])
            }
            return JSONText.object([("config", .string(configPath)), ("ok", .bool(code == 0)),
                                    ("exit_code", .int(Int64(truncatingIfNeeded: code))), ("findings", .array(items))]).rendered
        }
        if code == 0 {
            let warnings = findings.filter { $0.status == .warning }.count
            return warnings == 0 ? "check: no problems" : "check: no problems, \(warnings) warning(s)"
        }
        return "check: \(findings.filter { $0.status == .error }.count) problem(s) (exit \(code))"
    }
}
