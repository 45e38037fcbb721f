/*
 * See herald_shim.h. The hiredis adapter follows the shape of hiredis'
 * adapters/libevent.h, with a persistent read event so that a readable
 * socket costs one epoll_wait and one read, not two extra epoll_ctl calls.
 */
#include "herald_shim.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>

typedef struct herald_redis_events {
    redisAsyncContext *ac;
    struct event *rev;
    struct event *wev;
    int reading;
    int writing;
} herald_redis_events;

static void herald_on_read(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    herald_redis_events *e = arg;
    redisAsyncHandleRead(e->ac); /* may free e through cleanup: do not touch e after */
}

static void herald_on_write(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    herald_redis_events *e = arg;
    e->writing = 0;
    redisAsyncHandleWrite(e->ac);
}

static void herald_add_read(void *p) {
    herald_redis_events *e = p;
    if (!e->reading) { event_add(e->rev, NULL); e->reading = 1; }
}

static void herald_del_read(void *p) {
    herald_redis_events *e = p;
    if (e->reading) { event_del(e->rev); e->reading = 0; }
}

static void herald_add_write(void *p) {
    herald_redis_events *e = p;
    if (!e->writing) { event_add(e->wev, NULL); e->writing = 1; }
}

static void herald_del_write(void *p) {
    herald_redis_events *e = p;
    if (e->writing) { event_del(e->wev); e->writing = 0; }
}

static void herald_cleanup(void *p) {
    herald_redis_events *e = p;
    event_free(e->rev);
    event_free(e->wev);
    free(e);
}

int herald_redis_attach(redisAsyncContext *ac, struct event_base *base) {
    if (ac->ev.data != NULL) return -1;
    herald_redis_events *e = calloc(1, sizeof(*e));
    if (e == NULL) return -1;
    e->ac = ac;
    e->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, herald_on_read, e);
    e->wev = event_new(base, ac->c.fd, EV_WRITE, herald_on_write, e);
    if (e->rev == NULL || e->wev == NULL) {
        if (e->rev) event_free(e->rev);
        if (e->wev) event_free(e->wev);
        free(e);
        return -1;
    }
    ac->ev.addRead = herald_add_read;
    ac->ev.delRead = herald_del_read;
    ac->ev.addWrite = herald_add_write;
    ac->ev.delWrite = herald_del_write;
    ac->ev.cleanup = herald_cleanup;
    ac->ev.data = e;
    return 0;
}

int herald_redis_fd(const redisAsyncContext *ac) { return ac->c.fd; }

/* hiredis' own reply functions (static in hiredis.c), read from the first
 * reader seen, with createArray wrapped by the bound. */
static redisReplyObjectFunctions herald_limited_functions;
static redisReplyObjectFunctions *herald_stock_functions;
static pthread_once_t herald_limited_once = PTHREAD_ONCE_INIT;
static redisReplyObjectFunctions *herald_pending_stock;

static void *herald_create_array(const redisReadTask *task, int elements) {
    if (elements > HERALD_REDIS_MAX_ARRAY_ELEMENTS) return NULL; /* the reader reports an error */
    return herald_stock_functions->createArray(task, elements);
}

static void herald_limited_init(void) {
    herald_stock_functions = herald_pending_stock;
    herald_limited_functions = *herald_stock_functions;
    herald_limited_functions.createArray = herald_create_array;
}

void herald_redis_limit_reader(redisReader *r) {
    if (r == NULL || r->fn == NULL || r->fn == &herald_limited_functions) return;
    herald_pending_stock = r->fn;
    pthread_once(&herald_limited_once, herald_limited_init);
    r->fn = &herald_limited_functions;
}

int herald_redis_keepalive(redisAsyncContext *ac) {
    if (ac->c.connection_type != REDIS_CONN_TCP) return 0;
    return redisEnableKeepAlive(&ac->c);
}

const char *herald_redis_errstr(const redisAsyncContext *ac) { return ac->errstr ? ac->errstr : ""; }
int herald_redis_err(const redisAsyncContext *ac) { return ac->err; }

int herald_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

CURLcode herald_curl_setopt_long(CURL *h, CURLoption opt, long v) { return curl_easy_setopt(h, opt, v); }
CURLcode herald_curl_setopt_string(CURL *h, CURLoption opt, const char *v) { return curl_easy_setopt(h, opt, v); }
CURLcode herald_curl_setopt_pointer(CURL *h, CURLoption opt, void *v) { return curl_easy_setopt(h, opt, v); }
CURLcode herald_curl_setopt_writefunction(CURL *h, size_t (*fn)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn);
}
CURLcode herald_curl_setopt_readfunction(CURL *h, size_t (*fn)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(h, CURLOPT_READFUNCTION, fn);
}
CURLcode herald_curl_getinfo_long(CURL *h, CURLINFO info, long *out) { return curl_easy_getinfo(h, info, out); }
CURLcode herald_curl_set_digest_auth(CURL *h, const char *user, const char *password) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, CURLOPT_USERNAME, user);
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, CURLOPT_PASSWORD, password);
    return rc;
}
CURLcode herald_curl_setopt_debugfunction(CURL *h, int (*fn)(CURL *, curl_infotype, char *, size_t, void *)) {
    return curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, fn);
}
