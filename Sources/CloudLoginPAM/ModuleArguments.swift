import CloudLogin

/// The module arguments in pam.d: `config=PATH`, `debug`, `try_first_pass`, `use_first_pass`.
/// The last two are read by `pam_get_authtok` itself; they are accepted here so that they
/// are not reported as unknown.
public struct ModuleArguments: Equatable, Sendable {
    public var configPath: String = Config.defaultPath
    public var debug = false
    public var unknown: [String] = []

    public init(_ arguments: [String]) {
        for argument in arguments {
            if argument.hasPrefix("config=") {
                configPath = String(argument.dropFirst("config=".count))
            } else if argument == "debug" {
                debug = true
            } else if argument == "try_first_pass" || argument == "use_first_pass" {
                continue
            } else {
                unknown.append(argument)
            }
        }
    }

    init(argc: Int32, argv: UnsafePointer<UnsafePointer<CChar>?>?) {
        var arguments: [String] = []
        if let argv, argc > 0 {
            for index in 0..<Int(argc) { // trap-check: widening Int32 to Int
                if let argument = argv[index] { arguments.append(String(cString: argument)) }
            }
        }
        self.init(arguments)
    }
}
