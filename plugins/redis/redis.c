/*
 * redis.c - the Redis driver: pub/sub channels or streams, over hiredis 0.14.
 *
 * Redis is both a common IoT message path and iotlat's own results store, so
 * measuring it is measuring something users already run.  Two modes:
 *
 *   pubsub   PUBLISH on one connection, SUBSCRIBE on another.  Fire and
 *            forget: Redis drops a message nobody is subscribed to, which is
 *            why wait_ready() can wait for subscribers (PUBSUB NUMSUB).
 *   streams  XADD topic MAXLEN ~ N * data <payload>, read with XREAD BLOCK
 *            from the stream's end at subscribe() time, or with XREADGROUP
 *            in a consumer group and XACK after delivery.
 *
 * hiredis 0.14 offers blocking calls or an async API that wants an event
 * library; neither fits an ABI whose publish() must not wait for a round trip
 * and whose poll() must deliver on the caller's thread.  So hiredis is used
 * for what it does well - resolving and connecting (non-blocking, with
 * TCP_NODELAY) and parsing RESP - and this file owns the socket I/O: commands
 * are formatted into a reusable output buffer and sent with send(); replies
 * are read with recv() and fed to a redisReader whose reply objects live in an
 * arena that is reset after every reply, so the hot path allocates nothing.
 * Every command sent is recorded in a ring of "expected replies", because
 * Redis answers in order and that is how a pipelined reply is matched to its
 * command without waiting for it.
 *
 * Connection state is a small non-blocking machine per connection (DOWN,
 * CONNECTING, HANDSHAKE, UP) driven from publish(), poll(), flush() and the
 * sync waits of open()/subscribe()/wait_ready().  A lost connection reports
 * DISCONNECTED once, is retried with a bounded exponential backoff, and comes
 * back re-subscribed before RECONNECTED is reported.  Because the socket is
 * replaced on every reconnection, fd() returns an epoll descriptor that
 * watches the current subscribe socket plus a timerfd for the driver's own
 * deadlines (reconnect attempts, liveness pings): a host that registered
 * fd() once keeps working across reconnections.
 *
 * Options (IOTLAT_REDIS_*): HOST, PORT, PASSWORD, USER, DB, MODE, MAXLEN,
 * GROUP, CONSUMER, BLOCK_MS, PIPELINE, TIMEOUT_MS, WAIT_SUBSCRIBERS; see
 * redis_options below and plugins/redis/README.md.
 */
#include "drvutil.h"
#include "iotlat_driver.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS 16
#define MAX_BATCH 4096         /* messages per poll() before returning to the loop */
#define READ_CHUNK 65536       /* bytes per recv() */
#define READS_PER_FILL 4       /* recv() calls per fill, to keep one call bounded */
#define READER_KEEP (1 << 20)  /* reader buffer kept between bursts, bytes */
#define ARENA_BLOCK 65536      /* reply arena grows in blocks of this size */
#define XREAD_COUNT "1024"     /* stream entries per XREAD reply */
#define BACKOFF_MIN_MS 50      /* first reconnection attempt after a loss */
#define BACKOFF_MAX_MS 500     /* attempts never further apart than this */
#define INLINE_WAIT_MS 20      /* publish() waits this long, once per attempt */
#define WINDOW_WAIT_MS 50      /* publish() waits this long for pipeline room */
#define SERVICE_US 1000        /* publish() reads replies at least this often */
#define IDLE_PING_MS 1000      /* a silent subscribe connection is pinged */
#define NEVER INT64_MAX

enum { MODE_PUBSUB, MODE_STREAMS };
enum { ST_DOWN, ST_CONNECTING, ST_HANDSHAKE, ST_UP };
enum { T_PENDING, T_READY, T_FAILED };

/* What a command sent on a connection expects back.  Redis replies in order,
 * so the ring of these entries tells how to read each reply as it comes. */
enum {
    K_AUTH = 1,  /* AUTH [user] password */
    K_SELECT,    /* SELECT db */
    K_HELLO,     /* PING in the handshake: proves we may run commands */
    K_INFO,      /* INFO server, first connection only: server version */
    K_SUBSCRIBE, /* SUBSCRIBE topic */
    K_XGROUP,    /* XGROUP CREATE topic group $ MKSTREAM (subscribe side) */
    K_MKGROUP,   /* the same from wait_ready() on the publish connection */
    K_XREVRANGE, /* XREVRANGE topic + - COUNT 1: where a plain XREAD starts */
    K_XREAD,     /* XREAD / XREADGROUP ... BLOCK */
    K_XACK,      /* XACK topic group id... */
    K_PUBLISH,   /* PUBLISH topic payload */
    K_XADD,      /* XADD topic [MAXLEN ~ n] * data payload */
    K_NUMSUB,    /* PUBSUB NUMSUB topic */
    K_PING,      /* liveness PING on an idle connection */
};
#define KF_HS 0x100u /* part of the connection handshake */
#define K_MAKE(kind, hs, topic) \
    ((uint32_t)(kind) | ((hs) ? KF_HS : 0u) | ((uint32_t)(topic) << 16))
#define K_KIND(e) ((int)((e) & 0xffu))
#define K_TOPIC(e) ((int)((e) >> 16))

/* ---- reply arena ----
 * The reader builds reply trees through the functions below; nodes and
 * strings are bump-allocated from blocks that are kept and reused, so a
 * steady stream of replies allocates nothing once the blocks exist. */

typedef struct ablock {
    struct ablock *next;
    size_t cap, used;
    char mem[]; /* offset 24: 8-byte aligned, which is all a redisReply needs */
} ablock;

typedef struct arena {
    ablock *head, *cur;
} arena;

_Static_assert(offsetof(ablock, mem) % 8 == 0, "arena blocks must stay 8-byte aligned");

static void *arena_alloc(arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (a->cur && a->cur->cap - a->cur->used >= n) {
        void *p = a->cur->mem + a->cur->used;
        a->cur->used += n;
        return p;
    }
    ablock *nx = a->cur ? a->cur->next : a->head;
    if (!nx || nx->cap < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        ablock *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->next = nx;
        if (a->cur)
            a->cur->next = b;
        else
            a->head = b;
        nx = b;
    }
    a->cur = nx;
    nx->used = n;
    return nx->mem;
}

static void arena_reset(arena *a)
{
    for (ablock *b = a->head; b; b = b->next)
        b->used = 0;
    a->cur = a->head;
}

static void arena_free(arena *a)
{
    ablock *b = a->head;
    while (b) {
        ablock *n = b->next;
        free(b);
        b = n;
    }
    a->head = a->cur = NULL;
}

/* A reply node in the arena, linked into its parent array as hiredis's own
 * functions do.  The layout is hiredis's redisReply, but these nodes must
 * never reach freeReplyObject(). */
static redisReply *node(const redisReadTask *t, int type)
{
    redisReply *r = arena_alloc(t->privdata, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    if (t->parent) {
        redisReply *p = t->parent->obj;
        p->element[t->idx] = r;
    }
    return r;
}

static void *mk_string(const redisReadTask *t, char *str, size_t len)
{
    redisReply *r = node(t, t->type);
    if (!r || !(r->str = arena_alloc(t->privdata, len + 1)))
        return NULL;
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *mk_array(const redisReadTask *t, int elements)
{
    redisReply *r = node(t, REDIS_REPLY_ARRAY);
    if (!r)
        return NULL;
    r->elements = (size_t)elements;
    if (elements > 0 &&
        !(r->element = arena_alloc(t->privdata, (size_t)elements * sizeof(redisReply *))))
        return NULL;
    return r;
}

static void *mk_integer(const redisReadTask *t, long long v)
{
    redisReply *r = node(t, REDIS_REPLY_INTEGER);
    if (r)
        r->integer = v;
    return r;
}

static void *mk_nil(const redisReadTask *t) { return node(t, REDIS_REPLY_NIL); }

static void free_nothing(void *obj) { (void)obj; /* the arena owns every node */ }

static redisReplyObjectFunctions arena_fns = {mk_string, mk_array, mk_integer, mk_nil,
                                              free_nothing};

/* ---- instance ---- */

typedef struct rtopic {
    char *name;
    size_t len;
    iotlat_msg_fn fn;
    void *ud;
    int state;         /* T_*: set up at the server or not (yet) */
    char last_id[48];  /* streams without a group: read entries after this */
    char why[640];     /* T_FAILED: the server's refusal */
} rtopic;

struct rinst;

typedef struct rconn {
    struct rinst *r;
    const char *what; /* "publish" or "subscribe": names it in messages */
    int is_sub;
    int state;        /* ST_* */
    int ever_up;      /* reached ST_UP once: later losses are reconnected */
    redisContext *ctx;
    redisReader *rd;
    int fd;
    int64_t deadline;     /* monotonic us: CONNECTING/HANDSHAKE ends by then */
    int64_t next_attempt; /* monotonic us: DOWN, next connection attempt */
    int backoff_ms;
    int attempts;         /* failed attempts since the loss */
    int waited;           /* publish() already waited once in this attempt */
    int hs_pending;       /* handshake replies still expected */
    char *out;            /* formatted commands not yet sent */
    size_t out_off, out_len, out_cap;
    uint32_t *ring; /* expected replies, in order */
    size_t ring_cap, ring_head, ring_n;
    arena ar;
    redisReply *held;      /* a message reply parsed outside poll() */
    int more;              /* replies may be left in the reader */
    int64_t t_activity;    /* monotonic us: last bytes received */
    int64_t expect_by;     /* monotonic us: an answer is due by then */
    int64_t t_recv_us;     /* host clock when the last bytes arrived */
    int64_t last_service;  /* monotonic us: publish() last read replies */
    int read_inflight;     /* a blocking XREAD is outstanding */
    int64_t read_retry_at; /* after a refused XREAD, wait until then */
    long long numsub;      /* K_NUMSUB answer, -1 while awaited */
    int mkgroup;           /* K_MKGROUP: 0 awaited, 1 done, -1 refused */
    int err_code;          /* why the connection went down (IOTLAT_E*) */
    char err[640];
    uint64_t refused;      /* error replies to data commands */
    char first_refusal[240];
} rconn;

typedef struct rinst {
    const iotlat_host *host;
    char host_name[256];
    long port;
    char password[512];
    int has_password;
    char user[128];
    char group[128];
    char consumer[128];
    long db, maxlen, block_ms, pipeline, timeout_ms, wait_subs;
    int mode;
    char addr[300];        /* host:port, for messages */
    char maxlen_str[24];
    char block_str[24];
    char server_version[32];
    rconn pub, sub;
    int has_pub, has_sub;
    rtopic topics[MAX_TOPICS];
    int ntopics;
    int outage; /* DISCONNECTED reported, RECONNECTED not yet */
    int epfd, tfd, ep_fd;
    uint32_t ep_events;
    int64_t tfd_at;
    char *rbuf; /* recv() buffer, READ_CHUNK bytes */
} rinst;

/* Every option the driver accepts.  URL is accepted and ignored on purpose:
 * IOTLAT_REDIS_URL is the core's results-store address, not a driver option,
 * and the unknown-option check must not reject it when both are set. */
static const char *const redis_options[] = {
    "HOST",     "PORT",     "PASSWORD",   "USER",       "DB",
    "MODE",     "MAXLEN",   "GROUP",      "CONSUMER",   "BLOCK_MS",
    "PIPELINE", "TIMEOUT_MS", "WAIT_SUBSCRIBERS", "URL", NULL};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *kind_name(int k)
{
    static const char *const names[] = {"?",       "AUTH",      "SELECT",    "PING",
                                        "INFO",    "SUBSCRIBE", "XGROUP",    "XGROUP",
                                        "XREVRANGE", "XREAD",   "XACK",      "PUBLISH",
                                        "XADD",    "PUBSUB",    "PING"};
    return k > 0 && k < (int)(sizeof names / sizeof *names) ? names[k] : "?";
}

/* ---- output: RESP commands formatted into the connection's buffer ---- */

static size_t dec_len(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static char *put_dec(char *p, size_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *p++ = tmp[--n];
    return p;
}

static int out_reserve(rconn *c, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_cap - c->out_len >= n)
        return 0;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= n)
            return 0;
    }
    size_t cap = c->out_cap ? c->out_cap : 16384;
    while (cap - c->out_len < n)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return IOTLAT_ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* "*argc\r\n", then cmd_arg() argc times, then cmd_end(). */
static int cmd_begin(rconn *c, size_t argc)
{
    if (out_reserve(c, 3 + dec_len(argc)))
        return IOTLAT_ENOMEM;
    char *p = c->out + c->out_len;
    *p++ = '*';
    p = put_dec(p, argc);
    *p++ = '\r';
    *p++ = '\n';
    c->out_len = (size_t)(p - c->out);
    return 0;
}

static int cmd_arg(rconn *c, const void *data, size_t len)
{
    if (out_reserve(c, 5 + dec_len(len) + len))
        return IOTLAT_ENOMEM;
    char *p = c->out + c->out_len;
    *p++ = '$';
    p = put_dec(p, len);
    *p++ = '\r';
    *p++ = '\n';
    if (len)
        memcpy(p, data, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    c->out_len = (size_t)(p - c->out);
    return 0;
}

static int ring_push(rconn *c, uint32_t e)
{
    if (c->ring_n == c->ring_cap) {
        size_t cap = c->ring_cap ? c->ring_cap * 2 : 64;
        uint32_t *n = malloc(cap * sizeof *n);
        if (!n)
            return IOTLAT_ENOMEM;
        for (size_t i = 0; i < c->ring_n; i++)
            n[i] = c->ring[(c->ring_head + i) % c->ring_cap];
        free(c->ring);
        c->ring = n;
        c->ring_cap = cap;
        c->ring_head = 0;
    }
    c->ring[(c->ring_head + c->ring_n) % c->ring_cap] = e;
    c->ring_n++;
    return 0;
}

static uint32_t ring_peek(const rconn *c) { return c->ring_n ? c->ring[c->ring_head] : 0; }

static uint32_t ring_pop(rconn *c)
{
    if (!c->ring_n)
        return 0;
    uint32_t e = c->ring[c->ring_head];
    c->ring_head = (c->ring_head + 1) % c->ring_cap;
    c->ring_n--;
    return e;
}

/* Records what the command just formatted expects back, and when an answer
 * is due: a blocking read may legitimately stay silent for BLOCK_MS. */
static int cmd_end(rconn *c, uint32_t e)
{
    int64_t now = mono_us();
    if (c->ring_n == 0)
        c->expect_by = now + c->r->timeout_ms * 1000;
    if (K_KIND(e) == K_XREAD) {
        int64_t by = now + (c->r->timeout_ms + c->r->block_ms) * 1000;
        if (by > c->expect_by)
            c->expect_by = by;
    }
    if (e & KF_HS)
        c->hs_pending++;
    return ring_push(c, e);
}

/* A command of NUL-terminated words, for everything but the hot path. */
static int cmd(rconn *c, uint32_t e, int argc, ...)
{
    va_list ap;
    int rc = cmd_begin(c, (size_t)argc);
    va_start(ap, argc);
    for (int i = 0; i < argc && !rc; i++) {
        const char *a = va_arg(ap, const char *);
        rc = cmd_arg(c, a, strlen(a));
    }
    va_end(ap);
    return rc ? rc : cmd_end(c, e);
}

/* ---- connection state ---- */

static void log_msg(rinst *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_msg(rinst *r, int level, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    r->host->log(r->host->host_ud, level, "%s", buf);
}

/* Point the fd() epoll set at the subscribe socket (or at none). */
static void ep_set(rinst *r, int fd, uint32_t events)
{
    if (r->epfd < 0 || (fd == r->ep_fd && events == r->ep_events))
        return;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (fd == r->ep_fd) {
        epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else {
        if (r->ep_fd >= 0)
            epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->ep_fd, NULL);
        if (fd >= 0)
            epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    r->ep_fd = fd;
    r->ep_events = events;
}

static void ep_refresh(rinst *r)
{
    rconn *c = &r->sub;
    if (!r->has_sub)
        return;
    if (c->fd < 0)
        ep_set(r, -1, 0);
    else if (c->state == ST_CONNECTING)
        ep_set(r, c->fd, EPOLLOUT);
    else
        ep_set(r, c->fd, EPOLLIN | (c->out_len > c->out_off ? EPOLLOUT : 0u));
}

static int all_up(rinst *r)
{
    return (!r->has_pub || r->pub.state == ST_UP) && (!r->has_sub || r->sub.state == ST_UP);
}

/* Drop the connection: free it, reset what it expected, schedule the next
 * attempt, and report the outage once for the whole instance. */
static void conn_down(rconn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_down(rconn *c, int code, const char *fmt, ...)
{
    rinst *r = c->r;
    int was_up = c->state == ST_UP;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->err_code = code;
    if (c->is_sub)
        ep_set(r, -1, 0); /* before the socket is closed */
    if (c->ctx)
        redisFree(c->ctx); /* closes the socket */
    c->ctx = NULL;
    if (c->rd)
        redisReaderFree(c->rd);
    c->rd = NULL;
    c->fd = -1;
    c->out_off = c->out_len = 0;
    c->ring_head = c->ring_n = 0;
    c->held = NULL;
    c->more = 0;
    arena_reset(&c->ar);
    c->read_inflight = 0;
    c->hs_pending = 0;
    c->state = ST_DOWN;
    c->next_attempt = mono_us() + (int64_t)c->backoff_ms * 1000;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (c->is_sub) {
        /* What the next connection must set up again.  A plain XREAD keeps
         * its position: after a reconnection it continues after the last
         * entry it delivered, so a stream that survived loses nothing. */
        for (int i = 0; i < r->ntopics; i++) {
            rtopic *t = &r->topics[i];
            if (r->mode == MODE_PUBSUB || r->group[0] || t->state != T_READY)
                t->state = T_PENDING;
        }
    }
    if (!c->ever_up)
        return; /* open() reports this itself */
    if (was_up) {
        c->attempts = 0;
        if (!r->outage) {
            r->outage = 1;
            r->host->event(r->host->host_ud, IOTLAT_EVENT_DISCONNECTED, c->err);
        }
    } else if (++c->attempts == 1) {
        log_msg(r, IOTLAT_LOG_WARN, "%s connection: reconnecting failed (%s); retrying every %d ms at most",
                c->what, c->err, BACKOFF_MAX_MS);
    }
}

static void conn_up(rconn *c)
{
    rinst *r = c->r;
    c->state = ST_UP;
    c->ever_up = 1;
    c->attempts = 0;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->t_activity = mono_us();
    if (c->is_sub)
        ep_refresh(r);
    if (r->outage && all_up(r)) {
        char why[340];
        r->outage = 0;
        snprintf(why, sizeof why, "reconnected to %s", r->addr);
        r->host->event(r->host->host_ud, IOTLAT_EVENT_RECONNECTED, why);
    }
}

/* The commands that set topic i up at the server. */
static int topic_setup(rconn *c, int i, int hs)
{
    rinst *r = c->r;
    rtopic *t = &r->topics[i];
    if (r->mode == MODE_PUBSUB) {
        t->state = T_PENDING;
        return cmd(c, K_MAKE(K_SUBSCRIBE, hs, i), 2, "SUBSCRIBE", t->name);
    }
    if (r->group[0]) {
        t->state = T_PENDING;
        return cmd(c, K_MAKE(K_XGROUP, hs, i), 6, "XGROUP", "CREATE", t->name, r->group,
                   "$", "MKSTREAM");
    }
    if (t->state == T_READY)
        return 0;
    t->state = T_PENDING;
    return cmd(c, K_MAKE(K_XREVRANGE, hs, i), 6, "XREVRANGE", t->name, "+", "-", "COUNT",
               "1");
}

static int send_handshake(rconn *c)
{
    rinst *r = c->r;
    int rc = 0;
    char db[24];
    if (r->has_password)
        rc = r->user[0] ? cmd(c, K_MAKE(K_AUTH, 1, 0), 3, "AUTH", r->user, r->password)
                        : cmd(c, K_MAKE(K_AUTH, 1, 0), 2, "AUTH", r->password);
    if (!rc && r->db) {
        snprintf(db, sizeof db, "%ld", r->db);
        rc = cmd(c, K_MAKE(K_SELECT, 1, 0), 2, "SELECT", db);
    }
    if (!rc)
        rc = cmd(c, K_MAKE(K_HELLO, 1, 0), 1, "PING");
    if (!rc && !r->server_version[0])
        rc = cmd(c, K_MAKE(K_INFO, 1, 0), 2, "INFO", "server");
    for (int i = 0; c->is_sub && !rc && i < r->ntopics; i++)
        rc = topic_setup(c, i, 1);
    return rc;
}

static void conn_start(rconn *c)
{
    rinst *r = c->r;
    c->waited = 0;
    c->ctx = redisConnectNonBlock(r->host_name, (int)r->port);
    if (!c->ctx) {
        conn_down(c, IOTLAT_ENOMEM, "cannot connect to %s: out of memory", r->addr);
        return;
    }
    if (c->ctx->err) {
        conn_down(c, IOTLAT_ECONNECT, "cannot connect to %s: %s", r->addr, c->ctx->errstr);
        return;
    }
    c->rd = redisReaderCreateWithFunctions(&arena_fns);
    if (!c->rd) {
        conn_down(c, IOTLAT_ENOMEM, "cannot connect to %s: out of memory", r->addr);
        return;
    }
    c->rd->privdata = &c->ar;
    c->rd->maxbuf = READER_KEEP;
    c->fd = c->ctx->fd;
    c->state = ST_CONNECTING;
    c->deadline = mono_us() + r->timeout_ms * 1000;
    if (c->is_sub)
        ep_refresh(r);
}

/* CONNECTING: has the non-blocking connect finished? */
static void connect_check(rconn *c)
{
    rinst *r = c->r;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 0) {
        if (mono_us() > c->deadline)
            conn_down(c, IOTLAT_ECONNECT, "cannot connect to %s: no answer within %ld ms",
                      r->addr, r->timeout_ms);
        return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        conn_down(c, IOTLAT_ECONNECT, "cannot connect to %s: %s", r->addr, strerror(err));
        return;
    }
    redisEnableKeepAlive(c->ctx);
    c->state = ST_HANDSHAKE;
    c->t_activity = mono_us();
    if (send_handshake(c))
        conn_down(c, IOTLAT_ENOMEM, "connecting to %s: out of memory", r->addr);
    else if (c->is_sub)
        ep_refresh(r);
}

/* Send what is buffered, without waiting.  -1 when the connection died. */
static int conn_send(rconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_down(c, IOTLAT_EIO, "connection to %s lost: %s", c->r->addr,
                  n < 0 ? strerror(errno) : "send returned 0");
        return -1;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    return 0;
}

/* Read what has arrived into the reader, without waiting. */
static int conn_fill(rconn *c)
{
    rinst *r = c->r;
    for (int i = 0; i < READS_PER_FILL; i++) {
        ssize_t n = recv(c->fd, r->rbuf, READ_CHUNK, MSG_DONTWAIT);
        if (n > 0) {
            /* The receive stamp: as close to the wire as this process gets. */
            c->t_recv_us = r->host->now_us();
            c->t_activity = mono_us();
            c->expect_by = c->t_activity +
                           (r->timeout_ms + (c->read_inflight ? r->block_ms : 0)) * 1000;
            if (redisReaderFeed(c->rd, r->rbuf, (size_t)n) != REDIS_OK) {
                conn_down(c, IOTLAT_ENOMEM, "reading from %s: %s", r->addr, c->rd->errstr);
                return -1;
            }
            if (n < READ_CHUNK)
                break;
            continue;
        }
        if (n == 0) {
            conn_down(c, IOTLAT_EIO, "connection to %s closed by the server", r->addr);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        conn_down(c, IOTLAT_EIO, "connection to %s lost: %s", r->addr, strerror(errno));
        return -1;
    }
    return 0;
}

/* An error reply to a data command: counted, the first one logged. */
static void refused(rconn *c, int kind, const char *msg)
{
    if (c->refused++ == 0) {
        snprintf(c->first_refusal, sizeof c->first_refusal, "%s: %s", kind_name(kind), msg);
        log_msg(c->r, IOTLAT_LOG_WARN,
                "%s refused by %s: %s (further refusals are counted, not logged)",
                kind_name(kind), c->r->addr, msg);
    }
}

static int find_topic(rinst *r, const char *name, size_t len)
{
    for (int i = 0; i < r->ntopics; i++)
        if (r->topics[i].len == len && memcmp(r->topics[i].name, name, len) == 0)
            return i;
    return -1;
}

static int is_str(const redisReply *x)
{
    return x && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS);
}

/* A pub/sub push: ["message", channel, payload]. */
static int is_message(const redisReply *x)
{
    return x->type == REDIS_REPLY_ARRAY && x->elements == 3 && is_str(x->element[0]) &&
           x->element[0]->len == 7 && memcmp(x->element[0]->str, "message", 7) == 0 &&
           is_str(x->element[1]) && is_str(x->element[2]);
}

/* XREAD / XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]], ...].
 * Delivers the "data" field of every entry (an entry without one is handed
 * over empty, so the host counts it malformed instead of missing), moves a
 * plain reader's position, and acknowledges a group's entries. */
static int deliver_streams(rconn *c, const redisReply *rep)
{
    rinst *r = c->r;
    int n = 0;
    for (size_t s = 0; s < rep->elements; s++) {
        const redisReply *st = rep->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || !is_str(st->element[0]) ||
            st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        int ti = find_topic(r, st->element[0]->str, st->element[0]->len);
        const redisReply *entries = st->element[1];
        size_t nack = 0;
        for (size_t e = 0; e < entries->elements; e++) {
            const redisReply *en = entries->element[e];
            if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 || !is_str(en->element[0]))
                continue;
            nack++;
            const redisReply *f = en->element[1];
            const char *data = "";
            size_t len = 0;
            if (f->type == REDIS_REPLY_ARRAY) {
                for (size_t k = 0; k + 1 < f->elements; k += 2) {
                    if (is_str(f->element[k]) && f->element[k]->len == 4 &&
                        memcmp(f->element[k]->str, "data", 4) == 0 &&
                        is_str(f->element[k + 1])) {
                        data = f->element[k + 1]->str;
                        len = f->element[k + 1]->len;
                        break;
                    }
                }
            }
            if (ti < 0)
                continue;
            rtopic *t = &r->topics[ti];
            if (!r->group[0] && en->element[0]->len < sizeof t->last_id)
                memcpy(t->last_id, en->element[0]->str, en->element[0]->len + 1);
            t->fn(t->ud, t->name, data, len, c->t_recv_us);
            n++;
        }
        if (r->group[0] && ti >= 0 && nack) {
            int rc = cmd_begin(c, 3 + nack);
            rc = rc ? rc : cmd_arg(c, "XACK", 4);
            rc = rc ? rc : cmd_arg(c, st->element[0]->str, st->element[0]->len);
            rc = rc ? rc : cmd_arg(c, r->group, strlen(r->group));
            for (size_t e = 0; e < entries->elements && !rc; e++) {
                const redisReply *en = entries->element[e];
                if (en->type == REDIS_REPLY_ARRAY && en->elements == 2 &&
                    is_str(en->element[0]))
                    rc = cmd_arg(c, en->element[0]->str, en->element[0]->len);
            }
            rc = rc ? rc : cmd_end(c, K_MAKE(K_XACK, 0, ti));
            if (rc) {
                conn_down(c, IOTLAT_ENOMEM, "acknowledging on %s: out of memory", r->addr);
                return -1;
            }
        }
    }
    return n;
}

static void topic_failed(rconn *c, int ti, int kind, const char *msg)
{
    rinst *r = c->r;
    if (ti < 0 || ti >= r->ntopics)
        return;
    rtopic *t = &r->topics[ti];
    t->state = T_FAILED;
    snprintf(t->why, sizeof t->why, "%s '%.200s' refused by %s: %.100s", kind_name(kind), t->name,
             r->addr, msg);
    log_msg(r, IOTLAT_LOG_WARN, "%s", t->why);
}

/* Handle one reply.  Returns 0 when consumed, 1 when it is a message that
 * may only be delivered from poll() (the caller holds it), -1 when the
 * connection went down (rep is gone with it). */
static int on_reply(rconn *c, redisReply *rep, int may_deliver, int *delivered)
{
    rinst *r = c->r;
    if (c->is_sub && r->mode == MODE_PUBSUB && is_message(rep)) {
        if (!may_deliver)
            return 1;
        int ti = find_topic(r, rep->element[1]->str, rep->element[1]->len);
        if (ti >= 0) {
            rtopic *t = &r->topics[ti];
            t->fn(t->ud, t->name, rep->element[2]->str, rep->element[2]->len, c->t_recv_us);
            (*delivered)++;
        }
        return 0;
    }
    uint32_t e = ring_peek(c);
    if (K_KIND(e) == K_XREAD && rep->type == REDIS_REPLY_ARRAY && !may_deliver)
        return 1;
    ring_pop(c);
    int kind = K_KIND(e), ti = K_TOPIC(e);
    int err = rep->type == REDIS_REPLY_ERROR;
    const char *msg = err ? rep->str : "";
    switch (kind) {
    case 0:
        conn_down(c, IOTLAT_EIO, "unexpected reply from %s: the protocol is out of step",
                  r->addr);
        return -1;
    case K_AUTH:
        if (err) {
            if (r->user[0])
                conn_down(c, IOTLAT_EAUTH, "authentication to %s as user '%s' failed: %s",
                          r->addr, r->user, msg);
            else
                conn_down(c, IOTLAT_EAUTH, "authentication to %s failed: %s", r->addr, msg);
            return -1;
        }
        break;
    case K_SELECT:
        if (err) {
            conn_down(c, IOTLAT_EINVAL, "IOTLAT_REDIS_DB='%ld' rejected by %s: %s", r->db,
                      r->addr, msg);
            return -1;
        }
        break;
    case K_HELLO:
        if (err && strncmp(msg, "NOAUTH", 6) == 0) {
            conn_down(c, IOTLAT_EAUTH,
                      "%s requires authentication: set IOTLAT_REDIS_PASSWORD or "
                      "IOTLAT_REDIS_PASSWORD_FILE (%s)",
                      r->addr, msg);
            return -1;
        }
        if (err) {
            conn_down(c, IOTLAT_EIO, "%s refused PING: %s", r->addr, msg);
            return -1;
        }
        break;
    case K_INFO:
        if (rep->type == REDIS_REPLY_STRING) {
            const char *v = strstr(rep->str, "redis_version:");
            if (v) {
                v += 14;
                size_t n = strcspn(v, "\r\n");
                snprintf(r->server_version, sizeof r->server_version, "%.*s", (int)n, v);
            }
        }
        if (!r->server_version[0])
            snprintf(r->server_version, sizeof r->server_version, "unknown version");
        break;
    case K_SUBSCRIBE:
    case K_XGROUP:
        if (err && !(kind == K_XGROUP && strncmp(msg, "BUSYGROUP", 9) == 0))
            topic_failed(c, ti, kind, msg);
        else if (ti < r->ntopics)
            r->topics[ti].state = T_READY;
        break;
    case K_XREVRANGE:
        if (err) {
            topic_failed(c, ti, kind, msg);
        } else if (ti < r->ntopics) {
            rtopic *t = &r->topics[ti];
            snprintf(t->last_id, sizeof t->last_id, "0-0");
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
                rep->element[0]->type == REDIS_REPLY_ARRAY &&
                rep->element[0]->elements >= 1 && is_str(rep->element[0]->element[0]) &&
                rep->element[0]->element[0]->len < sizeof t->last_id)
                memcpy(t->last_id, rep->element[0]->element[0]->str,
                       rep->element[0]->element[0]->len + 1);
            t->state = T_READY;
        }
        break;
    case K_MKGROUP:
        if (err && strncmp(msg, "BUSYGROUP", 9) != 0) {
            c->mkgroup = -1;
            snprintf(c->err, sizeof c->err, "XGROUP CREATE refused by %s: %.200s", r->addr,
                     msg);
        } else {
            c->mkgroup = 1;
        }
        break;
    case K_XREAD:
        c->read_inflight = 0;
        if (err && strncmp(msg, "NOGROUP", 7) == 0) {
            /* The group vanished (a server restarted without persistence):
             * create it again; the next read is queued behind it. */
            for (int i = 0; i < r->ntopics; i++)
                if (topic_setup(c, i, 0)) {
                    conn_down(c, IOTLAT_ENOMEM, "on %s: out of memory", r->addr);
                    return -1;
                }
        } else if (err) {
            refused(c, kind, msg);
            c->read_retry_at = mono_us() + 1000000;
        } else if (rep->type == REDIS_REPLY_ARRAY) {
            int n = deliver_streams(c, rep);
            if (n < 0)
                return -1;
            *delivered += n;
        }
        break;
    case K_NUMSUB:
        c->numsub = 0;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
            rep->element[1]->type == REDIS_REPLY_INTEGER)
            c->numsub = rep->element[1]->integer;
        break;
    case K_PING:
        break;
    default: /* K_PUBLISH, K_XADD, K_XACK */
        if (err)
            refused(c, kind, msg);
        break;
    }
    if ((e & KF_HS) && --c->hs_pending == 0 && c->state == ST_HANDSHAKE)
        conn_up(c);
    return 0;
}

/* Parse and handle every complete reply, up to the batch limit. */
static int conn_pump(rconn *c, int may_deliver, int *delivered)
{
    for (;;) {
        if (*delivered >= MAX_BATCH) {
            c->more = 1;
            return 0;
        }
        redisReply *rep = c->held;
        if (rep) {
            if (!may_deliver)
                return 0;
            c->held = NULL;
        } else {
            void *p = NULL;
            if (redisReaderGetReply(c->rd, &p) != REDIS_OK) {
                conn_down(c, IOTLAT_EIO, "bad reply from %s: %s", c->r->addr, c->rd->errstr);
                return -1;
            }
            if (!p) {
                c->more = 0;
                return 0;
            }
            rep = p;
        }
        int rc = on_reply(c, rep, may_deliver, delivered);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            c->held = rep;
            c->more = 1;
            return 0;
        }
        /* Nothing refers to the reply any more, and the reader holds no
         * partial one (it just returned a complete reply). */
        arena_reset(&c->ar);
    }
}

static int ready_topics(const rinst *r)
{
    int n = 0;
    for (int i = 0; i < r->ntopics; i++)
        n += r->topics[i].state == T_READY;
    return n;
}

/* Streams: keep one blocking read outstanding on the subscribe connection. */
static void issue_read(rconn *c)
{
    rinst *r = c->r;
    int k = ready_topics(r);
    if (c->state != ST_UP || c->read_inflight || k == 0 || mono_us() < c->read_retry_at)
        return;
    int rc;
    if (r->group[0]) {
        rc = cmd_begin(c, 9 + 2 * (size_t)k);
        rc = rc ? rc : cmd_arg(c, "XREADGROUP", 10);
        rc = rc ? rc : cmd_arg(c, "GROUP", 5);
        rc = rc ? rc : cmd_arg(c, r->group, strlen(r->group));
        rc = rc ? rc : cmd_arg(c, r->consumer, strlen(r->consumer));
    } else {
        rc = cmd_begin(c, 6 + 2 * (size_t)k);
        rc = rc ? rc : cmd_arg(c, "XREAD", 5);
    }
    rc = rc ? rc : cmd_arg(c, "COUNT", 5);
    rc = rc ? rc : cmd_arg(c, XREAD_COUNT, strlen(XREAD_COUNT));
    rc = rc ? rc : cmd_arg(c, "BLOCK", 5);
    rc = rc ? rc : cmd_arg(c, r->block_str, strlen(r->block_str));
    rc = rc ? rc : cmd_arg(c, "STREAMS", 7);
    for (int i = 0; i < r->ntopics && !rc; i++)
        if (r->topics[i].state == T_READY)
            rc = cmd_arg(c, r->topics[i].name, r->topics[i].len);
    for (int i = 0; i < r->ntopics && !rc; i++) {
        const char *id = r->group[0] ? ">" : r->topics[i].last_id;
        if (r->topics[i].state == T_READY)
            rc = cmd_arg(c, id, strlen(id));
    }
    c->read_inflight = 1;
    rc = rc ? rc : cmd_end(c, K_MAKE(K_XREAD, 0, 0));
    if (rc)
        conn_down(c, IOTLAT_ENOMEM, "reading from %s: out of memory", r->addr);
}

/* Move the connection along without waiting: connect, send, read, handle
 * replies, check deadlines.  Messages are delivered only if may_deliver. */
static void conn_drive(rconn *c, int may_deliver, int *delivered)
{
    rinst *r = c->r;
    if (c->state == ST_DOWN) {
        if (!c->ever_up || mono_us() < c->next_attempt)
            return; /* before the first success, open() decides */
        conn_start(c);
    }
    if (c->state == ST_CONNECTING) {
        connect_check(c);
        if (c->state != ST_HANDSHAKE)
            return;
    }
    if (conn_send(c) || conn_fill(c) || conn_pump(c, may_deliver, delivered))
        return;
    int64_t now = mono_us();
    if (c->state == ST_HANDSHAKE && now > c->deadline) {
        conn_down(c, IOTLAT_ECONNECT, "no answer from %s within %ld ms", r->addr,
                  r->timeout_ms);
        return;
    }
    if (c->ring_n && now > c->expect_by) {
        conn_down(c, IOTLAT_EIO, "no answer from %s for %ld ms: connection presumed lost",
                  r->addr, r->timeout_ms);
        return;
    }
    /* A subscribe connection can be silent for hours; a PING now and then
     * tells a quiet channel from a dead connection. */
    if (c->is_sub && c->state == ST_UP && !c->ring_n &&
        now - c->t_activity > (int64_t)IDLE_PING_MS * 1000) {
        c->t_activity = now;
        if (cmd(c, K_MAKE(K_PING, 0, 0), 1, "PING")) {
            conn_down(c, IOTLAT_ENOMEM, "on %s: out of memory", r->addr);
            return;
        }
    }
    if (may_deliver && c->is_sub && r->mode == MODE_STREAMS)
        issue_read(c);
    if (c->state != ST_DOWN)
        conn_send(c);
}

/* When the connection next needs attention without any I/O (monotonic). */
static int64_t conn_next_event(const rconn *c)
{
    const rinst *r = c->r;
    switch (c->state) {
    case ST_DOWN:
        return c->ever_up ? c->next_attempt : NEVER;
    case ST_CONNECTING:
    case ST_HANDSHAKE:
        return c->deadline;
    default:
        break;
    }
    if (c->ring_n)
        return c->expect_by;
    if (!c->is_sub)
        return NEVER;
    if (r->mode == MODE_STREAMS && !c->read_inflight && ready_topics(r))
        return c->read_retry_at;
    return c->t_activity + (int64_t)IDLE_PING_MS * 1000;
}

static short conn_events(const rconn *c, int want_in)
{
    if (c->fd < 0)
        return 0;
    if (c->state == ST_CONNECTING)
        return POLLOUT;
    return (short)((want_in ? POLLIN : 0) | (c->out_len > c->out_off ? POLLOUT : 0));
}

/* Wait (up to `deadline`, monotonic) until done(c, arg) holds, driving the
 * connection; messages that arrive meanwhile are held for poll().  Returns
 * 0, IOTLAT_EAGAIN (deadline, or a message must be delivered first), or the
 * code the connection went down with. */
static int conn_wait(rconn *c, int (*done)(rconn *, void *), void *arg, int64_t deadline)
{
    int n = 0;
    for (;;) {
        conn_drive(c, 0, &n);
        if (done(c, arg))
            return 0;
        if (c->state == ST_DOWN)
            return c->err_code ? c->err_code : IOTLAT_ECLOSED;
        if (c->held)
            return IOTLAT_EAGAIN;
        int64_t now = mono_us(), until = conn_next_event(c);
        if (now >= deadline)
            return IOTLAT_EAGAIN;
        if (until > deadline)
            until = deadline;
        int ms = until > now ? (int)((until - now + 999) / 1000) : 0;
        struct pollfd p = {.fd = c->fd, .events = conn_events(c, 1)};
        poll(&p, 1, ms);
    }
}

static int is_up(rconn *c, void *arg)
{
    (void)arg;
    return c->state == ST_UP;
}

static int topic_settled(rconn *c, void *arg)
{
    (void)c;
    return ((rtopic *)arg)->state != T_PENDING;
}

static int numsub_known(rconn *c, void *arg)
{
    (void)arg;
    return c->numsub >= 0;
}

static int mkgroup_known(rconn *c, void *arg)
{
    (void)arg;
    return c->mkgroup != 0;
}

static int window_open(rconn *c, void *arg)
{
    (void)arg;
    return c->ring_n < (size_t)c->r->pipeline;
}

static int drained(rconn *c, void *arg)
{
    (void)arg;
    return c->state == ST_UP && c->ring_n == 0 && c->out_off == c->out_len;
}

/* Re-arm the timerfd in the fd() set for the driver's next deadline, so a
 * host that only waits on fd() still gets poll() called in time. */
static void timer_update(rinst *r)
{
    if (r->tfd < 0)
        return;
    int64_t t = r->sub.held || r->sub.more ? mono_us() : conn_next_event(&r->sub);
    if (r->has_pub) {
        int64_t tp = conn_next_event(&r->pub);
        if (tp < t)
            t = tp;
    }
    if (t == r->tfd_at)
        return;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (t != NEVER) {
        if (t < 1)
            t = 1;
        its.it_value.tv_sec = t / 1000000;
        its.it_value.tv_nsec = (t % 1000000) * 1000;
    }
    timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    r->tfd_at = t == NEVER ? 0 : t;
}

static void conn_init(rconn *c, rinst *r, int is_sub)
{
    c->r = r;
    c->is_sub = is_sub;
    c->what = is_sub ? "subscribe" : "publish";
    c->fd = -1;
    c->state = ST_DOWN;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->numsub = -1;
}

static void conn_free(rconn *c)
{
    /* Best effort for acknowledgements still queued; a plain send(), since a
     * failure here must not be reported as an outage. */
    if (c->fd >= 0 && c->state == ST_UP && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)n;
    }
    if (c->ctx)
        redisFree(c->ctx);
    if (c->rd)
        redisReaderFree(c->rd);
    c->ctx = NULL;
    c->rd = NULL;
    c->fd = -1;
    free(c->out);
    free(c->ring);
    arena_free(&c->ar);
}

static void rclose(void *p)
{
    rinst *r = p;
    if (r->has_sub)
        ep_set(r, -1, 0);
    if (r->pub.refused || r->sub.refused)
        log_msg(r, IOTLAT_LOG_WARN, "%llu commands were refused by %s; first: %s",
                (unsigned long long)(r->pub.refused + r->sub.refused), r->addr,
                r->pub.refused ? r->pub.first_refusal : r->sub.first_refusal);
    conn_free(&r->pub);
    conn_free(&r->sub);
    for (int i = 0; i < r->ntopics; i++)
        free(r->topics[i].name);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->tfd >= 0)
        close(r->tfd);
    free(r->rbuf);
    memset(r->password, 0, sizeof r->password);
    free(r);
}

/* Connect one connection for open(): the first attempt must succeed. */
static int open_conn(rconn *c, char *errbuf, size_t errlen)
{
    conn_start(c);
    int rc = c->state == ST_DOWN ? c->err_code
                                 : conn_wait(c, is_up, NULL, c->deadline + 100000);
    if (rc == 0)
        return 0;
    if (c->state != ST_DOWN)
        conn_down(c, IOTLAT_ECONNECT, "cannot connect to %s: no answer within %ld ms",
                  c->r->addr, c->r->timeout_ms);
    snprintf(errbuf, errlen, "%s", c->err);
    return c->err_code ? c->err_code : IOTLAT_ECONNECT;
}

static int read_options(rinst *r, drv_opts *o)
{
    static const char *const modes[] = {"pubsub", "streams", NULL};
    int rc, set_pw;
    char host[64] = "";
    if ((rc = drv_opt_str(o, "HOST", "127.0.0.1", r->host_name, sizeof r->host_name,
                          NULL)) ||
        (rc = drv_opt_long(o, "PORT", 6379, 1, 65535, &r->port)) ||
        (rc = drv_opt_str(o, "PASSWORD", "", r->password, sizeof r->password, &set_pw)) ||
        (rc = drv_opt_str(o, "USER", "", r->user, sizeof r->user, NULL)) ||
        (rc = drv_opt_long(o, "DB", 0, 0, 2147483647L, &r->db)) ||
        (rc = drv_opt_enum(o, "MODE", "pubsub", modes, &r->mode)) ||
        (rc = drv_opt_long(o, "MAXLEN", 1000000, 0, 1000000000000L, &r->maxlen)) ||
        (rc = drv_opt_str(o, "GROUP", "", r->group, sizeof r->group, NULL)) ||
        (rc = drv_opt_str(o, "CONSUMER", "", r->consumer, sizeof r->consumer, NULL)) ||
        (rc = drv_opt_long(o, "BLOCK_MS", 1000, 1, 3600000, &r->block_ms)) ||
        (rc = drv_opt_long(o, "PIPELINE", 1000, 1, 1000000, &r->pipeline)) ||
        (rc = drv_opt_long(o, "TIMEOUT_MS", 3000, 100, 600000, &r->timeout_ms)) ||
        (rc = drv_opt_long(o, "WAIT_SUBSCRIBERS", 1, 0, 1000000, &r->wait_subs)))
        return rc;
    if (!r->host_name[0]) {
        snprintf(o->errbuf, o->errlen,
                 "IOTLAT_REDIS_HOST='' is invalid: expected a host name or address");
        return IOTLAT_EINVAL;
    }
    r->has_password = set_pw;
    if (r->user[0] && !set_pw) {
        snprintf(o->errbuf, o->errlen,
                 "IOTLAT_REDIS_USER='%s' needs IOTLAT_REDIS_PASSWORD or "
                 "IOTLAT_REDIS_PASSWORD_FILE",
                 r->user);
        return IOTLAT_EINVAL;
    }
    if (r->group[0] && r->mode != MODE_STREAMS) {
        snprintf(o->errbuf, o->errlen,
                 "IOTLAT_REDIS_GROUP='%s' needs IOTLAT_REDIS_MODE=streams: pub/sub has no "
                 "consumer groups",
                 r->group);
        return IOTLAT_EINVAL;
    }
    if (r->consumer[0] && !r->group[0]) {
        snprintf(o->errbuf, o->errlen,
                 "IOTLAT_REDIS_CONSUMER='%s' needs IOTLAT_REDIS_GROUP: a consumer name "
                 "only means something in a consumer group",
                 r->consumer);
        return IOTLAT_EINVAL;
    }
    if (!r->consumer[0]) {
        /* Unique per process, so replicas in one group never collide. */
        gethostname(host, sizeof host - 1);
        snprintf(r->consumer, sizeof r->consumer, "%s-%ld", host[0] ? host : "iotlat",
                 (long)getpid());
    }
    snprintf(r->maxlen_str, sizeof r->maxlen_str, "%ld", r->maxlen);
    snprintf(r->block_str, sizeof r->block_str, "%ld", r->block_ms);
    snprintf(r->addr, sizeof r->addr, "%s:%ld", r->host_name, r->port);
    return 0;
}

static int ropen(const iotlat_host *host, int roles, void **out, char *errbuf,
                 size_t errlen)
{
    drv_opts o = {host, "IOTLAT_REDIS_", errbuf, errlen};
    int rc = host->check_options(host->host_ud, o.prefix, redis_options, errbuf, errlen);
    if (rc)
        return rc;
    rinst *r = calloc(1, sizeof *r);
    if (!r)
        return IOTLAT_ENOMEM;
    r->host = host;
    r->epfd = r->tfd = r->ep_fd = -1;
    conn_init(&r->pub, r, 0);
    conn_init(&r->sub, r, 1);
    if ((rc = read_options(r, &o))) {
        rclose(r);
        return rc;
    }
    r->rbuf = malloc(READ_CHUNK);
    if (!r->rbuf) {
        rclose(r);
        return IOTLAT_ENOMEM;
    }
    r->has_pub = !!(roles & IOTLAT_ROLE_PUBLISH);
    r->has_sub = !!(roles & IOTLAT_ROLE_SUBSCRIBE);
    if (r->has_sub) {
        r->epfd = epoll_create1(EPOLL_CLOEXEC);
        r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = r->tfd};
        if (r->epfd < 0 || r->tfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->tfd, &ev)) {
            snprintf(errbuf, errlen, "cannot create the driver's event descriptors: %s",
                     strerror(errno));
            rclose(r);
            return IOTLAT_EIO;
        }
    }
    /* The pipeline window bounds the ring; size it once, off the hot path. */
    if (r->has_pub) {
        r->pub.ring = malloc(((size_t)r->pipeline + 64) * sizeof *r->pub.ring);
        if (!r->pub.ring) {
            rclose(r);
            return IOTLAT_ENOMEM;
        }
        r->pub.ring_cap = (size_t)r->pipeline + 64;
    }
    if ((r->has_pub && (rc = open_conn(&r->pub, errbuf, errlen))) ||
        (r->has_sub && (rc = open_conn(&r->sub, errbuf, errlen)))) {
        rclose(r);
        return rc;
    }
    log_msg(r, IOTLAT_LOG_INFO, "connected to %s (Redis %s), mode %s%s%s, for %s%s%s", r->addr,
            r->server_version, r->mode == MODE_PUBSUB ? "pubsub" : "streams",
            r->group[0] ? ", group " : "", r->group[0] ? r->group : "",
            r->has_pub ? "publishing" : "", r->has_pub && r->has_sub ? " and " : "",
            r->has_sub ? "subscribing" : "");
    timer_update(r);
    *out = r;
    return 0;
}

static int rsubscribe(void *p, const char *topic, iotlat_msg_fn fn, void *ud, char *errbuf,
                      size_t errlen)
{
    rinst *r = p;
    rconn *c = &r->sub;
    if (!r->has_sub) {
        snprintf(errbuf, errlen, "subscribe('%s'): driver not opened for subscribing", topic);
        return IOTLAT_EINVAL;
    }
    if (r->ntopics == MAX_TOPICS) {
        snprintf(errbuf, errlen, "subscribe('%s'): more than %d topics", topic, MAX_TOPICS);
        return IOTLAT_EINVAL;
    }
    if (find_topic(r, topic, strlen(topic)) >= 0) {
        snprintf(errbuf, errlen, "subscribe('%s'): already subscribed", topic);
        return IOTLAT_EINVAL;
    }
    int i = r->ntopics;
    rtopic *t = &r->topics[i];
    memset(t, 0, sizeof *t);
    t->len = strlen(topic);
    t->name = strdup(topic);
    if (!t->name)
        return IOTLAT_ENOMEM;
    t->fn = fn;
    t->ud = ud;
    t->state = T_PENDING;
    r->ntopics++;
    if (c->state == ST_UP) {
        if (topic_setup(c, i, 0)) {
            /* A half-written command leaves the stream malformed. */
            conn_down(c, IOTLAT_ENOMEM, "subscribing on %s: out of memory", r->addr);
            r->ntopics--;
            free(t->name);
            return IOTLAT_ENOMEM;
        }
        /* Wait for the server's answer, so the subscription is in place when
         * this returns - unless a blocking read is ahead of it, or a message
         * arrives first; then poll() finishes the job. */
        if (!c->read_inflight)
            conn_wait(c, topic_settled, t, mono_us() + r->timeout_ms * 1000);
        if (t->state == T_FAILED) {
            snprintf(errbuf, errlen, "%s", t->why);
            r->ntopics--;
            free(t->name);
            timer_update(r);
            return IOTLAT_EIO;
        }
    } /* else: the next connection's handshake sets it up */
    timer_update(r);
    return 0;
}

static int rpublish(void *p, const char *topic, const char *key, const void *data,
                    size_t len, char *errbuf, size_t errlen)
{
    rinst *r = p;
    rconn *c = &r->pub;
    int n = 0, rc;
    (void)key; /* Redis channels and streams have no partitions: one order per topic */
    if (!r->has_pub) {
        snprintf(errbuf, errlen, "publish('%s'): driver not opened for publishing", topic);
        return IOTLAT_EINVAL;
    }
    if (c->state != ST_UP) {
        conn_drive(c, 0, &n);
        /* On loopback a reconnection completes in well under a millisecond:
         * wait for it once per attempt rather than fail the message. */
        if (c->state != ST_UP && c->state != ST_DOWN && !c->waited) {
            c->waited = 1;
            conn_wait(c, is_up, NULL, mono_us() + INLINE_WAIT_MS * 1000);
        }
        if (c->state != ST_UP) {
            snprintf(errbuf, errlen, "not connected to %s (reconnecting): %s", r->addr,
                     c->err);
            return IOTLAT_ECLOSED;
        }
    }
    int64_t now = mono_us();
    if (c->ring_n >= (size_t)r->pipeline / 2 || now - c->last_service >= SERVICE_US) {
        /* Read the replies that have arrived (never waiting), which also
         * notices a dead connection before more is written into it. */
        c->last_service = now;
        conn_drive(c, 0, &n);
        if (c->state == ST_UP && c->ring_n >= (size_t)r->pipeline)
            conn_wait(c, window_open, NULL, now + WINDOW_WAIT_MS * 1000);
        if (c->state != ST_UP) {
            snprintf(errbuf, errlen, "%s", c->err);
            return IOTLAT_ECLOSED;
        }
        if (c->ring_n >= (size_t)r->pipeline) {
            snprintf(errbuf, errlen,
                     "pipeline full: %zu replies outstanding from %s after %d ms "
                     "(IOTLAT_REDIS_PIPELINE=%ld)",
                     c->ring_n, r->addr, WINDOW_WAIT_MS, r->pipeline);
            return IOTLAT_EAGAIN;
        }
    }
    size_t tl = strlen(topic);
    if (r->mode == MODE_PUBSUB) {
        rc = cmd_begin(c, 3);
        rc = rc ? rc : cmd_arg(c, "PUBLISH", 7);
        rc = rc ? rc : cmd_arg(c, topic, tl);
        rc = rc ? rc : cmd_arg(c, data, len);
        rc = rc ? rc : cmd_end(c, K_MAKE(K_PUBLISH, 0, 0));
    } else {
        rc = cmd_begin(c, r->maxlen ? 8 : 5);
        rc = rc ? rc : cmd_arg(c, "XADD", 4);
        rc = rc ? rc : cmd_arg(c, topic, tl);
        if (r->maxlen) {
            rc = rc ? rc : cmd_arg(c, "MAXLEN", 6);
            rc = rc ? rc : cmd_arg(c, "~", 1);
            rc = rc ? rc : cmd_arg(c, r->maxlen_str, strlen(r->maxlen_str));
        }
        rc = rc ? rc : cmd_arg(c, "*", 1);
        rc = rc ? rc : cmd_arg(c, "data", 4);
        rc = rc ? rc : cmd_arg(c, data, len);
        rc = rc ? rc : cmd_end(c, K_MAKE(K_XADD, 0, 0));
    }
    if (rc) {
        /* Out of memory half-way through a command: the stream is no longer
         * well-formed, so the connection has to go. */
        conn_down(c, IOTLAT_ENOMEM, "publishing to %s: out of memory", r->addr);
        snprintf(errbuf, errlen, "publish('%s'): out of memory", topic);
        return IOTLAT_ENOMEM;
    }
    if (conn_send(c)) {
        snprintf(errbuf, errlen, "%s", c->err);
        return IOTLAT_ECLOSED;
    }
    return 0;
}

static int rpoll(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    rinst *r = p;
    int n = 0;
    int64_t deadline = mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
    (void)errbuf, (void)errlen;
    if (r->tfd >= 0 && r->tfd_at && mono_us() >= r->tfd_at) {
        uint64_t ticks;
        ssize_t rd = read(r->tfd, &ticks, sizeof ticks);
        (void)rd; /* only clears the readiness */
        r->tfd_at = 0;
    }
    for (;;) {
        int64_t now = mono_us();
        if (r->has_pub && (r->pub.state != ST_UP || now - r->pub.last_service >= SERVICE_US)) {
            int none = 0;
            r->pub.last_service = now;
            conn_drive(&r->pub, 0, &none);
        }
        if (r->has_sub)
            conn_drive(&r->sub, 1, &n);
        now = mono_us();
        if (n > 0 || now >= deadline || (r->sub.more && r->has_sub))
            break;
        int64_t until = deadline;
        if (r->has_sub && conn_next_event(&r->sub) < until)
            until = conn_next_event(&r->sub);
        if (r->has_pub && conn_next_event(&r->pub) < until)
            until = conn_next_event(&r->pub);
        struct pollfd pf[2];
        int np = 0;
        if (r->has_sub && r->sub.fd >= 0)
            pf[np++] = (struct pollfd){.fd = r->sub.fd, .events = conn_events(&r->sub, 1)};
        /* Publish replies need no prompt attention; only connecting does. */
        if (r->has_pub && r->pub.fd >= 0) {
            short ev = conn_events(&r->pub, r->pub.state == ST_HANDSHAKE);
            if (ev)
                pf[np++] = (struct pollfd){.fd = r->pub.fd, .events = ev};
        }
        int ms = until > now ? (int)((until - now + 999) / 1000) : 0;
        poll(pf, (nfds_t)np, ms);
    }
    if (r->has_sub)
        ep_refresh(r);
    timer_update(r);
    return n;
}

static int rfd(void *p)
{
    rinst *r = p;
    return r->epfd;
}

static int rwait_ready(void *p, const char *topic, int timeout_ms, char *errbuf,
                       size_t errlen)
{
    rinst *r = p;
    rconn *c = &r->pub;
    int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;
    int rc;
    if (!r->has_pub)
        return 0;
    if (r->mode == MODE_STREAMS) {
        /* A stream keeps what nobody has read yet.  With a consumer group,
         * creating it now (as the subscriber would) means entries added
         * before the subscriber starts are kept for the group too. */
        if (!r->group[0] || c->state != ST_UP)
            return 0;
        c->mkgroup = 0;
        if (cmd(c, K_MAKE(K_MKGROUP, 0, 0), 6, "XGROUP", "CREATE", topic, r->group, "$",
                "MKSTREAM")) {
            conn_down(c, IOTLAT_ENOMEM, "on %s: out of memory", r->addr);
            return IOTLAT_ENOMEM;
        }
        rc = conn_wait(c, mkgroup_known, NULL, deadline);
        if (c->mkgroup < 0 || rc) {
            snprintf(errbuf, errlen, "%s",
                     c->mkgroup < 0 ? c->err : "no answer to XGROUP CREATE in time");
            return c->mkgroup < 0 ? IOTLAT_EIO : IOTLAT_EAGAIN;
        }
        return 0;
    }
    /* Pub/sub drops what is published before anyone subscribed: wait for
     * the expected number of subscribers on the channel. */
    if (r->wait_subs == 0)
        return 0;
    long long seen = 0;
    for (;;) {
        if (c->state != ST_UP)
            break;
        c->numsub = -1;
        if (cmd(c, K_MAKE(K_NUMSUB, 0, 0), 3, "PUBSUB", "NUMSUB", topic)) {
            conn_down(c, IOTLAT_ENOMEM, "on %s: out of memory", r->addr);
            return IOTLAT_ENOMEM;
        }
        if (conn_wait(c, numsub_known, NULL, deadline))
            break;
        seen = c->numsub;
        if (seen >= r->wait_subs)
            return 0;
        int64_t now = mono_us();
        if (now + 50000 >= deadline)
            break;
        poll(NULL, 0, 50);
    }
    if (c->state != ST_UP)
        snprintf(errbuf, errlen, "not connected to %s: %s", r->addr, c->err);
    else
        snprintf(errbuf, errlen,
                 "only %lld of IOTLAT_REDIS_WAIT_SUBSCRIBERS=%ld subscribers on channel "
                 "'%s' at %s after %d ms",
                 seen, r->wait_subs, topic, r->addr, timeout_ms);
    return IOTLAT_EAGAIN;
}

static int rflush(void *p, int timeout_ms, char *errbuf, size_t errlen)
{
    rinst *r = p;
    rconn *c = &r->pub;
    if (r->has_sub && r->sub.state == ST_UP)
        conn_send(&r->sub); /* acknowledgements */
    if (!r->has_pub)
        return 0;
    if (c->state != ST_UP) {
        snprintf(errbuf, errlen, "not connected to %s: %s", r->addr, c->err);
        return IOTLAT_ECLOSED;
    }
    int rc = conn_wait(c, drained, NULL, mono_us() + (int64_t)timeout_ms * 1000);
    if (rc == IOTLAT_EAGAIN) {
        snprintf(errbuf, errlen, "%zu replies still outstanding from %s after %d ms",
                 c->ring_n, r->addr, timeout_ms);
        return IOTLAT_EAGAIN;
    }
    if (rc) {
        snprintf(errbuf, errlen, "%s", c->err);
        return rc;
    }
    if (c->refused) {
        snprintf(errbuf, errlen, "%llu commands were refused by %s; first: %s",
                 (unsigned long long)c->refused, r->addr, c->first_refusal);
        return IOTLAT_EIO;
    }
    return 0;
}

static char version[64];

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "redis",
    .version = version,
    .open = ropen,
    .subscribe = rsubscribe,
    .publish = rpublish,
    .poll = rpoll,
    .fd = rfd,
    .wait_ready = rwait_ready,
    .flush = rflush,
    .close = rclose,
};

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)minor, (void)host;
    if (major != IOTLAT_DRIVER_ABI_MAJOR) {
        snprintf(errbuf, errlen, "redis driver supports ABI major %d only, host has %u",
                 IOTLAT_DRIVER_ABI_MAJOR, major);
        return NULL;
    }
    snprintf(version, sizeof version, "redis driver 1.0, hiredis %d.%d.%d", HIREDIS_MAJOR,
             HIREDIS_MINOR, HIREDIS_PATCH);
    return &table;
}
