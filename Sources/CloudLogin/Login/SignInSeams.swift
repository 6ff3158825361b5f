import Glibc

/// Everything one sign-in touches outside its own logic, built once per call: the HTTP
/// transport and metadata cache, the local accounts and the managed-user records, the clock, the
/// log, the caller's credentials, whether this process may change accounts (root), and the call's
/// one deadline. The module builds `system`; `cloudlogin login` wraps the same in tracing
/// wrappers; tests pass tables.
public struct SignInSeams {
    public var transport: HTTPTransport
    public var cache: MetadataCache?
    public var accounts: LocalAccountStore
    public var state: ManagedUserStore
    public var clock: Clock
    public var log: EventLog
    public var caller: CallerCredentials
    /// True only in a process running as root: otherwise nothing local is changed (a screen
    /// locker authenticates and leaves the account alone).
    public var canChangeAccounts: Bool
    /// The whole call's deadline: the IdP's `timeout` plus `LoginFlow.localUpdateSeconds`.
    public var deadline: Deadline

    public init(transport: HTTPTransport, cache: MetadataCache?, accounts: LocalAccountStore, state: ManagedUserStore,
                clock: Clock, log: EventLog, caller: CallerCredentials = ProcessCredentials(), canChangeAccounts: Bool,
                deadline: Deadline? = nil) {
        self.transport = transport
        self.cache = cache
        self.accounts = accounts
        self.state = state
        self.clock = clock
        self.log = log
        self.caller = caller
        self.canChangeAccounts = canChangeAccounts
        self.deadline = deadline ?? Deadline(clock: clock, seconds: LoginFlow.localUpdateSeconds)
    }

    /// The real world for one call. `network: false` (the account and password phases) builds
    /// no HTTP client and opens no cache directory: those phases never ask the IdP.
    public static func system(config: Config, log: EventLog, network: Bool = true) -> SignInSeams {
        let clock = SystemClock()
        // The person's time (prompts, push and device approvals) moves this deadline and the
        // IdP exchange's, which LoginFlow builds with the same `personTime`.
        let deadline = Deadline(clock: clock, seconds: config.timeout &+ LoginFlow.localUpdateSeconds, personTime: PersonTime())
        // The one read of this process's privilege for the call.
        let effectiveUID = geteuid()
        let transport: HTTPTransport = network ? CurlTransport(config: config) : NoNetwork()
        return SignInSeams(transport: transport,
                           cache: network ? DiskMetadataCache(directory: config.cacheDirectory, log: log, owner: effectiveUID) : nil,
                           accounts: ShadowUtilsAccounts(deadline: deadline),
                           state: StateDirectory(path: config.stateDirectory, deadline: deadline, effectiveUID: effectiveUID),
                           clock: clock, log: log, caller: ProcessCredentials(),
                           canChangeAccounts: effectiveUID == 0, deadline: deadline)
    }
}

/// The transport of the phases that never ask the IdP: every request fails.
public struct NoNetwork: HTTPTransport {
    public init() {}
    public func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        .failure(.other("no network in this phase"))
    }
}
