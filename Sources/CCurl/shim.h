// libcurl as CloudLogin uses it inside a host process (docs/facts.md, "libcurl in a host process").
//
// curl_easy_setopt and curl_easy_getinfo are variadic, and Swift cannot call C variadic
// functions: each CCurl_setopt_*/CCurl_getinfo_* wrapper fixes one argument type, and can go
// once Swift imports variadic C functions. Below them: the process-wide initialisation with
// allocators that wipe what libcurl frees, and the setuid check the proxy rule needs.
#ifndef CLOUDLOGIN_CCURL_SHIM_H
#define CLOUDLOGIN_CCURL_SHIM_H

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <malloc.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000 /* Linux: the peer closed its end (poll.h has it only with _GNU_SOURCE) */
#endif

typedef size_t (*CCurl_write_callback)(char *_Nonnull ptr, size_t size, size_t nmemb,
                                       void *_Nullable userdata);

static inline CURLcode CCurl_setopt_long(CURL *_Nonnull curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode CCurl_setopt_string(CURL *_Nonnull curl, CURLoption option,
                                           const char *_Nullable value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode CCurl_setopt_pointer(CURL *_Nonnull curl, CURLoption option,
                                            const void *_Nullable value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode CCurl_setopt_slist(CURL *_Nonnull curl, CURLoption option,
                                          struct curl_slist *_Nullable value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode CCurl_setopt_write_function(CURL *_Nonnull curl,
                                                   CCurl_write_callback _Nullable fn) {
    return curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fn);
}

static inline CURLcode CCurl_setopt_header_function(CURL *_Nonnull curl,
                                                    CCurl_write_callback _Nullable fn) {
    return curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, fn);
}

static inline CURLcode CCurl_getinfo_long(CURL *_Nonnull curl, CURLINFO info,
                                          long *_Nonnull value) {
    return curl_easy_getinfo(curl, info, value);
}

/// libcurl assembles the request (headers, the Authorization line and a small POST body with the
/// password) in buffers of its own and frees them without wiping, so the password and the client
/// secret stayed in freed heap memory of the host process (found by Tests/Integration/
/// test_memory.py). These allocators overwrite every block libcurl frees or moves.
static void CCurl_wiping_free(void *_Nullable block) {
    if (block == NULL) return;
    explicit_bzero(block, malloc_usable_size(block));
    free(block);
}

static void *_Nullable CCurl_wiping_realloc(void *_Nullable block, size_t size) {
    void *moved;
    size_t old;
    if (block == NULL) return malloc(size);
    old = malloc_usable_size(block);
    moved = malloc(size == 0 ? 1 : size);
    if (moved == NULL) return NULL; /* the old block stays valid, as realloc promises */
    memcpy(moved, block, old < size ? old : size);
    CCurl_wiping_free(block);
    return moved;
}

/// curl_global_init with the wiping allocators (CURL_GLOBAL_SSL). If the host process already
/// initialised libcurl, libcurl keeps the host's allocators and only counts the call. Never
/// undone: curl_global_cleanup must not run inside a host process.
///
/// In a setuid host (su, sudo: AT_SECURE), the environment belongs to the invoking user, and
/// libcurl reads SSLKEYLOGFILE with plain getenv when TLS starts up: it would open that path
/// as root and write the session keys to it. It is taken out of the environment for the
/// initialisation and put back afterwards.
static inline CURLcode CCurl_global_init_wiping(void) {
    CURLcode result;
    char *keylog = NULL;
    if (getauxval(AT_SECURE) != 0 && getenv("SSLKEYLOGFILE") != NULL) {
        keylog = strdup(getenv("SSLKEYLOGFILE"));
        unsetenv("SSLKEYLOGFILE");
    }
    result = curl_global_init_mem(CURL_GLOBAL_SSL, malloc, CCurl_wiping_free, CCurl_wiping_realloc, strdup, calloc);
    if (keylog != NULL) {
        setenv("SSLKEYLOGFILE", keylog, 1);
        free(keylog);
    }
    return result;
}

/// True in a setuid/setgid host (AT_SECURE): its environment is the invoking user's.
static inline int CCurl_environment_is_untrusted(void) { return getauxval(AT_SECURE) != 0; }


// ---- One connection for a sign-in, warmed while the person types --------------------------
//
// CurlTransport runs every request of a sign-in on one multi handle, so that they share its
// connection cache: discovery, JWKS and the grant go over one connection. Before the password
// prompt, a warm-up thread (CurlTransport.warmUp, started with pthread_create on
// CCurl_warmup_thread) opens that connection with one cheap GET and keeps it open; the grant
// then finds it warm. libcurl's CURLOPT_CONNECT_ONLY cannot do this: "connections marked
// connect only are not allowed to get reused" (CURLOPT_CONNECT_ONLY(3)), so the connection is
// opened by a real request.

/// A transfer left running on the multi handle (a prefetch) while others are driven: its
/// CURLOPT_PRIVATE points here, and whoever drives the multi handle when it ends records it.
typedef struct CCurl_pending {
    int done;
    CURLcode result;
} CCurl_pending;

/// Reads the multi handle's messages: `easy`'s end into *done/*result, any other transfer's
/// into its CCurl_pending (CURLOPT_PRIVATE), so no message is lost.
static inline void CCurl_collect(CURLM *_Nonnull multi, CURL *_Nullable easy, int *_Nonnull done,
                                 CURLcode *_Nonnull result) {
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        char *pending = NULL;
        if (msg->msg != CURLMSG_DONE) continue;
        if (easy != NULL && msg->easy_handle == easy) {
            *result = msg->data.result;
            *done = 1;
        }
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &pending) == CURLE_OK && pending != NULL) {
            ((CCurl_pending *)(void *)pending)->done = 1;
            ((CCurl_pending *)(void *)pending)->result = msg->data.result;
        }
    }
}

/// Runs `easy` on `multi` until it ends, and removes it again. Without `abort_check`, like
/// curl_easy_perform. Returns the transfer's result.
typedef int (*CCurl_abort_check)(void *_Nullable context, int *_Nonnull poll_fd, int *_Nonnull timeout_ms);

static inline CURLcode CCurl_multi_run_checked(CURLM *_Nonnull multi, CURL *_Nonnull easy,
                                               CCurl_abort_check _Nullable check, void *_Nullable context,
                                               curl_socket_t *_Nullable kept_socket) {
    CURLcode result = CURLE_FAILED_INIT;
    if (kept_socket != NULL) *kept_socket = CURL_SOCKET_BAD;
    if (curl_multi_add_handle(multi, easy) != CURLM_OK) return CURLE_FAILED_INIT;
    for (;;) {
        int running = 0, done = 0, poll_fd = -1, timeout_ms = 1000;
        if (curl_multi_perform(multi, &running) != CURLM_OK) break;
        CCurl_collect(multi, easy, &done, &result);
        if (done) {
            // The connection, if libcurl keeps it for the next request (else CURL_SOCKET_BAD).
            if (kept_socket != NULL && result == CURLE_OK &&
                curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, kept_socket) != CURLE_OK)
                *kept_socket = CURL_SOCKET_BAD;
            break;
        }
        if (running == 0) break; /* ended without a message: cannot happen; never loop on it */
        if (check != NULL && check(context, &poll_fd, &timeout_ms)) {
            result = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        {
            struct curl_waitfd extra = { poll_fd, CURL_WAIT_POLLIN, 0 };
            if (curl_multi_poll(multi, poll_fd >= 0 ? &extra : NULL, poll_fd >= 0 ? 1 : 0,
                                timeout_ms, NULL) != CURLM_OK)
                break;
        }
    }
    // Removing an unfinished transfer closes its connection: nothing half-done is reused.
    curl_multi_remove_handle(multi, easy);
    return result;
}

/// One request on the sign-in's multi handle, as curl_easy_perform would run it.
static inline CURLcode CCurl_multi_run(CURLM *_Nonnull multi, CURL *_Nonnull easy) {
    return CCurl_multi_run_checked(multi, easy, NULL, NULL, NULL);
}

/// Drives `multi` until the transfer of `easy` (added earlier, with `pending` as its
/// CURLOPT_PRIVATE) has ended, removes it and returns its result.
static inline CURLcode CCurl_multi_finish(CURLM *_Nonnull multi, CURL *_Nonnull easy, CCurl_pending *_Nonnull pending) {
    while (!pending->done) {
        int running = 0, unused = 0;
        CURLcode ignored = CURLE_OK;
        if (curl_multi_perform(multi, &running) != CURLM_OK) break;
        CCurl_collect(multi, NULL, &unused, &ignored);
        if (pending->done || running == 0) break;
        if (curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) break;
    }
    curl_multi_remove_handle(multi, easy);
    return pending->done ? pending->result : CURLE_FAILED_INIT;
}

/// At most one connection to a host per sign-in: a second transfer (a prefetch beside the
/// grant) shares it (HTTP/2) or waits for it (HTTP/1.1), and never opens another.
static inline CURLMcode CCurl_multi_one_connection_per_host(CURLM *_Nonnull multi) {
    return curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
}

/// The state a warm-up thread shares with the thread that started it. Made by CCurl_warmup_new
/// and freed by CCurl_warmup_free after pthread_join. Until the join, the starting thread only
/// calls CCurl_warmup_answered (an atomic store and a write to an eventfd); `multi` and `easy`
/// are the warm-up thread's alone. After the join, the results below are read.
typedef struct CCurl_warmup {
    CURLM *_Nonnull multi;
    CURL *_Nonnull easy;
    int wake_fd;              /* eventfd, readable once the person has answered */
    atomic_int answered;      /* 1 once the person has answered (or the prompt failed) */
    atomic_int connected;     /* 1 once the current warm-up request's connection is up */
    long hold_ms;             /* wait this long before connecting: a machine answers at once */
    long grace_ms;            /* after the answer, how long a connected request may still take */
    int max_connections;      /* connections the warm-up may open, the first one included */
    /* Results, read after the join. */
    int connections;          /* warm-up requests sent (each on a new connection) */
    int reconnects;           /* of those, after the IdP closed the idle connection */
    CURLcode first_result;    /* the first request's result */
    long first_status;        /* and its HTTP status (0: none) */
    /* The warm-up thread's own bookkeeping. */
    struct timespec answered_at;
    int answer_seen;
} CCurl_warmup;

static int CCurl_warmup_prereq(void *_Nullable clientp, char *_Nullable primary_ip, char *_Nullable local_ip,
                               int primary_port, int local_port) {
    (void)primary_ip; (void)local_ip; (void)primary_port; (void)local_port;
    if (clientp != NULL) atomic_store(&((CCurl_warmup *)clientp)->connected, 1);
    return CURL_PREREQFUNC_OK;
}

static size_t CCurl_discard(char *_Nonnull ptr, size_t size, size_t nmemb, void *_Nullable userdata) {
    (void)ptr; (void)userdata;
    return size * nmemb;
}

static long CCurl_ms_since(const struct timespec *_Nonnull since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/// While the warm-up request runs: go on until the person answers; after the answer, give it
/// up at once if its connection is not up yet (the sign-in connects by itself, no slower than
/// without a warm-up), else let it finish for at most grace_ms.
static int CCurl_warmup_check(void *_Nullable context, int *_Nonnull poll_fd, int *_Nonnull timeout_ms) {
    CCurl_warmup *w = context;
    long left;
    if (w == NULL) return 1;
    if (!atomic_load(&w->answered)) {
        *poll_fd = w->wake_fd;
        return 0;
    }
    if (!atomic_load(&w->connected)) return 1;
    if (!w->answer_seen) {
        w->answer_seen = 1;
        clock_gettime(CLOCK_MONOTONIC, &w->answered_at);
    }
    left = w->grace_ms - CCurl_ms_since(&w->answered_at);
    if (left <= 0) return 1;
    if (left < *timeout_ms) *timeout_ms = (int)left;
    return 0;
}

/// A warm-up of `multi` with `easy` (a GET the caller has set up), or NULL (no memory, no
/// eventfd, or libcurl refused the pre-request callback).
static inline CCurl_warmup *_Nullable CCurl_warmup_new(CURLM *_Nonnull multi, CURL *_Nonnull easy, long hold_ms,
                                                       long grace_ms, int max_connections) {
    CCurl_warmup *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    w->multi = multi;
    w->easy = easy;
    w->hold_ms = hold_ms;
    w->grace_ms = grace_ms;
    w->max_connections = max_connections;
    w->first_result = CURLE_FAILED_INIT;
    atomic_init(&w->answered, 0);
    atomic_init(&w->connected, 0);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake_fd < 0 ||
        curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, CCurl_warmup_prereq) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PREREQDATA, w) != CURLE_OK) {
        if (w->wake_fd >= 0) close(w->wake_fd);
        free(w);
        return NULL;
    }
    return w;
}

/// The person answered (or the prompt failed): the warm-up thread ends as soon as it can.
/// Called by the starting thread; safe at any time, any number of times.
static inline void CCurl_warmup_answered(CCurl_warmup *_Nonnull w) {
    uint64_t one = 1;
    atomic_store(&w->answered, 1);
    while (write(w->wake_fd, &one, sizeof one) < 0 && errno == EINTR) {}
}

/// After pthread_join only.
static inline void CCurl_warmup_free(CCurl_warmup *_Nullable w) {
    if (w == NULL) return;
    (void)curl_easy_setopt(w->easy, CURLOPT_PREREQFUNCTION, NULL);
    (void)curl_easy_setopt(w->easy, CURLOPT_PREREQDATA, NULL);
    close(w->wake_fd);
    free(w);
}

static inline int CCurl_warmup_connections(const CCurl_warmup *_Nonnull w) { return w->connections; }
static inline int CCurl_warmup_reconnects(const CCurl_warmup *_Nonnull w) { return w->reconnects; }
static inline CURLcode CCurl_warmup_first_result(const CCurl_warmup *_Nonnull w) { return w->first_result; }
static inline long CCurl_warmup_first_status(const CCurl_warmup *_Nonnull w) { return w->first_status; }

/// The warm-up thread (pthread start routine; the argument is a CCurl_warmup). Waits hold_ms
/// (an answer in that time ends it: nothing was sent); sends the GET, which opens the
/// connection; then watches the idle connection until the answer comes. If the IdP closes it
/// meanwhile (its keep-alive time is shorter than the person's typing), the GET is sent again
/// on a new connection, up to max_connections in all. The GET's answer is kept (the caller's
/// write callback) from the first request only. Every wait here also wakes on the answer; the
/// thread blocks no signal of its own (the starting thread blocks them all around
/// pthread_create, so the host's signals never land here).
static void *_Nullable CCurl_warmup_thread(void *_Nullable context) {
    CCurl_warmup *w = context;
    struct pollfd hold;
    if (w == NULL) return NULL;
    hold.fd = w->wake_fd;
    hold.events = POLLIN;
    hold.revents = 0;
    if (w->hold_ms > 0 && poll(&hold, 1, (int)w->hold_ms) != 0) return NULL;
    while (!atomic_load(&w->answered) && w->connections < w->max_connections) {
        curl_socket_t sock = CURL_SOCKET_BAD;
        CURLcode result;
        if (w->connections > 0) {
            /* Only the first answer is kept; later ones are only for the connection. */
            if (curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, CCurl_discard) != CURLE_OK ||
                curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, NULL) != CURLE_OK ||
                curl_easy_setopt(w->easy, CURLOPT_HEADERFUNCTION, CCurl_discard) != CURLE_OK ||
                curl_easy_setopt(w->easy, CURLOPT_HEADERDATA, NULL) != CURLE_OK)
                break;
            w->reconnects++;
        }
        atomic_store(&w->connected, 0);
        w->connections++;
        result = CCurl_multi_run_checked(w->multi, w->easy, CCurl_warmup_check, w, &sock);
        if (w->connections == 1) {
            long status = 0;
            w->first_result = result;
            if (result == CURLE_OK && curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
                w->first_status = status;
        }
        /* Failed (the IdP is down: the sign-in finds out by itself), or the IdP closes
           connections after each answer: nothing to keep warm. */
        if (result != CURLE_OK || sock == CURL_SOCKET_BAD) break;
        {
            /* Idle: wait for the answer, or for the IdP to close the connection (only its
               end wakes this poll: POLLRDHUP, not POLLIN, so a late TLS message does not). */
            struct pollfd watch[2] = { { w->wake_fd, POLLIN, 0 }, { sock, POLLRDHUP, 0 } };
            int n;
            do { n = poll(watch, 2, -1); } while (n < 0 && errno == EINTR);
            if (n < 0 || (watch[0].revents & POLLIN) != 0) break;
            if ((watch[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0) break;
        }
    }
    return NULL;
}

#endif
