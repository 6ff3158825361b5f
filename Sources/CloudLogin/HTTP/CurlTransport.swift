import CCurl
import Glibc

/// HTTPS over libcurl, set up for a process CloudLogin does not own (sudo, login, sshd):
/// TLS verification always on, https only, no redirects, no signals, bounded time and size
/// (`CurlSetup`, which the admin tool's probe shares).
/// The proxy is the config's; the environment's proxy variables count only as `ProxyPolicy`
/// says (opted in, and never in a setuid host).
///
/// One transport serves one PAM call (`SignInSeams.system`), and all its requests run on one
/// libcurl multi handle, whose connection cache they share: discovery, JWKS, the grant and
/// userinfo go over one kept-alive connection to the IdP. The connection closes when the
/// transport goes (at the end of the call: `deinit`). `warmUp` opens it while the person types
/// (docs/design.md, "Performance targets").
public final class CurlTransport: HTTPTransport {
    /// The largest answer read from an IdP; discovery documents and JWKS are a few KiB.
    public static let maximumResponseBytes = 1 << 20
    /// The warm-up waits this long before it connects: a prompt answered sooner was answered by
    /// a program (`sudo -S`, a test), and the sign-in connects by itself at once.
    static let warmUpHoldMilliseconds = 15
    /// After the answer, how long a warm-up request whose connection is up may still take
    /// before it is given up (an IdP that accepted the connection but does not answer).
    static let warmUpGraceMilliseconds = 500
    /// Connections one warm-up may open: the first, and new ones after the IdP closed the idle
    /// one while the person was still typing.
    static let warmUpMaximumConnections: Int32 = 4

    private let caFile: String?
    private let connectTimeoutMilliseconds: Int64
    private let proxy: ProxyPolicy
    /// The sign-in's multi handle (made on first use): its connection cache is what the requests
    /// share. Used by one thread at a time: the warm-up thread until `endWarmUp` joined it, the
    /// caller's thread otherwise.
    private var multi: UnsafeMutableRawPointer?
    /// The warm-up under way, if any.
    private var warming: WarmUp?
    /// A GET started by `prefetch`, not yet taken by `send`.
    private var prefetched: Prefetch?
    /// The first answer of the last warm-up's GET, which serves that GET once if the sign-in
    /// sends it (discovery on a cold cache).
    private var warmAnswer: (url: String, response: HTTPResponse)?
    /// What the last warm-up did, for tests and `--trace`: requests sent (one connection each),
    /// of which after the IdP closed the idle connection.
    public private(set) var warmUpConnections = 0
    public private(set) var warmUpReconnects = 0

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

    deinit {
        endWarmUp()
        warmAnswer?.response.body.wipe()
        if let unused = prefetched, let multi {
            // Never asked for: removed unfinished (its connection closes with the multi handle).
            curl_multi_remove_handle(multi, unused.easy)
            curl_easy_cleanup(unused.easy)
            curl_slist_free_all(unused.headers)
            unused.pending.deallocate()
            unused.sink.takeUnretainedValue().body.wipe()
            unused.sink.release()
        }
        if let multi { curl_multi_cleanup(multi) }
    }

    /// The multi handle, made on first use (libcurl initialised first).
    private func sharedMulti() -> UnsafeMutableRawPointer? {
        if let multi { return multi }
        guard CurlSetup.handle().map({ curl_easy_cleanup($0); return true }) == true, let made = curl_multi_init() else { return nil }
        _ = CCurl_multi_one_connection_per_host(made)
        multi = made
        return made
    }

    /// Starts a GET that a later `send` of the same URL will want (the JWKS on a cold cache,
    /// beside the grant): it is added to the multi handle and moves only while this thread
    /// drives it (no thread of its own), on the sign-in's one connection — at the same time as
    /// the next request over HTTP/2, after it over HTTP/1.1. Its answer serves that `send`.
    public func prefetch(_ request: HTTPRequest, deadline: Deadline) {
        endWarmUp()
        guard request.method == .get, prefetched == nil, HTTPSURL.isValid(request.url), let multi = sharedMulti() else { return }
        let remaining = deadline.remainingMilliseconds
        guard remaining > 0, let easy = CurlSetup.handle() else { return }
        let sink = ResponseSink(limit: Self.maximumResponseBytes)
        let sinkPointer = Unmanaged.passRetained(sink)
        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        let pending = UnsafeMutablePointer<CCurl_pending>.allocate(capacity: 1)
        pending.initialize(to: CCurl_pending(done: 0, result: CURLE_OK))
        var failed = !configure(easy, url: request.url, remaining: remaining, sink: sinkPointer, headers: headerList)
        if CCurl_setopt_long(easy, CURLOPT_HTTPGET, 1) != CURLE_OK || CCurl_setopt_pointer(easy, CURLOPT_PRIVATE, pending) != CURLE_OK {
            failed = true
        }
        guard !failed, curl_multi_add_handle(multi, easy) == CURLM_OK else {
            curl_easy_cleanup(easy)
            curl_slist_free_all(headerList)
            sinkPointer.release()
            pending.deallocate()
            return
        }
        prefetched = Prefetch(url: request.url, easy: easy, headers: headerList, sink: sinkPointer, pending: pending)
    }

    /// The prefetch's answer (driving the multi handle until it has come), and its cleanup.
    private func finishPrefetch(_ prefetch: Prefetch, multi: UnsafeMutableRawPointer) -> Result<HTTPResponse, TransportError> {
        let result = CCurl_multi_finish(multi, prefetch.easy, prefetch.pending)
        let status = CurlSetup.status(prefetch.easy)
        let sink = prefetch.sink.takeUnretainedValue()
        curl_easy_cleanup(prefetch.easy)
        curl_slist_free_all(prefetch.headers)
        prefetch.pending.deallocate()
        defer { prefetch.sink.release() }
        if sink.overflowed { return .failure(.tooLarge(limit: Self.maximumResponseBytes)) }
        guard result == CURLE_OK else { return .failure(Self.classify(result)) }
        return .success(HTTPResponse(status: status, body: sink.body, headers: sink.headers))
    }

    /// The options every request of the sign-in gets (`CurlSetup`), its answer into `sink`,
    /// and `CURLOPT_PIPEWAIT`: a request started while the connection is still being set up
    /// waits to share it (HTTP/2) rather than open another.
    private func configure(_ easy: UnsafeMutableRawPointer, url: String, remaining: Int64, sink: Unmanaged<ResponseSink>,
                           headers: UnsafeMutablePointer<curl_slist>?) -> Bool {
        var failed = !CurlSetup.configure(easy, url: url, caFile: caFile, proxy: proxy,
                                          connectTimeoutMilliseconds: Int(truncatingIfNeeded: min(connectTimeoutMilliseconds, remaining)),
                                          timeoutMilliseconds: Int(truncatingIfNeeded: remaining),
                                          userAgent: Self.userAgent)
        func set(_ result: CURLcode) { if result != CURLE_OK { failed = true } }
        set(CCurl_setopt_long(easy, CURLOPT_PIPEWAIT, 1))
        set(CCurl_setopt_write_function(easy, responseSinkWrite))
        set(CCurl_setopt_header_function(easy, responseSinkHeader))
        set(CCurl_setopt_pointer(easy, CURLOPT_HEADERDATA, sink.toOpaque()))
        set(CCurl_setopt_pointer(easy, CURLOPT_WRITEDATA, sink.toOpaque()))
        set(CCurl_setopt_slist(easy, CURLOPT_HTTPHEADER, headers))
        return !failed
    }

    /// A GET on the origin of the sign-in's first request, sent on a thread while the prompt is
    /// up (`CCurl_warmup_thread`): after `warmUpHoldMilliseconds` it connects (TCP, TLS) and
    /// sends `request`, then keeps the connection and, if the IdP closes it before the person
    /// answers, opens another. Nothing is sent if the answer comes within the hold; a request
    /// still connecting when the answer comes is given up (the sign-in connects by itself).
    public func warmUp(_ request: HTTPRequest, deadline: Deadline) {
        endWarmUp()
        (warmUpConnections, warmUpReconnects) = (0, 0)
        guard request.method == .get, HTTPSURL.isValid(request.url), let multi = sharedMulti() else { return }
        let remaining = deadline.remainingMilliseconds
        guard remaining > 0, let easy = CurlSetup.handle() else { return }
        let sink = ResponseSink(limit: Self.maximumResponseBytes)
        let sinkPointer = Unmanaged.passRetained(sink)
        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        let failed = !configure(easy, url: request.url, remaining: remaining, sink: sinkPointer, headers: headerList)
            || CCurl_setopt_long(easy, CURLOPT_HTTPGET, 1) != CURLE_OK
        let state = failed ? nil : CCurl_warmup_new(multi, easy, Self.warmUpHoldMilliseconds, Self.warmUpGraceMilliseconds,
                                                     Self.warmUpMaximumConnections)
        guard let state, let thread = JoinedThread.start(CCurl_warmup_thread, context: state) else {
            // No thread (RLIMIT_NPROC, memory): no warm-up; the grant connects when it is sent.
            CCurl_warmup_free(state)
            curl_easy_cleanup(easy)
            curl_slist_free_all(headerList)
            sinkPointer.release()
            return
        }
        warming = WarmUp(url: request.url, thread: thread, state: state, easy: easy, headers: headerList, sink: sinkPointer)
    }

    /// Tells the warm-up thread the person answered and joins it; keeps the GET's answer.
    public func endWarmUp() {
        guard var running = warming else { return }
        warming = nil
        CCurl_warmup_answered(running.state)
        running.thread.join()
        // The thread has ended: what it wrote is ours to read.
        warmUpConnections = Int(truncatingIfNeeded: CCurl_warmup_connections(running.state))
        warmUpReconnects = Int(truncatingIfNeeded: CCurl_warmup_reconnects(running.state))
        let sink = running.sink.takeUnretainedValue()
        if CCurl_warmup_first_result(running.state) == CURLE_OK, CCurl_warmup_first_status(running.state) == 200, !sink.overflowed {
            warmAnswer?.response.body.wipe()
            warmAnswer = (running.url, HTTPResponse(status: 200, body: sink.body, headers: sink.headers))
        }
        CCurl_warmup_free(running.state)
        curl_easy_cleanup(running.easy)
        curl_slist_free_all(running.headers)
        running.sink.release()
    }

    private static var userAgent: String { "CloudLogin/\(CloudLoginVersion.string)" }

    public func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        endWarmUp()
        // The query may hold a one-time token (Okta's sessionToken): not in the error.
        guard HTTPSURL.isValid(request.url) else {
            return .failure(.invalidURL(String(request.url.prefix { $0 != "?" }.prefix(200))))
        }
        if request.method == .get, let kept = warmAnswer, kept.url == request.url {
            // The warm-up fetched this very document moments ago (discovery on a cold cache).
            warmAnswer = nil
            return .success(kept.response)
        }
        guard let multi = sharedMulti() else { return .failure(.other("libcurl could not be initialised")) }
        if request.method == .get, let started = prefetched, started.url == request.url {
            prefetched = nil
            return finishPrefetch(started, multi: multi)
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

        var failed = !configure(curl, url: request.url, remaining: remaining, sink: sinkPointer, headers: headerList)
        if request.method == .get, CCurl_setopt_long(curl, CURLOPT_HTTPGET, 1) != CURLE_OK { failed = true }
        guard !failed else { return .failure(.other("libcurl refused an option")) }

        // curl reads the body straight from our wiped buffer (POSTFIELDS does not copy), so
        // the transfer runs while the buffer is pinned.
        let body = request.body ?? SecretBytes(capacity: 1)
        let result: CURLcode = body.withCString { bodyPointer in
            CurlSetup.perform(curl, postBody: request.method == .post ? bodyPointer : nil, count: body.count, multi: multi)
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

/// One warm-up under way: its thread and everything the thread uses, released by `endWarmUp`
/// after the join. The thread reads and writes `state` (C, with an atomic flag for the answer),
/// `easy` and the sink; until the join, the starting thread touches none of them but through
/// `CCurl_warmup_answered`.
private struct WarmUp {
    let url: String
    var thread: JoinedThread
    let state: UnsafeMutablePointer<CCurl_warmup>
    let easy: UnsafeMutableRawPointer
    let headers: UnsafeMutablePointer<curl_slist>?
    let sink: Unmanaged<ResponseSink>
}

/// A GET started by `prefetch`: the multi handle runs it; `pending` (its CURLOPT_PRIVATE) says
/// when it has ended.
private struct Prefetch {
    let url: String
    let easy: UnsafeMutableRawPointer
    let headers: UnsafeMutablePointer<curl_slist>?
    let sink: Unmanaged<ResponseSink>
    let pending: UnsafeMutablePointer<CCurl_pending>
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
