/// One HTTPS request to the IdP.
public struct HTTPRequest {
    public enum Method: String, Sendable { case get = "GET", post = "POST" }

    public var method: Method
    public var url: String
    /// Header lines other than Authorization, e.g. "Accept: application/json".
    public var headers: [String]
    /// `Authorization` header value (a secret: "Basic …" or "Bearer …").
    public var authorization: SecretBytes?
    /// Request body (a secret: it carries the password).
    public var body: SecretBytes?

    public init(method: Method, url: String, headers: [String] = ["Accept: application/json"],
                authorization: SecretBytes? = nil, body: SecretBytes? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.authorization = authorization
        self.body = body
    }
}

/// The IdP's answer. The body is kept in wiped storage: it may hold tokens.
public struct HTTPResponse {
    public var status: Int
    public var body: SecretBytes
    /// The response headers CloudLogin reads (`HTTPResponse.keptHeaders`), by lower-case name.
    public var headers: [String: String]

    /// The headers CloudLogin reads: Okta's rate-limit window and retry hint, and the
    /// `Location` of the Okta groups exchange's redirect. (`cloudlogin check` reads the
    /// server's `Date` through `HTTPProbe`.)
    public static let keptHeaders: Set<String> = ["retry-after", "x-rate-limit-remaining", "x-rate-limit-reset", "location"]

    public init(status: Int, body: SecretBytes, headers: [String: String] = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    /// A header as a whole number (e.g. `Retry-After: 2`, `X-Rate-Limit-Reset: 1609459200`).
    public func integerHeader(_ name: String) -> Int64? {
        headers[name].flatMap { Int64($0.trimmed, radix: 10) }
    }
}

/// Why no HTTP answer came back. Every case means "the IdP is unavailable" to the login flow,
/// except `tooLarge` and `invalidURL`, which mean a broken or misconfigured IdP.
public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    case resolve(String)
    case connect(String)
    case timeout
    /// TLS handshake or certificate verification failed (wrong CA, hostname mismatch).
    case tls(String)
    /// The body was larger than the cap.
    case tooLarge(limit: Int)
    case invalidURL(String)
    case other(String)

    public var description: String {
        switch self {
        case .resolve(let detail): return "cannot resolve the IdP host (\(detail))"
        case .connect(let detail): return "cannot connect to the IdP (\(detail))"
        case .timeout: return "the IdP did not answer within the timeout"
        case .tls(let detail): return "TLS with the IdP failed (\(detail)); check ca_file and the IdP's certificate"
        case .tooLarge(let limit): return "the IdP's answer is larger than \(limit) bytes"
        case .invalidURL(let url): return "refusing to contact '\(url)': only https URLs are used"
        case .other(let detail): return "HTTP transport error (\(detail))"
        }
    }
}

/// Sends requests to the IdP. The module uses `CurlTransport`; tests may script answers.
public protocol HTTPTransport {
    func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError>

    /// Called by the flow just before it asks the person for the password: opens the connection
    /// the sign-in's first request will use, in the background, by sending `request` (a cheap
    /// GET on that connection's origin, whose answer may serve the same GET later). Returns at
    /// once. `endWarmUp` (and any `send`) first ends it.
    func warmUp(_ request: HTTPRequest, deadline: Deadline)

    /// The person answered the prompt, or it failed: ends the warm-up and waits for whatever it
    /// runs on (a thread, joined). Called on every path after the prompt; idempotent.
    func endWarmUp()

    /// Starts `request` (a GET) that a later `send` of the same URL will want, so that it
    /// travels beside the next request instead of after it. No thread: it moves while `send`
    /// runs. A prefetch never asked for is dropped with the transport.
    func prefetch(_ request: HTTPRequest, deadline: Deadline)
}

extension HTTPTransport {
    /// The request goes out when it is sent.
    public func prefetch(_ request: HTTPRequest, deadline: Deadline) {}

    /// Nothing to warm: the request goes out when it is sent.
    public func warmUp(_ request: HTTPRequest, deadline: Deadline) {}
    public func endWarmUp() {}
}
