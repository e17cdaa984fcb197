/*
 * The reference server scripts/bench.sh measures against, kept as it came.
 * relay.c - thin reference servers: the ruler for diplom's benchmarks.
 *
 * They do no work a real pipeline needs (no JSON parsing, no ids, no queue),
 * so they show what HTTP and NATS alone cost on this machine. Compare diplom
 * with them in the same run, with the same load tool, never with a figure
 * from another day.
 *
 * Build:
 *   cc -O2 -o relay relay.c $(pkg-config --cflags --libs libmicrohttpd libcurl) -lnats -luuid -lpthread
 *
 * Usage: relay PORT pool|auto|tpc direct|proxy|js [UPSTREAM_PORT]
 *   direct  answers a fixed 60-byte JSON 200 once the body is read
 *   proxy   forwards the body to 127.0.0.1:UPSTREAM_PORT/ingest (blocking
 *           libcurl easy handle per server thread) and relays the answer
 *   js      publishes the body synchronously (js_Publish, PubAck awaited) to
 *           subject bench.ingest on $NATS_URL (stream BENCH, work queue,
 *           file storage, like diplom's); MSGID=1 adds a Nats-Msg-Id
 *   env: POOL (server threads, default 2), TURBO=1, PIDFILE, NATS_URL
 *
 * The two reference chains used for diplom's targets:
 *   two-hop relay (memory backend's shape): client -> A proxy -> B proxy -> C direct
 *     relay $C pool direct & relay $B pool proxy $C & relay $A pool proxy $B &
 *   sync publish behind one hop (nats backend's shape): client -> A proxy -> B js
 *     NATS_URL=nats://127.0.0.1:$N MSGID=1 relay $B pool js & relay $A pool proxy $B &
 * Load: wrk -t2 -c64 -d10s --latency -s ingest.lua http://127.0.0.1:$A/api/v1/ingest
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include <uuid/uuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <arpa/inet.h>

static const char OKBODY[] = "{\"status\":\"accepted\",\"id\":\"00000000-0000-0000-0000-0000000\"}"; // 60 bytes
static struct MHD_Response *ok_resp, *err_resp;
static enum { B_DIRECT, B_PROXY, B_JS } backend;
static char upstream_url[128];
static jsCtx *jss[16];
static int nconn = 1;
static atomic_uint rr;
static int use_msgid;
static atomic_long n_ok, n_err;

struct ctx { size_t len; char buf[8192]; };

static __thread CURL *t_curl;
struct wbuf { size_t len; char buf[4096]; };
static size_t wcb(char *p, size_t sz, size_t nm, void *ud) {
    struct wbuf *w = ud; size_t n = sz * nm;
    if (w->len + n < sizeof w->buf) { memcpy(w->buf + w->len, p, n); w->len += n; }
    return n;
}
static __thread struct curl_slist *t_hdrs;

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    (void)cls; (void)version;
    struct ctx *c = *con_cls;
    if (!c) {
        if (strcmp(method, "POST") != 0) { (void)url;
            return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, err_resp);
        }
        c = malloc(sizeof *c); c->len = 0; *con_cls = c; return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (c->len + n < sizeof c->buf) { memcpy(c->buf + c->len, upload_data, n); c->len += n; }
        *upload_data_size = 0; return MHD_YES;
    }
    c->buf[c->len] = 0;
    if (backend == B_DIRECT) {
        atomic_fetch_add(&n_ok, 1);
        return MHD_queue_response(conn, MHD_HTTP_OK, ok_resp);
    }
    if (backend == B_PROXY) {
        if (!t_curl) {
            t_curl = curl_easy_init();
            t_hdrs = curl_slist_append(NULL, "Content-Type: application/json");
            t_hdrs = curl_slist_append(t_hdrs, "Expect:");
            curl_easy_setopt(t_curl, CURLOPT_URL, upstream_url);
            curl_easy_setopt(t_curl, CURLOPT_HTTPHEADER, t_hdrs);
            curl_easy_setopt(t_curl, CURLOPT_WRITEFUNCTION, wcb);
            curl_easy_setopt(t_curl, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(t_curl, CURLOPT_TCP_NODELAY, 1L);
            curl_easy_setopt(t_curl, CURLOPT_TIMEOUT_MS, 5000L);
        }
        struct wbuf w; w.len = 0;
        curl_easy_setopt(t_curl, CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(t_curl, CURLOPT_POSTFIELDS, c->buf);
        curl_easy_setopt(t_curl, CURLOPT_POSTFIELDSIZE, (long)c->len);
        CURLcode rc = curl_easy_perform(t_curl);
        long code = 0; curl_easy_getinfo(t_curl, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200) { atomic_fetch_add(&n_err, 1); return MHD_queue_response(conn, MHD_HTTP_BAD_GATEWAY, err_resp); }
        struct MHD_Response *r = MHD_create_response_from_buffer(w.len, w.buf, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        atomic_fetch_add(&n_ok, 1);
        return ret;
    }
    // B_JS
    jsErrCode jerr = 0; jsPubAck *pa = NULL; jsPubOptions po; jsPubOptions_Init(&po);
    char idstr[40];
    if (use_msgid) { uuid_t u; uuid_generate_random(u); uuid_unparse_lower(u, idstr); po.MsgId = idstr; }
    jsCtx *js = jss[atomic_fetch_add(&rr, 1) % nconn];
    natsStatus s = js_Publish(&pa, js, "bench.ingest", c->buf, (int)c->len, &po, &jerr);
    if (s != NATS_OK) {
        if (atomic_fetch_add(&n_err, 1) < 3) fprintf(stderr, "js_Publish: %s jerr=%d\n", natsStatus_GetText(s), (int)jerr);
        return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, err_resp);
    }
    jsPubAck_Destroy(pa);
    atomic_fetch_add(&n_ok, 1);
    return MHD_queue_response(conn, MHD_HTTP_OK, ok_resp);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)conn; (void)toe; free(*con_cls); *con_cls = NULL;
}

static volatile sig_atomic_t stop;
static void onsig(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage\n"); return 2; }
    int port = atoi(argv[1]); const char *thr = argv[2]; const char *be = argv[3];
    if (!strcmp(be, "direct")) backend = B_DIRECT;
    else if (!strcmp(be, "proxy")) { backend = B_PROXY; snprintf(upstream_url, sizeof upstream_url, "http://127.0.0.1:%s/ingest", argv[4]); curl_global_init(CURL_GLOBAL_DEFAULT); }
    else if (!strcmp(be, "js")) {
        backend = B_JS; use_msgid = getenv("MSGID") != NULL; if (getenv("NCONN")) nconn = atoi(getenv("NCONN"));
        for (int i = 0; i < nconn; i++) {
            natsConnection *nc; natsOptions *o; natsOptions_Create(&o); natsOptions_SetURL(o, getenv("NATS_URL") ? getenv("NATS_URL") : "nats://127.0.0.1:4333");
            if (natsConnection_Connect(&nc, o) != NATS_OK || natsConnection_JetStream(&jss[i], nc, NULL) != NATS_OK) { fprintf(stderr, "nats connect failed\n"); return 1; }
        }
        { /* the reference stream: work queue, file storage, discard new, like the product's */
            jsStreamConfig sc; jsStreamConfig_Init(&sc); const char *subj[] = {"bench.>"};
            sc.Name = "BENCH"; sc.Subjects = subj; sc.SubjectsLen = 1; sc.Retention = js_WorkQueuePolicy;
            sc.Storage = js_FileStorage; sc.Discard = js_DiscardNew; sc.MaxMsgs = 10000000; sc.Duplicates = 120000000000LL;
            jsErrCode je = 0; jsStreamInfo *si = NULL; js_AddStream(&si, jss[0], &sc, NULL, &je); if (si) jsStreamInfo_Destroy(si);
        }
    } else return 2;
    ok_resp = MHD_create_response_from_buffer(sizeof OKBODY - 1, (void *)OKBODY, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(ok_resp, "Content-Type", "application/json");
    err_resp = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    int pool = getenv("POOL") ? atoi(getenv("POOL")) : 2;
    if (getenv("TURBO")) flags |= MHD_USE_TURBO;
    struct MHD_Daemon *d;
    struct sockaddr_in sa; memset(&sa, 0, sizeof sa); sa.sin_family = AF_INET; sa.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr); // loopback only
    if (!strcmp(thr, "tpc")) {
        flags |= MHD_USE_THREAD_PER_CONNECTION;
        d = MHD_start_daemon(flags, port, NULL, NULL, handler, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                             MHD_OPTION_CONNECTION_LIMIT, 1000, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
    } else {
        flags |= !strcmp(thr, "auto") ? MHD_USE_AUTO : MHD_USE_EPOLL;
        d = MHD_start_daemon(flags, port, NULL, NULL, handler, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)pool,
                             MHD_OPTION_CONNECTION_LIMIT, 1000, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
    }
    if (!d) { fprintf(stderr, "MHD_start_daemon failed\n"); return 1; }
    if (!strcmp(thr, "auto")) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_FLAGS);
        fprintf(stderr, "auto resolved flags=0x%x (EPOLL=%d POLL=%d)\n", di ? (unsigned)di->flags : 0,
                di ? !!(di->flags & MHD_USE_EPOLL) : -1, di ? !!(di->flags & MHD_USE_POLL) : -1);
    }
    fprintf(stderr, "listening on 127.0.0.1:%d (%s/%s) pid=%d\n", port, thr, be, (int)getpid());
    if (getenv("PIDFILE")) { FILE *pf = fopen(getenv("PIDFILE"), "w"); if (pf) { fprintf(pf, "%d\n", (int)getpid()); fclose(pf); } }
    signal(SIGTERM, onsig); signal(SIGINT, onsig);
    while (!stop) pause();
    MHD_stop_daemon(d);
    fprintf(stderr, "served ok=%ld err=%ld\n", (long)n_ok, (long)n_err);
    return 0;
}
