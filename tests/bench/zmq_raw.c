/*
 * zmq_raw.c - bare libzmq baselines and load generators for the benchmarks.
 *
 * On a shared two-core machine an absolute figure such as "the publisher
 * sends 800k msg/s" says little: the same code runs twice as fast on a quiet
 * box.  Every iotlat figure printed by tests/bench/run.sh is therefore set
 * next to the same work done with nothing but libzmq calls, measured in the
 * same run, so that the ratio shows what iotlat itself costs.  This program
 * provides those baselines, plus the traffic sources that feed the iotlat
 * subscriber, in one binary whose first argument picks the mode:
 *
 *   drain        connect a SUB socket and only count what arrives
 *   flood-send   send a fixed number of pre-encoded, valid iotlat messages
 *                (and their end markers) as fast as the socket takes them
 *   raw-send     send same-sized opaque messages as fast as possible for a
 *                fixed time: the baseline of the publisher's top rate
 *   paced-send   send at a fixed rate with a spin-wait before each message,
 *                carrying its intended and actual send times
 *   latency-recv receive paced-send's messages and record one-way latency
 *   msgsize      print the encoded size of a representative iotlat message
 *
 * Options are key=value arguments; every mode prints one JSON object on
 * stdout and exits non-zero on any failure.  Sending sockets are configured
 * like the iotlat ZeroMQ driver's (XPUB, send high-water mark 1,000,000) so
 * that the baselines differ from iotlat only by the code under test.
 */
#include "envelope.h"
#include "histogram.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#define HWM 1000000

static const char *mode;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zmq_raw %s: error: ", mode ? mode : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- clocks ------------------------------------------------------------ */

/* The same clock iotlat stamps messages with, so latencies compare. */
static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until_us(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000, .tv_nsec = (t % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ---- key=value arguments ----------------------------------------------- */

static int nargs;
static char **args;

/* Every argument must be one of the mode's known keys, so that a typo fails
 * instead of silently running with a default. */
static void check_args(const char *const *known)
{
    for (int i = 0; i < nargs; i++) {
        const char *eq = strchr(args[i], '=');
        int ok = 0;
        for (const char *const *k = known; eq && *k && !ok; k++)
            ok = strlen(*k) == (size_t)(eq - args[i]) &&
                 strncmp(*k, args[i], (size_t)(eq - args[i])) == 0;
        if (!ok)
            die("unknown argument '%s'", args[i]);
    }
}

static const char *opt(const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = 0; i < nargs; i++)
        if (strncmp(args[i], key, n) == 0 && args[i][n] == '=')
            return args[i] + n + 1;
    if (!def)
        die("missing argument %s=...", key);
    return def;
}

static double opt_num(const char *key, const char *def, double min, double max)
{
    const char *s = opt(key, def);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < min || v > max)
        die("%s='%s' is invalid: expected a number from %g to %g", key, s, min, max);
    return v;
}

/* Framing as the driver's IOTLAT_ZEROMQ_FRAMING: 1 for "prefix". */
static int opt_framing(void)
{
    const char *f = opt("framing", "multipart");
    if (strcmp(f, "prefix") == 0)
        return 1;
    if (strcmp(f, "multipart") != 0)
        die("framing='%s' is invalid: expected multipart or prefix", f);
    return 0;
}

/* ---- sockets ------------------------------------------------------------ */

/* An XPUB bound like the driver's.  nodrop makes a full queue block the
 * sender instead of discarding messages, so every message sent arrives and
 * the send rate is a sustained rate. */
static void *pub_socket(void *ctx, const char *endpoint, int nodrop)
{
    void *s = zmq_socket(ctx, ZMQ_XPUB);
    int hwm = HWM, linger = 20000, one = 1;
    if (!s)
        die("zmq_socket: %s", zmq_strerror(errno));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_XPUB_VERBOSE, &one, sizeof one);
    if (nodrop)
        zmq_setsockopt(s, ZMQ_XPUB_NODROP, &one, sizeof one);
    if (zmq_bind(s, endpoint) != 0)
        die("bind %s: %s", endpoint, zmq_strerror(errno));
    return s;
}

/* Waits until `n` subscriptions arrived on the XPUB socket: a message sent
 * before its subscriber is attached would be silently dropped. */
static void wait_subscribers(void *s, int n, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    int got = 0;
    char buf[256];
    while (got < n) {
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        if (mono_ns() >= deadline)
            die("only %d of %d subscribers connected within %d ms", got, n, timeout_ms);
        if (zmq_poll(&it, 1, 50) > 0 && zmq_recv(s, buf, sizeof buf, ZMQ_DONTWAIT) > 0 &&
            buf[0] == 1)
            got++;
    }
}

static void *sub_socket(void *ctx, const char *endpoint, const char *topic, int prefix)
{
    void *s = zmq_socket(ctx, ZMQ_SUB);
    int hwm = HWM, zero = 0;
    if (!s)
        die("zmq_socket: %s", zmq_strerror(errno));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, endpoint) != 0)
        die("connect %s: %s", endpoint, zmq_strerror(errno));
    /* The driver's subscription: "topic\0" with prefix framing. */
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, strlen(topic) + (size_t)prefix);
    return s;
}

/* One message as the driver frames it: [topic][data] or one frame that
 * already holds "topic\0data" (then topic is NULL). */
static void send_framed(void *s, const char *topic, size_t tl, const void *data,
                        size_t len, int flags)
{
    if (topic && zmq_send(s, topic, tl, ZMQ_SNDMORE | flags) < 0)
        die("zmq_send: %s", zmq_strerror(errno));
    if (zmq_send(s, data, len, flags) < 0)
        die("zmq_send: %s", zmq_strerror(errno));
}

/* A frame buffer holding "topic\0" followed by `size` bytes when prefix
 * framing is used, else just the `size` bytes; *payload points at them. */
static char *frame_buffer(const char *topic, int prefix, size_t size, char **payload,
                          size_t *frame_len)
{
    size_t head = prefix ? strlen(topic) + 1 : 0;
    char *b = malloc(head + size);
    if (!b)
        die("out of memory");
    if (prefix)
        memcpy(b, topic, head);
    memset(b + head, 'x', size);
    *payload = b + head;
    *frame_len = head + size;
    return b;
}

/* ---- drain ---------------------------------------------------------------- */

/* Counts messages (complete multipart sets) and nothing else.  The receive
 * time is read only when the queue runs empty, so the loop itself is just
 * zmq_msg_recv; the stamp taken at the first empty queue after the last
 * message is at most one empty poll late.  Stops after `expect` messages, at
 * an end marker (a message with an empty payload, as raw-send ends with), or
 * after idle_ms of silence once traffic started, or at timeout_ms. */
static int run_drain(void)
{
    static const char *const known[] = {"connect", "topic", "framing", "expect",
                                        "idle_ms", "timeout_ms", NULL};
    check_args(known);
    const char *topic = opt("topic", "bench");
    int prefix = opt_framing();
    int empty = prefix ? (int)strlen(topic) + 1 : 0; /* size of an end marker */
    uint64_t expect = (uint64_t)opt_num("expect", "0", 0, 1e12);
    int idle_ms = (int)opt_num("idle_ms", "1000", 1, 600000);
    int64_t timeout_ns = (int64_t)opt_num("timeout_ms", "30000", 1, 600000) * 1000000;
    void *ctx = zmq_ctx_new();
    void *s = sub_socket(ctx, opt("connect", NULL), topic, prefix);
    zmq_msg_t m;
    uint64_t n = 0, bytes = 0;
    int64_t first = 0, last = 0, deadline = mono_ns() + timeout_ns;
    int fresh = 0, timed_out = 0;

    zmq_msg_init(&m);
    for (;;) {
        int r = zmq_msg_recv(&m, s, ZMQ_DONTWAIT);
        if (r >= 0) {
            if (zmq_msg_more(&m))
                continue;
            if (r == empty) {
                last = fresh ? now_us() : last;
                break;
            }
            if (n++ == 0)
                first = now_us();
            bytes += (uint64_t)r;
            fresh = 1;
            if (n == expect) {
                last = now_us();
                break;
            }
            if ((n & 0xFFFF) == 0 && mono_ns() >= deadline) {
                timed_out = 1;
                break;
            }
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            die("zmq_msg_recv: %s", zmq_strerror(errno));
        if (fresh)
            last = now_us(), fresh = 0;
        int64_t left_ms = (deadline - mono_ns()) / 1000000;
        if (left_ms <= 0) {
            timed_out = 1;
            break;
        }
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        int wait = n ? idle_ms : (int)left_ms;
        if (wait > left_ms)
            wait = (int)left_ms;
        if (zmq_poll(&it, 1, wait) == 0 && n)
            break; /* silence after traffic: the sender is done */
    }
    double window = (double)(last - first) / 1e6;
    printf("{\"mode\":\"drain\",\"received\":%" PRIu64 ",\"bytes_mean\":%.2f,"
           "\"first_us\":%" PRId64 ",\"last_us\":%" PRId64 ",\"receive_rate\":%.1f,"
           "\"timed_out\":%s}\n",
           n, n ? (double)bytes / (double)n : 0.0, first, last,
           window > 0 ? (double)n / window : 0.0, timed_out ? "true" : "false");
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

/* ---- flood-send --------------------------------------------------------- */

/* Pre-encodes `count` valid iotlat messages (device i % devices, sequence
 * i / devices, as the publisher's schedule interleaves them) and one end
 * marker per device, then sends them back to back.  Encoding happens before
 * the clock starts, so the sender costs only zmq_send per message and the
 * receiver is the one being measured. */
static int run_flood_send(void)
{
    static const char *const known[] = {"bind",  "topic",   "framing", "encoding",
                                        "payload", "count", "devices", "subscribers",
                                        NULL};
    check_args(known);
    const char *topic = opt("topic", "bench");
    size_t tl = strlen(topic);
    int prefix = opt_framing();
    const char *encs = opt("encoding", "binary");
    const char *payload = opt("payload", "{\"t\":21.5}");
    uint64_t count = (uint64_t)opt_num("count", "2000000", 1, 1e8);
    uint32_t devices = (uint32_t)opt_num("devices", "1000", 1, 1e6);
    int subs = (int)opt_num("subscribers", "1", 1, 100);
    il_encoding enc;
    if (strcmp(encs, "binary") == 0)
        enc = IL_ENC_BINARY;
    else if (strcmp(encs, "json") == 0)
        enc = IL_ENC_JSON;
    else
        die("encoding='%s' is invalid: expected binary or json", encs);
    if (count % devices)
        die("count=%" PRIu64 " must be a multiple of devices=%u", count, devices);

    /* One contiguous buffer of frames [topic\0]message, packed by offset:
     * 2 million JSON messages take about 220 MB. */
    uint64_t nmsg = count + devices;
    size_t head = prefix ? tl + 1 : 0, cap = 0, used = 0;
    char *buf = NULL;
    uint64_t *off = malloc((nmsg + 1) * sizeof *off);
    uint8_t tmp[4096];
    if (!off)
        die("out of memory for %" PRIu64 " messages", nmsg);
    if (strlen(payload) + 600 > sizeof tmp)
        die("payload of %zu bytes is too long", strlen(payload));
    int64_t t0 = now_us();
    for (uint64_t i = 0; i < nmsg; i++) {
        il_env e = {.pub = 1, .t_intended = t0, .t_sent = t0};
        if (i < count) {
            e.dev = (uint32_t)(i % devices), e.seq = i / devices;
        } else {
            /* End markers: the device's message count and the device total. */
            e.dev = (uint32_t)(i - count), e.seq = count / devices;
            e.flags = IL_ENV_FIN, e.devices = devices;
        }
        int n = il_env_encode(enc, &e, i < count ? payload : "{}",
                              i < count ? strlen(payload) : 2, tmp, sizeof tmp);
        if (n < 0)
            die("il_env_encode failed (%d) for payload '%s'", n, payload);
        if (used + head + (size_t)n > cap) {
            cap = cap ? cap * 2 : (size_t)nmsg * (head + (size_t)n + 8);
            if (!(buf = realloc(buf, cap)))
                die("out of memory for %" PRIu64 " messages", nmsg);
        }
        off[i] = used;
        memcpy(buf + used, topic, head);
        memcpy(buf + used + head, tmp, (size_t)n);
        used += head + (size_t)n;
    }
    off[nmsg] = used;

    void *ctx = zmq_ctx_new();
    void *s = pub_socket(ctx, opt("bind", NULL), 1);
    wait_subscribers(s, subs, 10000);
    int64_t a = mono_ns();
    for (uint64_t i = 0; i < nmsg; i++)
        send_framed(s, prefix ? NULL : topic, tl, buf + off[i], off[i + 1] - off[i], 0);
    int64_t b = mono_ns();
    printf("{\"mode\":\"flood-send\",\"sent\":%" PRIu64 ",\"fins\":%u,\"bytes\":%u,"
           "\"send_rate\":%.1f}\n",
           count, devices, (unsigned)(off[1] - off[0] - head),
           (double)nmsg / ((double)(b - a) / 1e9));
    fflush(stdout);
    zmq_close(s); /* the linger period delivers what is still queued */
    zmq_ctx_term(ctx);
    free(buf);
    free(off);
    return 0;
}

/* ---- raw-send ------------------------------------------------------------- */

/* The baseline of the publisher's top rate: one thread handing same-sized
 * messages to libzmq as fast as it takes them, for a fixed time.  With
 * nodrop the socket blocks when its queue is full, so the rate is what the
 * transport sustains, not how fast messages can be discarded.  An empty
 * message ends the stream. */
static int run_raw_send(void)
{
    static const char *const known[] = {"bind",    "topic",      "framing",
                                        "size",    "seconds",    "subscribers",
                                        NULL};
    check_args(known);
    const char *topic = opt("topic", "bench");
    size_t tl = strlen(topic), frame_len;
    int prefix = opt_framing();
    size_t size = (size_t)opt_num("size", NULL, 1, 1 << 20);
    double seconds = opt_num("seconds", "2", 0.01, 600);
    int subs = (int)opt_num("subscribers", "1", 1, 100);
    char *payload;
    char *frame = frame_buffer(topic, prefix, size, &payload, &frame_len);
    void *ctx = zmq_ctx_new();
    void *s = pub_socket(ctx, opt("bind", NULL), 1);
    uint64_t n = 0;

    wait_subscribers(s, subs, 10000);
    int64_t a = mono_ns(), end = a + (int64_t)(seconds * 1e9), b;
    for (;;) {
        send_framed(s, prefix ? NULL : topic, tl, frame, frame_len, 0);
        if ((++n & 255) == 0 && (b = mono_ns()) >= end)
            break;
    }
    /* The end marker: an empty payload tells the drain to stop at once. */
    send_framed(s, prefix ? NULL : topic, tl, frame, frame_len - size, 0);
    printf("{\"mode\":\"raw-send\",\"sent\":%" PRIu64 ",\"bytes\":%zu,\"send_rate\":%.1f}\n",
           n, size, (double)n / ((double)(b - a) / 1e9));
    fflush(stdout);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(frame);
    return 0;
}

/* ---- paced-send and latency-recv ------------------------------------------ */

/* Stamps in the first 16 bytes of the payload; an intended time of -1 marks
 * the end of the stream. */
static void put_i64(char *w, int64_t v) { memcpy(w, &v, sizeof v); }
static int64_t get_i64(const char *r)
{
    int64_t v;
    memcpy(&v, r, sizeof v);
    return v;
}

/* The baseline of the publisher's latency: the same open-loop schedule
 * (message k due at start + k / rate), the same wait (sleep until spin_us
 * before the due time, then busy-wait), a CLOCK_REALTIME stamp just before
 * zmq_send, but no encoding and no driver layer. */
static int run_paced_send(void)
{
    static const char *const known[] = {"bind",    "topic",   "framing", "size", "rate",
                                        "seconds", "spin_us", "subscribers", NULL};
    check_args(known);
    const char *topic = opt("topic", "bench");
    size_t tl = strlen(topic), frame_len;
    int prefix = opt_framing();
    size_t size = (size_t)opt_num("size", NULL, 16, 1 << 20);
    double rate = opt_num("rate", "10000", 1, 1e7);
    double seconds = opt_num("seconds", "5", 0.01, 600);
    int64_t spin = (int64_t)opt_num("spin_us", "100", 0, 10000);
    int subs = (int)opt_num("subscribers", "1", 1, 100);
    uint64_t count = (uint64_t)(rate * seconds);
    char *payload;
    char *frame = frame_buffer(topic, prefix, size, &payload, &frame_len);
    void *ctx = zmq_ctx_new();
    void *s = pub_socket(ctx, opt("bind", NULL), 1);
    il_hist *lag = malloc(sizeof *lag);
    if (!lag)
        die("out of memory");
    il_hist_init(lag);
    /* As the publisher does: timer slack would delay every sleep. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    wait_subscribers(s, subs, 10000);
    int64_t t0 = now_us() + 20000;
    for (uint64_t k = 0; k < count; k++) {
        int64_t due = t0 + (int64_t)((double)k * 1e6 / rate), now = now_us();
        if (due - now > spin)
            sleep_until_us(due - spin);
        while ((now = now_us()) < due)
            ;
        put_i64(payload, due);
        put_i64(payload + 8, now);
        send_framed(s, prefix ? NULL : topic, tl, frame, frame_len, ZMQ_DONTWAIT);
        il_hist_record(lag, now - due);
    }
    put_i64(payload, -1);
    send_framed(s, prefix ? NULL : topic, tl, frame, frame_len, 0);
    printf("{\"mode\":\"paced-send\",\"sent\":%" PRIu64 ",\"send_lag_us\":{\"p50\":%" PRId64
           ",\"p99\":%" PRId64 ",\"max\":%" PRId64 "}}\n",
           count, il_hist_percentile(lag, 50), il_hist_percentile(lag, 99), lag->max);
    fflush(stdout);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(frame);
    free(lag);
    return 0;
}

static void print_hist(const char *key, const il_hist *h)
{
    printf("\"%s\":{\"count\":%" PRIu64 ",\"min\":%" PRId64 ",\"p50\":%" PRId64
           ",\"p90\":%" PRId64 ",\"p99\":%" PRId64 ",\"p999\":%" PRId64 ",\"max\":%" PRId64
           ",\"negative\":%" PRIu64 "}",
           key, h->total, h->total ? h->min : 0, il_hist_percentile(h, 50),
           il_hist_percentile(h, 90), il_hist_percentile(h, 99),
           il_hist_percentile(h, 99.9), h->total ? h->max : 0, h->negative);
}

/* Receives the way the iotlat subscriber does (non-blocking receive, and
 * zmq_poll when the queue is empty), stamps each message as soon as its last
 * frame is in hand, and records latency from the intended and from the
 * actual send time. */
static int run_latency_recv(void)
{
    static const char *const known[] = {"connect", "topic", "framing", "timeout_ms",
                                        NULL};
    check_args(known);
    const char *topic = opt("topic", "bench");
    size_t head;
    int prefix = opt_framing();
    int64_t deadline = mono_ns() + (int64_t)opt_num("timeout_ms", "30000", 1, 600000) * 1000000;
    void *ctx = zmq_ctx_new();
    void *s = sub_socket(ctx, opt("connect", NULL), topic, prefix);
    il_hist *lat = malloc(sizeof *lat), *svc = malloc(sizeof *svc);
    zmq_msg_t m;
    int ended = 0;
    if (!lat || !svc)
        die("out of memory");
    il_hist_init(lat);
    il_hist_init(svc);
    head = prefix ? strlen(topic) + 1 : 0;
    zmq_msg_init(&m);
    while (!ended) {
        int r = zmq_msg_recv(&m, s, ZMQ_DONTWAIT);
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                die("zmq_msg_recv: %s", zmq_strerror(errno));
            if (mono_ns() >= deadline)
                break;
            zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
            zmq_poll(&it, 1, 50);
            continue;
        }
        if (zmq_msg_more(&m))
            continue;
        int64_t t = now_us();
        if ((size_t)r < head + 16)
            die("short message of %d bytes", r);
        const char *p = (const char *)zmq_msg_data(&m) + head;
        int64_t ti = get_i64(p), ts = get_i64(p + 8);
        if (ti == -1) {
            ended = 1;
            break;
        }
        il_hist_record(lat, t - ti);
        il_hist_record(svc, t - ts);
    }
    printf("{\"mode\":\"latency-recv\",\"ended\":%s,", ended ? "true" : "false");
    print_hist("latency_us", lat);
    putchar(',');
    print_hist("service_latency_us", svc);
    printf("}\n");
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(lat);
    free(svc);
    return ended ? 0 : 1;
}

/* ---- msgsize ---------------------------------------------------------------- */

/* The size the publisher's encoder produces for one message with the given
 * identity, so a baseline can send messages of exactly that size. */
static int run_msgsize(void)
{
    static const char *const known[] = {"encoding", "payload", "pub", "dev", "seq", NULL};
    check_args(known);
    const char *encs = opt("encoding", "json");
    const char *payload = opt("payload", "{\"t\":21.5}");
    il_env e = {.pub = (uint32_t)opt_num("pub", "7", 0, 4294967295.0),
                .dev = (uint32_t)opt_num("dev", "0", 0, 4294967295.0),
                .seq = (uint64_t)opt_num("seq", "0", 0, 1e15)};
    uint8_t out[4096];
    e.t_intended = e.t_sent = now_us();
    int n = il_env_encode(strcmp(encs, "binary") == 0 ? IL_ENC_BINARY : IL_ENC_JSON, &e,
                          payload, strlen(payload), out, sizeof out);
    if (n < 0)
        die("il_env_encode failed (%d)", n);
    printf("{\"mode\":\"msgsize\",\"size\":%d}\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(void);
    } modes[] = {{"drain", run_drain},           {"flood-send", run_flood_send},
                 {"raw-send", run_raw_send},     {"paced-send", run_paced_send},
                 {"latency-recv", run_latency_recv}, {"msgsize", run_msgsize}};
    if (argc < 2) {
        fprintf(stderr, "usage: zmq_raw drain|flood-send|raw-send|paced-send|"
                        "latency-recv|msgsize key=value...\n");
        return 2;
    }
    mode = argv[1];
    nargs = argc - 2;
    args = argv + 2;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(mode, modes[i].name) == 0)
            return modes[i].run();
    die("unknown mode (expected drain, flood-send, raw-send, paced-send, "
        "latency-recv or msgsize)");
}
