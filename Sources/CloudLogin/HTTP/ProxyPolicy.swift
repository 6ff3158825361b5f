import CCurl
import Glibc

/// Which proxy libcurl uses to reach the IdP: the config's, never the environment's unless the
/// admin opts in — and never in a setuid host.
///
/// libcurl reads `https_proxy`/`all_proxy` when CURLOPT_PROXY is unset, and `no_proxy` whenever
/// CURLOPT_NOPROXY is unset, even with CURLOPT_PROXY set. In `su` and `sudo` the environment is
/// the invoking user's: a caller's `NO_PROXY=*` would switch the configured proxy off, turn "the
/// IdP disabled this user" into "IdP unreachable", and let pam_unix accept the synced password
/// offline. So every handle gets both options set explicitly from the config: CURLOPT_PROXY is
/// the `proxy` key (else "", no proxy) and CURLOPT_NOPROXY is "" (no exceptions). Only with
/// `proxy_from_environment = yes`, in a process whose environment is its own (not AT_SECURE), does
/// the environment count as curl reads it: `no_proxy`/`NO_PROXY`, and, without a `proxy` key,
/// curl's own `https_proxy`/`all_proxy` lookup.
public struct ProxyPolicy: Equatable, Sendable {
    /// The config's `proxy` URL.
    public var proxy: String?
    /// The config's `proxy_from_environment`.
    public var fromEnvironment: Bool

    public init(proxy: String?, fromEnvironment: Bool = false) {
        self.proxy = proxy
        self.fromEnvironment = fromEnvironment
    }

    public init(config: Config) {
        self.init(proxy: config.proxy, fromEnvironment: config.proxyFromEnvironment)
    }

    /// What CURLOPT_PROXY and CURLOPT_NOPROXY are set to.
    public struct CurlOptions: Equatable, Sendable {
        /// nil: left unset, so libcurl picks the proxy from the environment (opted in only).
        public var proxy: String?
        public var noProxy: String
    }

    /// The option values for a process whose environment is (`environmentIsUntrusted == false`)
    /// or is not its own. `environment` looks a variable up (getenv).
    public func curlOptions(environmentIsUntrusted: Bool, environment: (String) -> String?) -> CurlOptions {
        guard fromEnvironment && !environmentIsUntrusted else {
            return CurlOptions(proxy: proxy ?? "", noProxy: "")
        }
        // libcurl's own order (url.c): no_proxy, then NO_PROXY.
        return CurlOptions(proxy: proxy, noProxy: environment("no_proxy") ?? environment("NO_PROXY") ?? "")
    }

    /// The option values for this process: its environment is untrusted in a setuid host.
    public func curlOptions() -> CurlOptions {
        curlOptions(environmentIsUntrusted: CCurl_environment_is_untrusted() != 0) { name in
            getenv(name).map { String(cString: $0) }
        }
    }

    /// Sets CURLOPT_PROXY (unless the environment may choose it) and CURLOPT_NOPROXY on `curl`.
    /// False when libcurl refused an option.
    package func apply(to curl: UnsafeMutableRawPointer) -> Bool {
        let options = curlOptions()
        if let proxy = options.proxy, CCurl_setopt_string(curl, CURLOPT_PROXY, proxy) != CURLE_OK { return false }
        return CCurl_setopt_string(curl, CURLOPT_NOPROXY, options.noProxy) == CURLE_OK
    }
}
