import Glibc

/// sshd's configuration as sshd keeps it (sshd_config(5)): keywords are case-insensitive and,
/// unless a Match block applies, the first value read for a keyword is the one used. Read either
/// from `sshd -T` (the effective configuration, lower-case keywords, one per line) or, when that
/// cannot run, from the files themselves.
public struct SSHDConfig: Equatable, Sendable {
    /// One keyword's first value.
    public struct Setting: Equatable, Sendable {
        /// The keyword as written (`ChallengeResponseAuthentication`, `usepam`, ...).
        public var keyword: String
        /// Its arguments, quotes removed.
        public var values: [String]
        /// Where it was read; nil for `sshd -T`.
        public var file: String?
        public var line: Int
    }

    /// A Match block that sets a keyword `check` judges: for the connections it matches, sshd
    /// uses the block's value instead of the global one.
    public struct MatchBlock: Equatable, Sendable {
        public var file: String
        public var line: Int
        /// The criteria as written ("User bob").
        public var criteria: String
        /// The judged keywords it sets, lower-case.
        public var keywords: [String]
    }

    /// The global settings by lower-case keyword (ChallengeResponseAuthentication is filed
    /// under its current name, kbdinteractiveauthentication, as sshd does).
    public var settings: [String: Setting] = [:]
    /// The files read, in order (empty for `sshd -T`).
    public var files: [String] = []
    public var matchBlocks: [MatchBlock] = []
    /// Included files that could not be read, includes nested too deep.
    public var notes: [String] = []

    /// The keywords `check` judges.
    public static let judged: Set<String> = ["usepam", "kbdinteractiveauthentication", "passwordauthentication", "authenticationmethods"]
    /// Relative Include paths are taken from here, whatever file holds the Include (sshd_config(5)).
    public static let directory = "/etc/ssh"
    /// sshd's own limit on nested includes.
    static let maximumDepth = 16

    public init() {}

    /// The lines of `text`. Swift reads "\r\n" as one Character, which is not "\n": both end a
    /// line (sshd prints "\r\n" on standard error).
    static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// Keywords sshd reads as another one.
    static func canonical(_ keyword: String) -> String {
        let lower = keyword.lowercased()
        return lower == "challengeresponseauthentication" ? "kbdinteractiveauthentication" : lower
    }

    /// The output of `sshd -T`: "keyword value ..." per line; a keyword printed more than once
    /// (hostkey, listenaddress) keeps its first line.
    public static func effective(_ text: String) -> SSHDConfig {
        var config = SSHDConfig()
        var number = 0
        for line in SSHDConfig.lines(text) {
            number += 1
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let keyword = fields.first else { continue }
            let key = canonical(keyword)
            if config.settings[key] == nil {
                config.settings[key] = Setting(keyword: keyword, values: Array(fields.dropFirst()), file: nil, line: number)
            }
        }
        return config
    }

    /// Reads `path` and the files it includes as sshd does: `Include` patterns are globbed
    /// (`expand`), relative ones taken from /etc/ssh; lines after a `Match` line, up to the next
    /// `Match` or the end of that file, are not global (they are listed in `matchBlocks`).
    /// Returns nil when `path` itself cannot be read.
    public static func read(_ path: String, readFile: (String) -> String?, expand: (String) -> [String]) -> SSHDConfig? {
        var config = SSHDConfig()
        guard config.parse(path, depth: 0, enclosingMatch: nil, readFile: readFile, expand: expand) else { return nil }
        return config
    }

    /// Returns false when `file` cannot be read.
    mutating func parse(_ file: String, depth: Int, enclosingMatch: Int?, readFile: (String) -> String?,
                        expand: (String) -> [String]) -> Bool {
        guard let text = readFile(file) else { return false }
        files.append(file)
        // The Match block the current line is in: the including file's (an Include inside a
        // Match block) until this file has a Match of its own.
        var block = enclosingMatch
        var number = 0
        for raw in SSHDConfig.lines(text) {
            number += 1
            guard let (keyword, arguments) = Self.split(raw) else { continue }
            let key = Self.canonical(keyword)
            if key == "match" {
                matchBlocks.append(MatchBlock(file: file, line: number, criteria: arguments.joined(separator: " "), keywords: []))
                block = matchBlocks.count - 1
                continue
            }
            if key == "include" {
                for pattern in arguments {
                    let absolute = pattern.hasPrefix("/") ? pattern : "\(Self.directory)/\(pattern)"
                    for included in expand(absolute) {
                        if depth + 1 > Self.maximumDepth {
                            notes.append("\(file) line \(number): includes nested more than \(Self.maximumDepth) deep were not followed")
                            continue
                        }
                        if !parse(included, depth: depth + 1, enclosingMatch: block, readFile: readFile, expand: expand) {
                            notes.append("\(included) (included at \(file) line \(number)) could not be read")
                        }
                    }
                }
                continue
            }
            if let index = block, matchBlocks.indices.contains(index) {
                if Self.judged.contains(key) && !matchBlocks[index].keywords.contains(key) { matchBlocks[index].keywords.append(key) }
                continue
            }
            if settings[key] == nil {
                settings[key] = Setting(keyword: keyword, values: arguments, file: file, line: number)
            }
        }
        return true
    }

    /// One line of sshd_config: the keyword (ended by white space or a single '='), then the
    /// arguments, split at white space except inside double or single quotes, up to a word
    /// that starts with '#'. Nil for a blank line or a comment.
    static func split(_ line: Substring) -> (String, [String])? {
        let blank: Set<Character> = [" ", "\t", "\r", "\u{0C}"]
        var rest = line.drop(while: { blank.contains($0) })
        let keyword = String(rest.prefix(while: { !blank.contains($0) && $0 != "=" }))
        guard !keyword.isEmpty, !keyword.hasPrefix("#") else { return nil }
        rest = rest.dropFirst(keyword.count).drop(while: { blank.contains($0) })
        if rest.first == "=" { rest = rest.dropFirst() }
        // As OpenSSH's argv_split: a backslash escapes a quote, a backslash or (outside quotes) a
        // space; any other backslash is kept as it is.
        let characters = Array(rest)
        var arguments: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var index = 0
        while index < characters.count {
            let character = characters[index]
            index += 1
            if character == "\\", index < characters.count {
                let next = characters[index]
                if next == "\"" || next == "'" || next == "\\" || (quote == nil && next == " ") {
                    current.append(next)
                    inWord = true
                    index += 1
                    continue
                }
            }
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
                continue
            }
            if blank.contains(character) {
                if inWord { arguments.append(current); current = ""; inWord = false }
                continue
            }
            if !inWord && character == "#" { break }
            inWord = true
            if character == "\"" || character == "'" { quote = character } else { current.append(character) }
        }
        if inWord { arguments.append(current) }
        return (keyword, arguments)
    }

    /// The files `pattern` names, in lexical order (glob(3)); none when nothing matches.
    public static func glob(_ pattern: String) -> [String] {
        var found = glob_t()
        defer { globfree(&found) }
        guard Glibc.glob(pattern, 0, nil, &found) == 0, let paths = found.gl_pathv else { return [] }
        var names: [String] = []
        for index in 0..<Int(clamping: found.gl_pathc) {
            if let name = paths[index] { names.append(String(cString: name)) }
        }
        return names
    }
}

/// What sshd does with a password sign-in, from its configuration.
public struct SSHDSettings: Equatable, Sendable {
    /// UsePAM (sshd's default: no).
    public var usePAM: Bool
    /// KbdInteractiveAuthentication, formerly ChallengeResponseAuthentication (default: yes).
    public var keyboardInteractive: Bool
    /// PasswordAuthentication (default: yes).
    public var password: Bool
    /// AuthenticationMethods: nil for `any` (the default), else the lists, each of which must be
    /// completed in full.
    public var methodLists: [[String]]?

    public init(usePAM: Bool, keyboardInteractive: Bool, password: Bool, methodLists: [[String]]?) {
        self.usePAM = usePAM
        self.keyboardInteractive = keyboardInteractive
        self.password = password
        self.methodLists = methodLists
    }

    public init(_ config: SSHDConfig) {
        func flag(_ key: String, _ fallback: Bool) -> Bool {
            switch config.settings[key]?.values.first?.lowercased() {
            case "yes": return true
            case "no": return false
            default: return fallback
            }
        }
        usePAM = flag("usepam", false)
        keyboardInteractive = flag("kbdinteractiveauthentication", true)
        password = flag("passwordauthentication", true)
        let methods = config.settings["authenticationmethods"]?.values ?? []
        if methods.isEmpty || (methods.count == 1 && methods[0].lowercased() == "any") {
            methodLists = nil
        } else {
            methodLists = methods.map { $0.split(separator: ",").map(String.init) }
        }
    }

    /// The lists as sshd_config spells them ("publickey,password keyboard-interactive"), or "any".
    public var methodsText: String {
        methodLists.map { $0.map { $0.joined(separator: ",") }.joined(separator: " ") } ?? "any"
    }

    /// Whether some list lets keyboard-interactive through PAM (`keyboard-interactive` or
    /// `keyboard-interactive:pam`) reach the user; true for `any`.
    public var methodsAllowKeyboardInteractive: Bool {
        methodLists?.contains { $0.contains { $0 == "keyboard-interactive" || $0 == "keyboard-interactive:pam" } } ?? true
    }

    public var methodsAllowPassword: Bool {
        methodLists?.contains { $0.contains("password") } ?? true
    }
}
