/*
 * seqtrack.c - per-device sequence tracking and loss accounting.
 *
 * A latency test is only honest if it also says how many messages never
 * arrived, arrived twice or arrived out of order; a fast broker that drops
 * messages must not look good.  This module turns the stream of (publisher,
 * device, sequence number) triples seen by a subscriber into exact per-device
 * and total counts of received, lost, duplicated, reordered and stale
 * messages, cheaply enough to run on every arrival.
 *
 * Devices live in an open-addressed hash table with linear probing, because
 * the common case is a lookup of a device that already exists and linear
 * probing keeps that to one or two adjacent cache lines with no pointer
 * chasing.  Each device remembers the highest sequence number seen and a ring
 * bitmap of the IL_SEQ_WINDOW numbers ending at it.  Sequence numbers come
 * from the network and cannot be trusted, so every gap is counted by
 * subtraction and the bitmap is cleared at most once per advance; nothing
 * ever loops once per missing sequence number.  All arithmetic on counts is
 * modulo 2^64, so even absurd sequence numbers keep the invariant
 * expected == received_unique + lost (modulo 2^64).
 */
#include "seqtrack.h"

#include <stdlib.h>
#include <string.h>

#define WIN_WORDS (IL_SEQ_WINDOW / 64)
#define INITIAL_CAP 64

_Static_assert(IL_SEQ_WINDOW >= 64 &&
                   (IL_SEQ_WINDOW & (IL_SEQ_WINDOW - 1)) == 0,
               "the ring bitmap needs a power-of-two window of whole words");

enum {
    F_USED = 1, /* slot holds a device */
    F_ANY = 2,  /* highest is meaningful (a message or a fin was seen) */
    F_FIN = 4   /* the end marker was accounted */
};

/*
 * The key, flags and counters fill the first 64 bytes so that the hot path
 * touches that line plus one word of the bitmap.  `highest` is "virtual": a
 * fin raises it to count-1 as if the tail had opened a gap, which makes tail
 * loss and late tail arrivals follow exactly the same rules as ordinary gaps.
 */
struct il_seq_dev {
    uint64_t key; /* pub << 32 | dev */
    uint32_t flags;
    uint64_t highest;
    uint64_t received_unique, lost, duplicates, reordered, stale;
    uint64_t win[WIN_WORDS]; /* bit (seq % IL_SEQ_WINDOW) set = received */
};

static inline uint64_t make_key(uint32_t pub, uint32_t dev)
{
    return (uint64_t)pub << 32 | dev;
}

/* Publisher and device ids are small and dense, so the key must be mixed
 * thoroughly before masking or neighbouring devices would pile up in runs.
 * This is the well-known SplitMix64 finalizer: every input bit affects every
 * output bit, and it costs two multiplications. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Returns the slot holding key, or the empty slot where it belongs.  The load
 * factor never exceeds 70%, so an empty slot always ends the probe. */
static il_seq_dev *slot_for(il_seq_dev *devs, size_t cap, uint64_t key)
{
    size_t mask = cap - 1, i = (size_t)mix(key) & mask;
    while ((devs[i].flags & F_USED) && devs[i].key != key)
        i = (i + 1) & mask;
    return &devs[i];
}

static int grow(il_seq *s)
{
    size_t ncap = s->cap * 2;
    if (ncap < s->cap || ncap > SIZE_MAX / sizeof(il_seq_dev))
        return IL_SEQ_ENOMEM;
    il_seq_dev *nd = calloc(ncap, sizeof *nd);
    if (!nd)
        return IL_SEQ_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->devs[i].flags & F_USED)
            *slot_for(nd, ncap, s->devs[i].key) = s->devs[i];
    free(s->devs);
    s->devs = nd;
    s->cap = ncap;
    return 0;
}

/* Finds a device, creating it (zeroed: no messages, empty window) when it is
 * new.  This is the only place that may allocate. */
static il_seq_dev *get_dev(il_seq *s, uint32_t pub, uint32_t dev, int *err)
{
    uint64_t key = make_key(pub, dev);
    il_seq_dev *d = slot_for(s->devs, s->cap, key);
    if (d->flags & F_USED)
        return d;
    if (s->used >= IL_SEQ_MAX_DEVICES) {
        *err = IL_SEQ_ELIMIT;
        return NULL;
    }
    if ((s->used + 1) * 10 > s->cap * 7) {
        if ((*err = grow(s)) != 0)
            return NULL;
        d = slot_for(s->devs, s->cap, key);
    }
    d->key = key;
    d->flags = F_USED;
    s->used++;
    s->t.devices++;
    return d;
}

/* Marks n consecutive sequence numbers starting at `from` as not received,
 * a word at a time.  Anything of a window or more simply empties the ring,
 * which is what bounds the cost of an arbitrarily large jump. */
static void win_clear(uint64_t *w, uint64_t from, uint64_t n)
{
    if (n >= IL_SEQ_WINDOW) {
        memset(w, 0, WIN_WORDS * sizeof *w);
        return;
    }
    unsigned i = (unsigned)(from % IL_SEQ_WINDOW);
    while (n > 0) {
        unsigned bit = i & 63, take = 64 - bit;
        if (take > n)
            take = (unsigned)n;
        uint64_t mask = take == 64 ? ~0ULL : ((1ULL << take) - 1) << bit;
        w[i >> 6] &= ~mask;
        n -= take;
        i = (i + take) % IL_SEQ_WINDOW;
    }
}

static inline uint64_t *win_word(il_seq_dev *d, uint64_t seq, uint64_t *bit)
{
    *bit = 1ULL << (seq & 63);
    return &d->win[(seq % IL_SEQ_WINDOW) >> 6];
}

/* Moves the (virtual) highest up to `top`: every number in between, and
 * `top` itself when `incl` is set (a fin announcing a tail), becomes an open
 * gap, counted as lost and added to expected.  Returns the gap. */
static uint64_t advance(il_seq *s, il_seq_dev *d, uint64_t top, int incl)
{
    uint64_t gap;
    if (d->flags & F_ANY) {
        gap = top - d->highest - 1 + (uint64_t)incl;
        s->t.expected += top - d->highest;
        win_clear(d->win, d->highest + 1, gap);
    } else {
        /* Numbering starts at 0, so a missing beginning is loss too.  A fresh
         * device's window is already empty. */
        gap = top + (uint64_t)incl;
        s->t.expected += top + 1;
        d->flags |= F_ANY;
    }
    d->highest = top;
    d->lost += gap;
    s->t.lost += gap;
    return gap;
}

int il_seq_init(il_seq *s)
{
    memset(s, 0, sizeof *s);
    s->devs = calloc(INITIAL_CAP, sizeof *s->devs);
    if (!s->devs)
        return IL_SEQ_ENOMEM;
    s->cap = INITIAL_CAP;
    return 0;
}

void il_seq_free(il_seq *s)
{
    free(s->devs);
    memset(s, 0, sizeof *s);
}

int il_seq_record(il_seq *s, uint32_t pub, uint32_t dev, uint64_t seq)
{
    int err = 0;
    il_seq_dev *d = get_dev(s, pub, dev, &err);
    if (!d)
        return err;
    s->t.received++;

    uint64_t bit, *w;
    if (!(d->flags & F_ANY) || seq > d->highest) {
        uint64_t gap = advance(s, d, seq, 0);
        w = win_word(d, seq, &bit);
        *w |= bit;
        d->received_unique++;
        s->t.received_unique++;
        return gap ? IL_SEQ_GAP : IL_SEQ_NEW;
    }
    if (d->highest - seq >= IL_SEQ_WINDOW) {
        /* Whether this number was seen before is forgotten, so it can be
         * neither a fill nor a duplicate; counting it apart keeps the loss
         * figures exact for everything that could be classified. */
        d->stale++;
        s->t.stale++;
        return IL_SEQ_STALE;
    }
    w = win_word(d, seq, &bit);
    if (*w & bit) {
        d->duplicates++;
        s->t.duplicates++;
        return IL_SEQ_DUPLICATE;
    }
    /* A hole inside the window is always an open gap (counted in lost when
     * it was opened), so filling it moves one number from lost to received. */
    *w |= bit;
    d->received_unique++;
    s->t.received_unique++;
    d->lost--;
    s->t.lost--;
    d->reordered++;
    s->t.reordered++;
    return IL_SEQ_LATE;
}

int il_seq_fin(il_seq *s, uint32_t pub, uint32_t dev, uint64_t count)
{
    int err = 0;
    il_seq_dev *d = get_dev(s, pub, dev, &err);
    if (!d)
        return err;
    if (d->flags & F_FIN)
        return 0;
    d->flags |= F_FIN;
    s->t.devices_with_fin++;
    /* The tail count-1 > highest is treated as a gap being opened, so a tail
     * message arriving after the fin fills it like any late arrival.  Written
     * as count-1 > highest so that highest == UINT64_MAX cannot wrap. */
    if (count > 0 && (!(d->flags & F_ANY) || count - 1 > d->highest))
        advance(s, d, count - 1, 1);
    return 0;
}

static void fill_info(const il_seq_dev *d, il_seq_dev_info *o)
{
    o->pub = (uint32_t)(d->key >> 32);
    o->dev = (uint32_t)d->key;
    o->received_unique = d->received_unique;
    o->lost = d->lost;
    o->duplicates = d->duplicates;
    o->reordered = d->reordered;
    o->stale = d->stale;
    o->expected = (d->flags & F_ANY) ? d->highest + 1 : 0;
    o->has_fin = (d->flags & F_FIN) != 0;
}

int il_seq_get(const il_seq *s, uint32_t pub, uint32_t dev,
               il_seq_dev_info *out)
{
    if (!s->devs)
        return -1;
    const il_seq_dev *d = slot_for(s->devs, s->cap, make_key(pub, dev));
    if (!(d->flags & F_USED))
        return -1;
    fill_info(d, out);
    return 0;
}

void il_seq_foreach(const il_seq *s,
                    void (*fn)(const il_seq_dev_info *d, void *ud), void *ud)
{
    il_seq_dev_info info;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->devs[i].flags & F_USED) {
            fill_info(&s->devs[i], &info);
            fn(&info, ud);
        }
    }
}
