/*
 * bench_core.c - in-process cost of iotlat's per-message code.
 *
 * The networked benchmarks in tests/bench/run.sh mix iotlat's own work with
 * libzmq, the kernel and a second process competing for two cores.  This
 * program measures the per-message functions alone, in memory, so that a
 * slow networked figure can be traced to (or cleared of) iotlat's code:
 *
 *   hist      ns per il_hist_record on random log-uniform values
 *   meas      ns per il_meas_message on pre-encoded binary and JSON messages,
 *             with the pieces it is made of (clock read, envelope decode,
 *             sequence tracking) timed separately
 *   sleep     ns per il_sleep_until_us with a deadline already past, which
 *             the publisher's pacing calls once per loop turn when busy
 *
 * Every call goes through a function pointer read from a volatile variable,
 * so the compiler can neither inline the function nor drop a call whose
 * result seems unused; results are printed at the end for the same reason.
 * Each figure is the best of ROUNDS repetitions: on a shared machine the
 * fastest round is the one least disturbed by other processes, so it is the
 * closest estimate of what the code itself costs.  Output is one JSON
 * object per line.
 */
#include "clock.h"
#include "envelope.h"
#include "histogram.h"
#include "measure.h"
#include "seqtrack.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVALUES (1u << 20) /* pre-drawn histogram inputs, 8 MB */
#define ROUNDS 3

static double best(double a, double b) { return a < b ? a : b; }

static void die(const char *what)
{
    fprintf(stderr, "bench_core: error: %s\n", what);
    exit(1);
}

/* xorshift64*: cheap, deterministic, good enough to spread values. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* A do-nothing function with il_hist_record's signature, called the same
 * way, to show how much of the measured time is the loop and the call. */
static void __attribute__((noinline)) no_record(il_hist *h, int64_t v)
{
    __asm__ volatile("" : : "r"(h), "r"(v) : "memory");
}

static void (*volatile record_fn)(il_hist *, int64_t) = il_hist_record;
static void (*volatile empty_fn)(il_hist *, int64_t) = no_record;
static void (*volatile meas_fn)(il_meas *, const void *, size_t, int64_t) =
    il_meas_message;
static int (*volatile decode_fn)(const uint8_t *, size_t, il_env *, const uint8_t **,
                                 size_t *) = il_env_decode;
static int (*volatile seq_fn)(il_seq *, uint32_t, uint32_t, uint64_t) = il_seq_record;
static int64_t (*volatile clock_fn)(void) = il_now_us;

static double time_record_loop(void (*fn)(il_hist *, int64_t), il_hist *h,
                               const int64_t *values, uint64_t n)
{
    int64_t a = il_mono_ns();
    for (uint64_t i = 0; i < n; i++)
        fn(h, values[i & (NVALUES - 1)]);
    return (double)(il_mono_ns() - a) / (double)n;
}

/* Values log-uniform over the whole trackable range (1 us .. 1 hour), so
 * every bucket of the histogram is hit and the counter array does not sit
 * in one cache line. */
static int bench_hist(uint64_t n)
{
    int64_t *values = malloc(NVALUES * sizeof *values);
    il_hist *h = malloc(sizeof *h);
    if (!values || !h)
        die("out of memory");
    double span = log((double)IL_HIST_HIGHEST);
    for (uint32_t i = 0; i < NVALUES; i++)
        values[i] = (int64_t)exp((double)(rng() >> 11) / 9007199254740992.0 * span);
    il_hist_init(h);
    /* One untimed pass faults the pages in and warms the caches. */
    time_record_loop(record_fn, h, values, NVALUES);
    double empty = 1e99, ns = 1e99;
    for (int r = 0; r < ROUNDS; r++) {
        il_hist_init(h);
        empty = best(empty, time_record_loop(empty_fn, h, values, n));
        ns = best(ns, time_record_loop(record_fn, h, values, n));
        if (h->total != n)
            die("histogram total does not match the records made");
    }
    printf("{\"bench\":\"hist_record\",\"records\":%" PRIu64 ",\"ns_per_record\":%.2f,"
           "\"ns_loop_and_call\":%.2f,\"p50\":%" PRId64 ",\"p99\":%" PRId64 "}\n",
           n, ns, empty, il_hist_percentile(h, 50), il_hist_percentile(h, 99));
    free(values);
    free(h);
    return 0;
}

/* ---- il_meas_message ------------------------------------------------------ */

typedef struct stream {
    uint8_t *buf;
    uint64_t *off; /* message i is buf[off[i] .. off[i + 1]) */
    int64_t *t_recv;
    uint64_t n;
} stream;

/* `n` messages in the publisher's order (device i % devices, sequence
 * i / devices), each with the receive time a subscriber would stamp: a few
 * tens to hundreds of us after its send time. */
static void build_stream(stream *s, il_encoding enc, const char *payload,
                         uint32_t devices, uint64_t n)
{
    uint8_t tmp[1024];
    size_t cap = 0, used = 0;
    int64_t t0 = il_now_us();
    s->n = n;
    s->buf = NULL;
    s->off = malloc((n + 1) * sizeof *s->off);
    s->t_recv = malloc(n * sizeof *s->t_recv);
    if (!s->off || !s->t_recv)
        die("out of memory");
    for (uint64_t i = 0; i < n; i++) {
        il_env e = {.pub = 7, .dev = (uint32_t)(i % devices), .seq = i / devices};
        e.t_intended = t0 + (int64_t)i;
        e.t_sent = e.t_intended + 3 + (int64_t)(rng() % 20);
        int len = il_env_encode(enc, &e, payload, strlen(payload), tmp, sizeof tmp);
        if (len < 0)
            die("il_env_encode failed");
        if (used + (size_t)len > cap) {
            cap = cap ? cap * 2 : (size_t)n * ((size_t)len + 8);
            if (!(s->buf = realloc(s->buf, cap)))
                die("out of memory");
        }
        memcpy(s->buf + used, tmp, (size_t)len);
        s->off[i] = used;
        used += (size_t)len;
        s->t_recv[i] = e.t_sent + 30 + (int64_t)(rng() % 400);
    }
    s->off[n] = used;
}

static void free_stream(stream *s)
{
    free(s->buf);
    free(s->off);
    free(s->t_recv);
}

static int bench_meas(const char *encname, const char *payload, uint64_t n,
                      uint32_t devices)
{
    il_encoding enc = strcmp(encname, "json") == 0 ? IL_ENC_JSON : IL_ENC_BINARY;
    stream s;
    il_env e;
    int64_t a, sink = 0;
    uint64_t bad = 0;
    build_stream(&s, enc, payload, devices, n);

    double ns_clock = 1e99, ns_decode = 1e99, ns_seq = 1e99, ns_meas = 1e99;

    /* The clock read the driver makes for every message it delivers. */
    int64_t (*now)(void) = clock_fn;
    for (int r = 0; r < ROUNDS; r++) {
        a = il_mono_ns();
        for (uint64_t i = 0; i < n; i++)
            sink += now();
        ns_clock = best(ns_clock, (double)(il_mono_ns() - a) / (double)n);
    }

    /* Decoding alone. */
    int (*decode)(const uint8_t *, size_t, il_env *, const uint8_t **, size_t *) =
        decode_fn;
    uint32_t *pub = malloc(n * sizeof *pub), *dev = malloc(n * sizeof *dev);
    uint64_t *seq = malloc(n * sizeof *seq);
    if (!pub || !dev || !seq)
        die("out of memory");
    for (int r = 0; r < ROUNDS; r++) {
        a = il_mono_ns();
        for (uint64_t i = 0; i < n; i++) {
            bad += decode(s.buf + s.off[i], s.off[i + 1] - s.off[i], &e, NULL, NULL) != 0;
            pub[i] = e.pub, dev[i] = e.dev, seq[i] = e.seq;
        }
        ns_decode = best(ns_decode, (double)(il_mono_ns() - a) / (double)n);
    }

    /* Sequence tracking alone, on the decoded identities. */
    int (*record)(il_seq *, uint32_t, uint32_t, uint64_t) = seq_fn;
    for (int r = 0; r < ROUNDS; r++) {
        il_seq sq;
        if (il_seq_init(&sq) != 0)
            die("il_seq_init failed");
        a = il_mono_ns();
        for (uint64_t i = 0; i < n; i++)
            bad += record(&sq, pub[i], dev[i], seq[i]) != IL_SEQ_NEW;
        ns_seq = best(ns_seq, (double)(il_mono_ns() - a) / (double)n);
        il_seq_free(&sq);
    }

    /* The whole per-message path of the subscriber after the driver. */
    void (*meas)(il_meas *, const void *, size_t, int64_t) = meas_fn;
    for (int r = 0; r < ROUNDS; r++) {
        /* A fresh state each round, so every message is a first arrival. */
        il_meas *m = il_meas_new();
        if (!m)
            die("il_meas_new failed");
        a = il_mono_ns();
        for (uint64_t i = 0; i < n; i++)
            meas(m, s.buf + s.off[i], s.off[i + 1] - s.off[i], s.t_recv[i]);
        ns_meas = best(ns_meas, (double)(il_mono_ns() - a) / (double)n);
        if (bad || m->malformed || m->seq.t.received_unique != n || m->seq.t.lost)
            die("the pre-encoded stream was not accounted as expected");
        il_meas_free(m);
    }

    printf("{\"bench\":\"meas_message\",\"encoding\":\"%s\",\"messages\":%" PRIu64
           ",\"bytes\":%" PRIu64 ",\"ns_per_message\":%.2f,\"rate\":%.0f,"
           "\"ns_clock\":%.2f,\"ns_decode\":%.2f,\"ns_seq\":%.2f,\"sink\":%d}\n",
           encname, n, s.off[1] - s.off[0], ns_meas, 1e9 / ns_meas, ns_clock, ns_decode,
           ns_seq, (int)(sink & 1));
    free(pub), free(dev), free(seq);
    free_stream(&s);
    return 0;
}

/* ---- il_sleep_until_us ---------------------------------------------------- */

/* A deadline in the past should cost nothing, but an absolute
 * clock_nanosleep still arms a timer in the kernel, which in a virtual
 * machine can mean a trip through the hypervisor. */
static int bench_sleep(uint64_t n)
{
    void (*sleep_until)(int64_t) = il_sleep_until_us;
    double ns = 1e99;
    for (int r = 0; r < ROUNDS; r++) {
        int64_t a = il_mono_ns();
        for (uint64_t i = 0; i < n; i++)
            sleep_until(il_now_us() - 1000);
        ns = best(ns, (double)(il_mono_ns() - a) / (double)n);
    }
    printf("{\"bench\":\"sleep_past\",\"calls\":%" PRIu64 ",\"ns_per_call\":%.1f}\n", n,
           ns);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "hist") == 0) {
        uint64_t n = argc >= 3 ? strtoull(argv[2], NULL, 10) : 50000000;
        if (n == 0 || n > 10000000000ULL)
            die("hist [records]: records must be 1 .. 1e10");
        return bench_hist(n);
    }
    if (argc >= 3 && strcmp(argv[1], "meas") == 0) {
        const char *payload = argc >= 4 ? argv[3] : "{\"t\":21.5}";
        uint64_t n = argc >= 5 ? strtoull(argv[4], NULL, 10) : 2000000;
        if (strcmp(argv[2], "json") != 0 && strcmp(argv[2], "binary") != 0)
            die("meas binary|json [payload] [messages]");
        if (n < 1000 || n > 100000000 || n % 1000)
            die("meas: messages must be a multiple of 1000 up to 1e8");
        return bench_meas(argv[2], payload, n, 1000);
    }
    if (argc >= 2 && strcmp(argv[1], "sleep") == 0)
        return bench_sleep(5000);
    fprintf(stderr, "usage: bench_core hist [records]\n"
                    "       bench_core sleep\n"
                    "       bench_core meas binary|json [payload] [messages]\n");
    return 2;
}
