import CCurl
import Glibc

/// The one way CloudLogin sets up a libcurl handle to talk to an IdP, for the module's
/// `CurlTransport` and the admin tool's `HTTPProbe` (in CloudLoginAdmin: `package` access)
/// alike: https only, peer and host verified (TLS 1.2 or later, `caFile` as extra trust
/// anchors), no redirects, no signals, the proxy as `ProxyPolicy` says, bounded time and
/// answer size.
package enum CurlSetup {
    /// A new easy handle (libcurl initialised first), or nil. The caller cleans it up.
    package static func handle() -> UnsafeMutableRawPointer? {
        guard curlIsReady else { return nil }
        return curl_easy_init()
    }

    /// Sets the options every request gets. False when libcurl refused one.
    package static func configure(_ curl: UnsafeMutableRawPointer, url: String, caFile: String?, proxy: ProxyPolicy,
                          connectTimeoutMilliseconds: Int, timeoutMilliseconds: Int, userAgent: String) -> Bool {
        var failed = false
        func set(_ result: CURLcode) { if result != CURLE_OK { failed = true } }
        set(CCurl_setopt_long(curl, CURLOPT_NOSIGNAL, 1))
        set(CCurl_setopt_string(curl, CURLOPT_URL, url))
        set(CCurl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "https"))
        set(CCurl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0))
        set(CCurl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 1))
        set(CCurl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 2))
        set(CCurl_setopt_long(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2))
        if let caFile { set(CCurl_setopt_string(curl, CURLOPT_CAINFO, caFile)) }
        if !proxy.apply(to: curl) { failed = true }
        set(CCurl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMilliseconds))
        set(CCurl_setopt_long(curl, CURLOPT_TIMEOUT_MS, timeoutMilliseconds))
        set(CCurl_setopt_long(curl, CURLOPT_MAXFILESIZE, CurlTransport.maximumResponseBytes))
        set(CCurl_setopt_string(curl, CURLOPT_USERAGENT, userAgent))
        return !failed
    }

    /// Runs the request: a POST of the `count` bytes at `postBody` (which libcurl reads in
    /// place: it must stay valid until this returns), else what the handle is set up for. With
    /// `multi`, on that multi handle (whose connections it shares), else on its own.
    package static func perform(_ curl: UnsafeMutableRawPointer, postBody: UnsafePointer<CChar>?, count: Int,
                                multi: UnsafeMutableRawPointer? = nil) -> CURLcode {
        if let postBody {
            guard CCurl_setopt_long(curl, CURLOPT_POST, 1) == CURLE_OK,
                  CCurl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, count) == CURLE_OK,
                  CCurl_setopt_pointer(curl, CURLOPT_POSTFIELDS, postBody) == CURLE_OK
            else { return CURLE_FAILED_INIT }
        }
        if let multi { return CCurl_multi_run(multi, curl) }
        return curl_easy_perform(curl)
    }

    /// The HTTP status of the last answer.
    package static func status(_ curl: UnsafeMutableRawPointer) -> Int {
        var status = 0
        _ = CCurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return status
    }
}

/// curl_global_init once per process, on first use (it is not thread-safe, and must not be
/// undone with curl_global_cleanup inside a host process), with allocators that wipe what libcurl
/// frees: its copies of the request body (the password) and the Authorization header.
private let curlIsReady: Bool = CCurl_global_init_wiping() == CURLE_OK
