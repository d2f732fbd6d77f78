/*
 * test_seqtrack.c - unit tests for the per-device sequence tracker.
 *
 * The hand-written cases pin down each classification rule (new, gap,
 * duplicate, late, stale, fin) on small streams whose right answer is
 * obvious.  The randomized case then checks the tracker against a naive
 * reference model (one flag per sequence number, no window tricks) on a long
 * stream with drops, duplicates, reordering, very late stragglers and fins,
 * because the ring bitmap and the incremental totals are exactly the kind of
 * code where an off-by-one only shows up on an unlucky interleaving.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "seqtrack.h"

static il_seq_dev_info info_of(const il_seq *s, uint32_t pub, uint32_t dev)
{
    il_seq_dev_info d;
    assert_int_equal(il_seq_get(s, pub, dev, &d), 0);
    assert_int_equal(d.pub, pub);
    assert_int_equal(d.dev, dev);
    return d;
}

/* The invariant the whole module exists to keep, for one device and for the
 * totals.  Unsigned arithmetic makes it hold modulo 2^64 even for absurd
 * sequence numbers. */
static void check_dev_invariant(const il_seq_dev_info *d)
{
    assert_true(d->expected == d->received_unique + d->lost);
}

static void check_totals_invariant(const il_seq *s)
{
    assert_true(s->t.expected == s->t.received_unique + s->t.lost);
    assert_true(s->used == s->t.devices);
}

static void test_in_order(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    for (uint64_t i = 0; i < 5000; i++)
        assert_int_equal(il_seq_record(&s, 1, 2, i), IL_SEQ_NEW);
    il_seq_dev_info d = info_of(&s, 1, 2);
    assert_int_equal(d.received_unique, 5000);
    assert_int_equal(d.lost, 0);
    assert_int_equal(d.expected, 5000);
    assert_int_equal(d.duplicates + d.reordered + d.stale, 0);
    assert_false(d.has_fin);
    assert_int_equal(s.t.received, 5000);
    assert_int_equal(s.t.devices, 1);
    assert_int_equal(s.t.devices_with_fin, 0);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_gap(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    assert_int_equal(il_seq_record(&s, 1, 1, 0), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, 1), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, 5), IL_SEQ_GAP);
    assert_int_equal(il_seq_record(&s, 1, 1, 6), IL_SEQ_NEW);
    il_seq_dev_info d = info_of(&s, 1, 1);
    assert_int_equal(d.lost, 3);
    assert_int_equal(d.received_unique, 4);
    assert_int_equal(d.expected, 7);
    assert_int_equal(s.t.lost, 3);
    check_dev_invariant(&d);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_duplicate(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    assert_int_equal(il_seq_record(&s, 1, 1, 0), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, 1), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, 1), IL_SEQ_DUPLICATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 0), IL_SEQ_DUPLICATE);
    il_seq_dev_info d = info_of(&s, 1, 1);
    assert_int_equal(d.duplicates, 2);
    assert_int_equal(d.received_unique, 2);
    assert_int_equal(d.lost, 0);
    assert_int_equal(s.t.received, 4);
    assert_int_equal(s.t.received_unique, 2);
    assert_int_equal(s.t.duplicates, 2);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_reorder(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    assert_int_equal(il_seq_record(&s, 3, 4, 0), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 3, 4, 2), IL_SEQ_GAP);
    assert_int_equal(s.t.lost, 1);
    assert_int_equal(il_seq_record(&s, 3, 4, 1), IL_SEQ_LATE);
    assert_int_equal(il_seq_record(&s, 3, 4, 1), IL_SEQ_DUPLICATE);
    il_seq_dev_info d = info_of(&s, 3, 4);
    assert_int_equal(d.lost, 0);
    assert_int_equal(d.reordered, 1);
    assert_int_equal(d.duplicates, 1);
    assert_int_equal(d.received_unique, 3);
    assert_int_equal(d.expected, 3);
    assert_int_equal(s.t.lost, 0);
    assert_int_equal(s.t.reordered, 1);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_late_zero_after_five(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    /* Numbering starts at 0, so a first arrival of 5 means 0..4 are open. */
    assert_int_equal(il_seq_record(&s, 9, 9, 5), IL_SEQ_GAP);
    il_seq_dev_info d = info_of(&s, 9, 9);
    assert_int_equal(d.lost, 5);
    assert_int_equal(d.expected, 6);
    assert_int_equal(il_seq_record(&s, 9, 9, 0), IL_SEQ_LATE);
    d = info_of(&s, 9, 9);
    assert_int_equal(d.lost, 4);
    assert_int_equal(d.reordered, 1);
    assert_int_equal(d.received_unique, 2);
    check_dev_invariant(&d);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_stale_beyond_window(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    const uint64_t H = 5000;
    assert_int_equal(il_seq_record(&s, 1, 1, 0), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, H), IL_SEQ_GAP);
    /* The oldest number still in the window can fill its gap ... */
    assert_int_equal(il_seq_record(&s, 1, 1, H - (IL_SEQ_WINDOW - 1)),
                     IL_SEQ_LATE);
    /* ... one further back is forgotten and only counted as stale, and so
     * is a repeat of a number that was received long ago. */
    assert_int_equal(il_seq_record(&s, 1, 1, H - IL_SEQ_WINDOW), IL_SEQ_STALE);
    assert_int_equal(il_seq_record(&s, 1, 1, 0), IL_SEQ_STALE);
    il_seq_dev_info d = info_of(&s, 1, 1);
    assert_int_equal(d.stale, 2);
    assert_int_equal(d.received_unique, 3);
    assert_int_equal(d.lost, H - 2);
    assert_int_equal(d.expected, H + 1);
    assert_int_equal(s.t.received, 5);
    assert_int_equal(s.t.stale, 2);
    check_dev_invariant(&d);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

/* A gap shorter than the window reuses ring positions that still hold bits
 * from a window ago; they must read as missing, not as duplicates. */
static void test_window_reuse_after_partial_gap(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    for (uint64_t i = 0; i < IL_SEQ_WINDOW; i++)
        assert_int_equal(il_seq_record(&s, 1, 1, i), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, 1500), IL_SEQ_GAP);
    for (uint64_t i = IL_SEQ_WINDOW; i < 1500; i++)
        assert_int_equal(il_seq_record(&s, 1, 1, i), IL_SEQ_LATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 1499), IL_SEQ_DUPLICATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 1500 - IL_SEQ_WINDOW + 1),
                     IL_SEQ_DUPLICATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 1500 - IL_SEQ_WINDOW),
                     IL_SEQ_STALE);
    il_seq_dev_info d = info_of(&s, 1, 1);
    assert_int_equal(d.lost, 0);
    assert_int_equal(d.received_unique, 1501);
    assert_int_equal(d.reordered, 1500 - IL_SEQ_WINDOW);
    check_dev_invariant(&d);
    il_seq_free(&s);
}

static void test_fin_tail_loss(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    for (uint64_t i = 0; i < 10; i++)
        il_seq_record(&s, 2, 7, i);
    assert_int_equal(il_seq_fin(&s, 2, 7, 20), 0);
    il_seq_dev_info d = info_of(&s, 2, 7);
    assert_true(d.has_fin);
    assert_int_equal(d.expected, 20);
    assert_int_equal(d.lost, 10);
    assert_int_equal(d.received_unique, 10);
    assert_int_equal(s.t.devices_with_fin, 1);
    assert_int_equal(s.t.expected, 20);
    /* A repeated fin changes nothing, whatever it says. */
    assert_int_equal(il_seq_fin(&s, 2, 7, 30), 0);
    d = info_of(&s, 2, 7);
    assert_int_equal(d.expected, 20);
    assert_int_equal(d.lost, 10);
    assert_int_equal(s.t.devices_with_fin, 1);
    /* A fin announcing fewer than were seen adds no loss. */
    for (uint64_t i = 0; i < 10; i++)
        il_seq_record(&s, 2, 8, i);
    assert_int_equal(il_seq_fin(&s, 2, 8, 5), 0);
    d = info_of(&s, 2, 8);
    assert_int_equal(d.expected, 10);
    assert_int_equal(d.lost, 0);
    assert_int_equal(s.t.devices_with_fin, 2);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_fin_then_late_tail(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    for (uint64_t i = 0; i < 5; i++)
        il_seq_record(&s, 1, 1, i);
    il_seq_fin(&s, 1, 1, 10);
    assert_int_equal(info_of(&s, 1, 1).lost, 5);
    assert_int_equal(il_seq_record(&s, 1, 1, 7), IL_SEQ_LATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 7), IL_SEQ_DUPLICATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 9), IL_SEQ_LATE);
    il_seq_dev_info d = info_of(&s, 1, 1);
    assert_int_equal(d.lost, 3);
    assert_int_equal(d.reordered, 2);
    assert_int_equal(d.expected, 10);
    /* Beyond the announced count (a publisher bug) the rules still hold and
     * expected follows the highest seen. */
    assert_int_equal(il_seq_record(&s, 1, 1, 10), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, 15), IL_SEQ_GAP);
    d = info_of(&s, 1, 1);
    assert_int_equal(d.expected, 16);
    assert_int_equal(d.lost, 7);
    check_dev_invariant(&d);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_fin_only(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    assert_int_equal(il_seq_fin(&s, 5, 6, 42), 0);
    il_seq_dev_info d = info_of(&s, 5, 6);
    assert_true(d.has_fin);
    assert_int_equal(d.lost, 42);
    assert_int_equal(d.expected, 42);
    assert_int_equal(d.received_unique, 0);
    /* A device that announced nothing at all is tracked but owes nothing. */
    assert_int_equal(il_seq_fin(&s, 5, 7, 0), 0);
    d = info_of(&s, 5, 7);
    assert_int_equal(d.lost, 0);
    assert_int_equal(d.expected, 0);
    assert_int_equal(s.t.devices, 2);
    assert_int_equal(s.t.devices_with_fin, 2);
    assert_int_equal(s.t.received, 0);
    assert_int_equal(s.t.lost, 42);
    /* Its first message after such an empty fin is still accounted from 0. */
    assert_int_equal(il_seq_record(&s, 5, 7, 3), IL_SEQ_GAP);
    d = info_of(&s, 5, 7);
    assert_int_equal(d.lost, 3);
    assert_int_equal(d.expected, 4);
    /* And a tail message of the fin-only device fills its gap. */
    assert_int_equal(il_seq_record(&s, 5, 6, 41), IL_SEQ_LATE);
    assert_int_equal(info_of(&s, 5, 6).lost, 41);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_huge_jump(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    const uint64_t E18 = 1000000000000000000ULL;
    assert_int_equal(il_seq_record(&s, 1, 1, E18), IL_SEQ_GAP);
    il_seq_dev_info d = info_of(&s, 1, 1);
    assert_true(d.lost == E18);
    assert_true(d.expected == E18 + 1);
    assert_int_equal(il_seq_record(&s, 1, 1, E18 + 1), IL_SEQ_NEW);
    assert_int_equal(il_seq_record(&s, 1, 1, E18 - 1), IL_SEQ_LATE);
    assert_int_equal(il_seq_record(&s, 1, 1, 5), IL_SEQ_STALE);
    assert_int_equal(il_seq_fin(&s, 1, 1, 2 * E18), 0);
    d = info_of(&s, 1, 1);
    assert_true(d.expected == 2 * E18);
    assert_true(d.lost == 2 * E18 - 3);
    check_dev_invariant(&d);
    /* Many huge jumps in a row: with a per-number loop this would never
     * finish; each jump must cost at most one window clear. */
    uint64_t seq = 0;
    for (int i = 0; i < 100000; i++) {
        seq += 1000000000000ULL + (uint64_t)i;
        assert_int_equal(il_seq_record(&s, 1, 2, seq), IL_SEQ_GAP);
    }
    d = info_of(&s, 1, 2);
    assert_true(d.expected == seq + 1);
    assert_true(d.lost == seq + 1 - 100000);
    /* The very top of the range wraps expected to 0 but keeps the invariant
     * (mod 2^64), and a fin cannot wrap its way into fake tail loss. */
    assert_int_equal(il_seq_record(&s, 1, 3, UINT64_MAX), IL_SEQ_GAP);
    assert_int_equal(il_seq_fin(&s, 1, 3, UINT64_MAX), 0);
    d = info_of(&s, 1, 3);
    assert_true(d.lost == UINT64_MAX);
    assert_int_equal(d.received_unique, 1);
    check_dev_invariant(&d);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_many_devices(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    const uint32_t pubs[3] = {0, 77, UINT32_MAX};
    const uint32_t N = 100000;
    size_t cap0 = s.cap;
    for (uint32_t k = 0; k < N; k++) {
        uint32_t pub = pubs[k % 3], dev = k / 3;
        il_seq_record(&s, pub, dev, k % 5);
        if (k % 4 == 0)
            il_seq_record(&s, pub, dev, k % 5 + 2);
        if (k % 7 == 0)
            il_seq_fin(&s, pub, dev, 10);
    }
    assert_true(s.cap > cap0);
    assert_true((s.cap & (s.cap - 1)) == 0);
    assert_true(s.used * 10 <= s.cap * 7);
    assert_int_equal(s.used, N);
    assert_int_equal(s.t.devices, N);
    for (uint32_t k = 0; k < N; k++) {
        il_seq_dev_info d = info_of(&s, pubs[k % 3], k / 3);
        uint64_t high = k % 5 + (k % 4 == 0 ? 2 : 0);
        uint64_t uniq = k % 4 == 0 ? 2 : 1;
        uint64_t exp = k % 7 == 0 && high < 10 ? 10 : high + 1;
        assert_int_equal(d.received_unique, uniq);
        assert_int_equal(d.expected, exp);
        assert_int_equal(d.lost, exp - uniq);
        assert_int_equal(d.has_fin, k % 7 == 0);
    }
    il_seq_dev_info d;
    assert_int_equal(il_seq_get(&s, 1, 0, &d), -1);
    assert_int_equal(il_seq_get(&s, 0, N, &d), -1);
    check_totals_invariant(&s);
    il_seq_free(&s);
}

static void test_get_unknown(void **state)
{
    (void)state;
    il_seq s;
    il_seq_dev_info d;
    assert_int_equal(il_seq_init(&s), 0);
    assert_int_equal(il_seq_get(&s, 0, 0, &d), -1);
    il_seq_record(&s, 0, 1, 0);
    assert_int_equal(il_seq_get(&s, 0, 0, &d), -1);
    assert_int_equal(il_seq_get(&s, 1, 1, &d), -1);
    assert_int_equal(il_seq_get(&s, 0, 1, &d), 0);
    il_seq_free(&s);
    /* A freed tracker answers "unknown" rather than crashing, and can be
     * initialized again. */
    assert_int_equal(il_seq_get(&s, 0, 1, &d), -1);
    assert_int_equal(il_seq_init(&s), 0);
    assert_int_equal(s.t.devices, 0);
    il_seq_free(&s);
}

typedef struct {
    unsigned char *seen;
    size_t visits;
    il_seq_totals sum;
} visit_ctx;

static void visit(const il_seq_dev_info *d, void *ud)
{
    visit_ctx *c = ud;
    assert_true(d->pub < 4);
    assert_true(d->dev < 1000);
    size_t idx = (size_t)d->pub * 1000 + d->dev;
    assert_int_equal(c->seen[idx], 0);
    c->seen[idx] = 1;
    c->visits++;
    c->sum.received_unique += d->received_unique;
    c->sum.lost += d->lost;
    c->sum.duplicates += d->duplicates;
    c->sum.expected += d->expected;
    c->sum.devices_with_fin += (uint64_t)d->has_fin;
    check_dev_invariant(d);
}

static void test_foreach(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    for (uint32_t k = 0; k < 4000; k++) {
        il_seq_record(&s, k % 4, k / 4, k % 13);
        il_seq_record(&s, k % 4, k / 4, k % 13);
        if (k % 5 == 0)
            il_seq_fin(&s, k % 4, k / 4, 20);
    }
    visit_ctx c = {calloc(4000, 1), 0, {0}};
    assert_non_null(c.seen);
    il_seq_foreach(&s, visit, &c);
    assert_int_equal(c.visits, 4000);
    for (size_t i = 0; i < 4000; i++)
        assert_int_equal(c.seen[i], 1);
    assert_true(c.sum.received_unique == s.t.received_unique);
    assert_true(c.sum.lost == s.t.lost);
    assert_true(c.sum.duplicates == s.t.duplicates);
    assert_true(c.sum.expected == s.t.expected);
    assert_true(c.sum.devices_with_fin == s.t.devices_with_fin);
    free(c.seen);
    il_seq_free(&s);
}

/* ---- randomized comparison against a naive reference model ---- */

static uint64_t rng_state = 0x1234567887654321ULL;

static uint64_t rnd(void)
{
    /* xorshift64*: fixed seed, so every run sees the same stream. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

typedef struct {
    uint32_t pub, dev;
    uint64_t n;           /* messages the publisher sends */
    uint64_t fin_count;   /* what its fin announces */
    uint64_t next;        /* next sequence number to generate */
    unsigned char *got;   /* one flag per sequence number */
    int64_t vh;           /* highest seen or announced, -1 if none */
    uint64_t unique, dup, reord, stale;
    int fin;
} model_dev;

#define MDEVS 60
#define DELAY_SLOTS 32

static model_dev mdev[MDEVS];

static int model_record(model_dev *m, uint64_t seq)
{
    int64_t q = (int64_t)seq;
    if (m->vh < 0 || q > m->vh) {
        int res = q > m->vh + 1 ? IL_SEQ_GAP : IL_SEQ_NEW;
        m->vh = q;
        m->got[seq] = 1;
        m->unique++;
        return res;
    }
    if (m->vh - q >= IL_SEQ_WINDOW) {
        m->stale++;
        return IL_SEQ_STALE;
    }
    if (m->got[seq]) {
        m->dup++;
        return IL_SEQ_DUPLICATE;
    }
    m->got[seq] = 1;
    m->unique++;
    m->reord++;
    return IL_SEQ_LATE;
}

static void model_fin(model_dev *m)
{
    if (m->fin)
        return;
    m->fin = 1;
    if (m->fin_count > 0 && (int64_t)m->fin_count - 1 > m->vh)
        m->vh = (int64_t)m->fin_count - 1;
}

static void check_all_invariant(const il_seq_dev_info *d, void *ud)
{
    (void)ud;
    check_dev_invariant(d);
}

static uint64_t deliveries;
static uint64_t result_count[5];

static void deliver(il_seq *s, int i, uint64_t seq)
{
    int got = il_seq_record(s, mdev[i].pub, mdev[i].dev, seq);
    int want = model_record(&mdev[i], seq);
    assert_int_equal(got, want);
    result_count[got]++;
    deliveries++;
    check_totals_invariant(s);
    if (deliveries % 4096 == 0)
        il_seq_foreach(s, check_all_invariant, NULL);
}

typedef struct {
    int dev; /* -1 = empty */
    uint64_t seq;
} msg;

static void test_randomized_vs_model(void **state)
{
    (void)state;
    il_seq s;
    assert_int_equal(il_seq_init(&s), 0);
    const uint32_t pubs[3] = {11, 22, 33};
    uint64_t total_msgs = 0;
    for (int i = 0; i < MDEVS; i++) {
        model_dev *m = &mdev[i];
        memset(m, 0, sizeof *m);
        m->pub = pubs[i % 3];
        m->dev = (uint32_t)(i / 3) * 1000 + 5;
        m->n = 1500 + rnd() % 2500;
        m->fin_count = m->n;
        if (i % 7 == 0)
            m->fin_count = m->n + 37; /* tail the stream never carried */
        if (i % 11 == 0)
            m->fin_count = m->n - 10; /* publisher under-announces */
        m->got = calloc(m->fin_count > m->n ? m->fin_count : m->n, 1);
        assert_non_null(m->got);
        m->vh = -1;
        total_msgs += m->n;
    }
    msg delay[DELAY_SLOTS];
    for (int k = 0; k < DELAY_SLOTS; k++)
        delay[k].dev = -1;
    msg *late = calloc(total_msgs, sizeof *late);
    size_t nlate = 0;
    int active[MDEVS], nactive = MDEVS;
    for (int i = 0; i < MDEVS; i++)
        active[i] = i;

    /* Each generated message goes through a small random delay line (bounded
     * reordering across devices), may be dropped or duplicated, and a rare
     * one is held back to the very end (mostly stale by then). */
    while (nactive > 0) {
        int a = (int)(rnd() % (uint64_t)nactive), i = active[a];
        uint64_t seq = mdev[i].next++;
        if (mdev[i].next == mdev[i].n)
            active[a] = active[--nactive];
        uint64_t r = rnd() % 1000;
        if (r < 50)
            continue;
        if (r == 999) {
            late[nlate++] = (msg){i, seq};
            continue;
        }
        int copies = r < 80 ? 2 : 1;
        for (int c = 0; c < copies; c++) {
            int slot = (int)(rnd() % DELAY_SLOTS);
            if (delay[slot].dev >= 0)
                deliver(&s, delay[slot].dev, delay[slot].seq);
            delay[slot] = (msg){i, seq};
        }
    }
    /* Some fins overtake the last delayed messages, some follow them, and a
     * third of the devices never send one. */
    for (int i = 0; i < MDEVS; i++) {
        if (i % 3 == 1) {
            assert_int_equal(
                il_seq_fin(&s, mdev[i].pub, mdev[i].dev, mdev[i].fin_count),
                0);
            model_fin(&mdev[i]);
            check_totals_invariant(&s);
        }
    }
    for (int k = 0; k < DELAY_SLOTS; k++)
        if (delay[k].dev >= 0)
            deliver(&s, delay[k].dev, delay[k].seq);
    for (size_t k = 0; k < nlate; k++)
        deliver(&s, late[k].dev, late[k].seq);
    for (int i = 0; i < MDEVS; i++) {
        if (i % 3 == 2) {
            il_seq_fin(&s, mdev[i].pub, mdev[i].dev, mdev[i].fin_count);
            model_fin(&mdev[i]);
        }
        /* A repeated fin must be ignored. */
        if (i % 3 != 0)
            il_seq_fin(&s, mdev[i].pub, mdev[i].dev, mdev[i].fin_count + 99);
    }

    il_seq_totals sum = {0};
    for (int i = 0; i < MDEVS; i++) {
        model_dev *m = &mdev[i];
        il_seq_dev_info d = info_of(&s, m->pub, m->dev);
        uint64_t exp = (uint64_t)(m->vh + 1), lost = 0;
        for (int64_t q = 0; q <= m->vh; q++)
            lost += !m->got[q];
        assert_int_equal(d.expected, exp);
        assert_int_equal(d.lost, lost);
        assert_int_equal(d.received_unique, m->unique);
        assert_int_equal(d.duplicates, m->dup);
        assert_int_equal(d.reordered, m->reord);
        assert_int_equal(d.stale, m->stale);
        assert_int_equal(d.has_fin, i % 3 != 0);
        check_dev_invariant(&d);
        sum.expected += exp;
        sum.lost += lost;
        sum.received_unique += m->unique;
        sum.duplicates += m->dup;
        sum.reordered += m->reord;
        sum.stale += m->stale;
        free(m->got);
    }
    assert_int_equal(s.t.expected, sum.expected);
    assert_int_equal(s.t.lost, sum.lost);
    assert_int_equal(s.t.received_unique, sum.received_unique);
    assert_int_equal(s.t.duplicates, sum.duplicates);
    assert_int_equal(s.t.reordered, sum.reordered);
    assert_int_equal(s.t.stale, sum.stale);
    assert_int_equal(s.t.received, deliveries);
    assert_int_equal(s.t.devices, MDEVS);
    assert_int_equal(s.t.devices_with_fin, MDEVS - (MDEVS + 2) / 3);
    check_totals_invariant(&s);
    /* The stream must actually have exercised every classification. */
    for (int r = 0; r < 5; r++)
        assert_true(result_count[r] > 0);
    free(late);
    il_seq_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_late_zero_after_five),
        cmocka_unit_test(test_stale_beyond_window),
        cmocka_unit_test(test_window_reuse_after_partial_gap),
        cmocka_unit_test(test_fin_tail_loss),
        cmocka_unit_test(test_fin_then_late_tail),
        cmocka_unit_test(test_fin_only),
        cmocka_unit_test(test_huge_jump),
        cmocka_unit_test(test_many_devices),
        cmocka_unit_test(test_get_unknown),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_randomized_vs_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
