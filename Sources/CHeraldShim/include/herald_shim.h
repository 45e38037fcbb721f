/*
 * The one C shim: what Swift cannot call directly. A persistent libevent
 * adapter for hiredis (the stock 0.14 adapter is all static functions and
 * re-adds its read event on every wake-up), typed wrappers for libcurl's
 * variadic setopt/getinfo and its Digest authentication, and eventfd, which Glibc does not export.
 */
#ifndef HERALD_SHIM_H
#define HERALD_SHIM_H

#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <event2/event.h>
#include <curl/curl.h>

/* The most elements Herald accepts in one RESP array: hiredis allocates the
 * element pointers when it reads the header, before any element arrived, so
 * without a bound one "*2000000000" line makes it allocate 16 GB. */
#define HERALD_REDIS_MAX_ARRAY_ELEMENTS (1 << 20)

/* Makes a hiredis reader refuse (a protocol error, "Out of memory" in
 * hiredis 0.14's words) an array header above HERALD_REDIS_MAX_ARRAY_ELEMENTS.
 * Call on every reader: a context's (c->reader), an async one's (ac->c.reader)
 * and one made with redisReaderCreate. */
void herald_redis_limit_reader(redisReader *r);

/* Attaches an async hiredis context to a libevent base with one EV_PERSIST
 * read event and a one-shot write event. Returns 0 on success. */
int herald_redis_attach(redisAsyncContext *ac, struct event_base *base);

/* File descriptor of an async context (for keepalive and diagnostics). */
int herald_redis_fd(const redisAsyncContext *ac);

/* Enables TCP keepalive on the context's socket (no-op on unix sockets). */
int herald_redis_keepalive(redisAsyncContext *ac);

/* Error string of a context, or "" when none. */
const char *herald_redis_errstr(const redisAsyncContext *ac);
int herald_redis_err(const redisAsyncContext *ac);

/* eventfd(2) for cross-thread wake-ups; -1 and errno on failure. */
int herald_eventfd(void);

/* libcurl's variadic functions, typed. */
CURLcode herald_curl_setopt_long(CURL *h, CURLoption opt, long v);
CURLcode herald_curl_setopt_string(CURL *h, CURLoption opt, const char *v);
CURLcode herald_curl_setopt_pointer(CURL *h, CURLoption opt, void *v);
CURLcode herald_curl_setopt_writefunction(CURL *h, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode herald_curl_setopt_readfunction(CURL *h, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode herald_curl_getinfo_long(CURL *h, CURLINFO info, long *out);

/* HTTP Digest authentication (CURLOPT_HTTPAUTH=CURLAUTH_DIGEST, CURLOPT_USERNAME,
 * CURLOPT_PASSWORD): CURLAUTH_DIGEST is a cast macro Swift does not import. */
CURLcode herald_curl_set_digest_auth(CURL *h, const char *user, const char *password);

/* CURLOPT_DEBUGFUNCTION, typed: the SMTP client keeps the server's replies
 * (CURLINFO_HEADER_IN) so an error can quote them. Needs CURLOPT_VERBOSE. */
CURLcode herald_curl_setopt_debugfunction(CURL *h, int (*fn)(CURL *, curl_infotype, char *, size_t, void *));

#endif
