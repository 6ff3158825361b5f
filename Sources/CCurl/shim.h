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

#endif
