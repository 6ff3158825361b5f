import CCurl
import Glibc

/// HTTPS over libcurl, set up for a process CloudLogin does not own (sudo, login, sshd):
/// TLS verification always on, https only, no redirects, no signals, bounded time and size
/// (`CurlSetup`, which the admin tool's probe shares).
/// The proxy is the config's; the environment's proxy variables count only as `ProxyPolicy`
/// says (opted in, and never in a setuid host).
public final class CurlTransport: HTTPTransport {
    /// The largest answer read from an IdP; discovery documents and JWKS are a few KiB.
    public static let maximumResponseBytes = 1 << 20

    private let caFile: String?
    private let connectTimeoutMilliseconds: Int64
    private let proxy: ProxyPolicy

    /// `proxy`: the config's proxy URL (none: no proxy). `proxyFromEnvironment`: the config's
    /// `proxy_from_environment`; without it no proxy variable of the environment is read, so
    /// no caller of su or sudo can route CloudLogin through a server of theirs or make the IdP
    /// look unreachable.
    public init(caFile: String?, connectTimeoutSeconds: Int, proxy: String? = nil, proxyFromEnvironment: Bool = false) {
        self.caFile = caFile
        self.connectTimeoutMilliseconds = Int64(truncatingIfNeeded: connectTimeoutSeconds) &* 1000
        self.proxy = ProxyPolicy(proxy: proxy, fromEnvironment: proxyFromEnvironment)
    }

    /// The transport the config describes: `ca_file`, `connect_timeout`, `proxy`,
    /// `proxy_from_environment`.
    public convenience init(config: Config) {
        self.init(caFile: config.caFile, connectTimeoutSeconds: config.connectTimeout,
                  proxy: config.proxy, proxyFromEnvironment: config.proxyFromEnvironment)
    }

    public func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        // The query may hold a one-time token (Okta's sessionToken): not in the error.
        guard HTTPSURL.isValid(request.url) else {
            return .failure(.invalidURL(String(request.url.prefix { $0 != "?" }.prefix(200))))
        }
        guard let curl = CurlSetup.handle() else { return .failure(.other("libcurl could not be initialised")) }
        defer { curl_easy_cleanup(curl) }

        let remaining = deadline.remainingMilliseconds
        guard remaining > 0 else { return .failure(.timeout) }
        let sink = ResponseSink(limit: Self.maximumResponseBytes)
        let sinkPointer = Unmanaged.passRetained(sink)
        defer { sinkPointer.release() }

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        if let authorization = request.authorization {
            let line = SecretBytes(capacity: authorization.count + 16)
            line.append("Authorization: ")
            line.append(authorization)
            // curl copies the line; the copy is wiped when curl_slist_free_all frees it.
            line.withCString { headerList = curl_slist_append(headerList, $0) }
        }

        var failed = !CurlSetup.configure(curl, url: request.url, caFile: caFile, proxy: proxy,
                                          connectTimeoutMilliseconds: Int(truncatingIfNeeded: min(connectTimeoutMilliseconds, remaining)),
                                          timeoutMilliseconds: Int(truncatingIfNeeded: remaining),
                                          userAgent: "CloudLogin/\(CloudLoginVersion.string)")
        func set(_ result: CURLcode) { if result != CURLE_OK { failed = true } }
        set(CCurl_setopt_write_function(curl, responseSinkWrite))
        set(CCurl_setopt_header_function(curl, responseSinkHeader))
        set(CCurl_setopt_pointer(curl, CURLOPT_HEADERDATA, sinkPointer.toOpaque()))
        set(CCurl_setopt_pointer(curl, CURLOPT_WRITEDATA, sinkPointer.toOpaque()))
        set(CCurl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList))
        if request.method == .get { set(CCurl_setopt_long(curl, CURLOPT_HTTPGET, 1)) }
        guard !failed else { return .failure(.other("libcurl refused an option")) }

        // curl reads the body straight from our wiped buffer (POSTFIELDS does not copy), so
        // the transfer runs while the buffer is pinned.
        let body = request.body ?? SecretBytes(capacity: 1)
        let result: CURLcode = body.withCString { bodyPointer in
            CurlSetup.perform(curl, postBody: request.method == .post ? bodyPointer : nil, count: body.count)
        }
        if sink.overflowed { return .failure(.tooLarge(limit: Self.maximumResponseBytes)) }
        guard result == CURLE_OK else { return .failure(Self.classify(result)) }

        return .success(HTTPResponse(status: CurlSetup.status(curl), body: sink.body, headers: sink.headers))
    }

    package static func classify(_ code: CURLcode) -> TransportError {
        let detail = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .resolve(detail)
        case CURLE_COULDNT_CONNECT: return .connect(detail)
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_FILESIZE_EXCEEDED: return .tooLarge(limit: maximumResponseBytes)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED,
             CURLE_USE_SSL_FAILED:
            return .tls(detail)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT: return .invalidURL(detail)
        default: return .other(detail)
        }
    }
}

/// Collects a response body into wiped storage, up to a limit.
private final class ResponseSink {
    let body = SecretBytes(capacity: 4096)
    let limit: Int
    var overflowed = false
    var headers: [String: String] = [:]
    var headerBytes = 0

    init(limit: Int) { self.limit = limit }
}

private let responseSinkWrite: CCurl_write_callback = { pointer, size, count, userdata in
    guard let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    let (length, overflow) = size.multipliedReportingOverflow(by: count)
    guard !overflow, length >= 0, length <= sink.limit - sink.body.count else {
        sink.overflowed = true
        return 0
    }
    sink.body.append(UnsafeRawBufferPointer(start: pointer, count: length))
    return length
}

/// Keeps the headers named in `HTTPResponse.keptHeaders` (of the last response: a new status
/// line starts over), at most 64 KiB of header lines in all.
private let responseSinkHeader: CCurl_write_callback = { pointer, size, count, userdata in
    guard let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    let (length, overflow) = size.multipliedReportingOverflow(by: count)
    guard !overflow, length >= 0 else { return 0 }
    sink.headerBytes += length
    guard sink.headerBytes <= 65536 else { return 0 }
    let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    if line.hasPrefix("HTTP/") { sink.headers = [:] }
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        if HTTPResponse.keptHeaders.contains(name) {
            sink.headers[name] = String(line[line.index(after: colon)...]).trimmed.replacingNewlines()
        }
    }
    return length
}
