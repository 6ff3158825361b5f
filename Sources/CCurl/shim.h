// Typed wrappers for libcurl's variadic calls.
//
// curl_easy_setopt and curl_easy_getinfo are variadic, and Swift cannot call C variadic
// functions; the option constants that are built from casts (CURLAUTH_*) are not imported
// either. Each wrapper below fixes one argument type. They can go once Swift imports
// variadic C functions.
#ifndef CLOUDLOGIN_CCURL_SHIM_H
#define CLOUDLOGIN_CCURL_SHIM_H

#include <curl/curl.h>

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

static inline CURLcode CCurl_getinfo_double(CURL *_Nonnull curl, CURLINFO info,
                                            double *_Nonnull value) {
    return curl_easy_getinfo(curl, info, value);
}

/// CURLAUTH_BASIC is defined with a cast, which Swift does not import.
static inline long CCurl_auth_basic(void) { return (long)CURLAUTH_BASIC; }

#endif
