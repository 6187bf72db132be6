#ifndef LLMQ_CCURL_SHIM_H
#define LLMQ_CCURL_SHIM_H

// Swift cannot call C variadic functions, so each variadic curl entry point gets
// fixed-argument wrappers, one per argument kind. Static inline: the module needs
// no C target. The GCC type-check macros are off because they would wrap every
// call below in a statement expression that only checks constant options.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#endif

static inline CURLcode llmq_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode llmq_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode llmq_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

/// For CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION (same C type).
static inline CURLcode llmq_easy_setopt_write_callback(CURL *handle, CURLoption option,
                                                       curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode llmq_easy_setopt_read_callback(CURL *handle, curl_read_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_READFUNCTION, callback);
}

static inline CURLcode llmq_easy_setopt_seek_callback(CURL *handle, curl_seek_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, callback);
}

static inline CURLcode llmq_easy_setopt_prereq_callback(CURL *handle, curl_prereq_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, callback);
}

static inline CURLMcode llmq_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

static inline CURLMcode llmq_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) {
    return curl_multi_setopt(multi, option, value);
}

static inline CURLMcode llmq_multi_setopt_socket_callback(CURLM *multi, curl_socket_callback callback) {
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, callback);
}

static inline CURLMcode llmq_multi_setopt_timer_callback(CURLM *multi, curl_multi_timer_callback callback) {
    return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, callback);
}

static inline CURLcode llmq_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode llmq_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/// For CURLINFO_PRIVATE and other pointer-valued infos.
static inline CURLcode llmq_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, (char **)value);
}

/// Names the calling thread (shown by top -H, perf and debuggers).
static inline void llmq_set_thread_name(const char *name) {
#ifdef __linux__
    prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}

// Macros built from other macros, which Swift does not import.
static inline long llmq_global_all(void) { return CURL_GLOBAL_ALL; }
static inline int llmq_pause_cont(void) { return CURLPAUSE_CONT; }
static inline curl_socket_t llmq_socket_timeout(void) { return CURL_SOCKET_TIMEOUT; }

#endif
