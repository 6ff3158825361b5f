import CCurl
import CloudLogin
import Glibc

/// One diagnostic HTTPS request for `cloudlogin check` and `cloudlogin setup`: does the IdP
/// answer over verified TLS, with which status, and what time does its `Date` header say.
///
/// The login path never uses this. It is separate from `HTTPTransport` because a probe keeps
/// nothing of the answer but its status and `Date` (parsed by libcurl), and needs none of the
/// transport's secret handling: the body is read and dropped, and a probe never carries or
/// keeps a secret.
public enum HTTPProbe {
    /// What came back.
    public struct Answer: Equatable, Sendable {
        public var status: Int
        /// The `Date` header as seconds since the epoch, when the server sent a readable one.
        public var serverTime: Int64?
        public var milliseconds: Int64
    }

    /// Sends `method` to `url` set up as the module's requests are (`CurlSetup`: https only, peer
    /// and host verified, `caFile` as extra trust anchors, `proxy` as `ProxyPolicy` says, no
    /// redirects, bounded time and size). A POST sends `jsonBody` as `application/json`.
    public static func send(_ method: HTTPRequest.Method, url: String, jsonBody: String = "{}", caFile: String?,
                            proxy: ProxyPolicy, timeoutSeconds: Int, clock: Clock = SystemClock()) -> Result<Answer, TransportError> {
        guard HTTPSURL.isValid(url) else { return .failure(.invalidURL(url)) }
        guard let curl = CurlSetup.handle() else { return .failure(.other("libcurl could not be initialised")) }
        defer { curl_easy_cleanup(curl) }
        var headers: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headers) }
        headers = curl_slist_append(headers, "Accept: application/json")
        if method == .post { headers = curl_slist_append(headers, "Content-Type: application/json") }

        // One bound for the connect and the whole exchange.
        let milliseconds = Int(truncatingIfNeeded: Int64(truncatingIfNeeded: max(1, timeoutSeconds)) &* 1000)
        var failed = !CurlSetup.configure(curl, url: url, caFile: caFile, proxy: proxy, connectTimeoutMilliseconds: milliseconds,
                                          timeoutMilliseconds: milliseconds, userAgent: "CloudLogin/\(CloudLoginVersion.string) (check)")
        func set(_ result: CURLcode) { if result != CURLE_OK { failed = true } }
        set(CCurl_setopt_write_function(curl, discardBody))
        set(CCurl_setopt_slist(curl, CURLOPT_HTTPHEADER, headers))
        guard !failed else { return .failure(.other("libcurl refused an option")) }

        let started = clock.monotonicMilliseconds()
        let result: CURLcode = jsonBody.withCString { body in
            CurlSetup.perform(curl, postBody: method == .post ? body : nil, count: jsonBody.utf8.count)
        }
        let elapsed = clock.monotonicMilliseconds() &- started
        guard result == CURLE_OK else { return .failure(CurlTransport.classify(result)) }
        return .success(Answer(status: CurlSetup.status(curl), serverTime: dateHeader(curl), milliseconds: elapsed))
    }

    /// The `Date` header of the last response, parsed by libcurl (RFC 7231 IMF-fixdate and the
    /// obsolete forms).
    private static func dateHeader(_ curl: UnsafeMutableRawPointer) -> Int64? {
        var header: UnsafeMutablePointer<curl_header>?
        guard curl_easy_header(curl, "Date", 0, UInt32(truncatingIfNeeded: CURLH_HEADER), -1, &header) == CURLHE_OK,
              let value = header?.pointee.value else { return nil }
        let seconds = curl_getdate(value, nil)
        return seconds > 0 ? Int64(truncatingIfNeeded: seconds) : nil
    }
}

private let discardBody: CCurl_write_callback = { _, size, count, _ in
    let (length, overflow) = size.multipliedReportingOverflow(by: count)
    return overflow ? 0 : length
}
