/*
 * seqtrack.h - per-device sequence tracking and loss accounting.
 *
 * Every device numbers its messages 0, 1, 2, ...  From the numbers that
 * arrive the subscriber derives, per device and in total, what was received,
 * what is missing (a gap still open), what came twice and what came out of
 * order.  A gap that is later filled counts as reordered, not lost.  At the
 * end every device satisfies
 *
 *     expected = received_unique + lost
 *
 * where expected is the number the publisher announced in its end marker
 * (fin) or, lacking one or if larger, the highest sequence seen + 1.
 * Messages after the last one received are only known to be lost once the
 * fin marker (or, later, the publisher's final counts) says how many there
 * were; devices without one are reported in `devices_without_fin`.
 *
 * Devices are keyed by (publisher id, device index).  A sliding window of
 * IL_SEQ_WINDOW sequence numbers below the highest one seen remembers which
 * arrived, to tell a duplicate from a late arrival; an arrival older than the
 * window cannot be classified and is counted as `stale` (it changes neither
 * received_unique nor lost).
 *
 * Memory: the tracker owns its device table; il_seq_free releases it.
 * Recording never allocates except when a device is seen for the first time.
 */
#ifndef IL_SEQTRACK_H
#define IL_SEQTRACK_H

#include <stddef.h>
#include <stdint.h>

#define IL_SEQ_WINDOW 1024       /* sequence numbers remembered per device */
#define IL_SEQ_MAX_DEVICES 4000000 /* hard cap on tracked devices (memory) */

#define IL_SEQ_ENOMEM -1  /* device table could not grow */
#define IL_SEQ_ELIMIT -2  /* IL_SEQ_MAX_DEVICES reached */

/* What one arrival turned out to be. */
typedef enum {
    IL_SEQ_NEW = 0,       /* in order (seq == highest + 1, or first 0) */
    IL_SEQ_GAP = 1,       /* ahead of highest + 1 (or first, > 0): a gap */
    IL_SEQ_LATE = 2,      /* filled an open gap (counted as reordered) */
    IL_SEQ_DUPLICATE = 3, /* already received */
    IL_SEQ_STALE = 4      /* older than the window, cannot classify */
} il_seq_result;

typedef struct il_seq_totals {
    uint64_t received;        /* every arrival, duplicates included */
    uint64_t received_unique; /* distinct sequence numbers received */
    uint64_t lost;            /* open gaps now (incl. tail known from fin) */
    uint64_t duplicates;
    uint64_t reordered;       /* arrivals that filled a gap */
    uint64_t stale;
    uint64_t expected;        /* sum over devices of expected (see above) */
    uint64_t devices;
    uint64_t devices_with_fin;
} il_seq_totals;

typedef struct il_seq_dev il_seq_dev; /* opaque per-device state */

typedef struct il_seq {
    il_seq_dev *devs; /* open-addressed table keyed by (pub, dev) */
    size_t cap;       /* slots, power of two */
    size_t used;
    il_seq_totals t;  /* running totals, always up to date */
} il_seq;

/* Initialize an empty tracker.  Returns 0 or IL_SEQ_ENOMEM. */
int il_seq_init(il_seq *s);
/* Release the device table.  The tracker may be re-initialized after. */
void il_seq_free(il_seq *s);

/* Account one arrival.  Returns an il_seq_result (>= 0), or IL_SEQ_ENOMEM /
 * IL_SEQ_ELIMIT when a new device cannot be tracked (the arrival is then not
 * counted anywhere; the caller counts it as malformed). */
int il_seq_record(il_seq *s, uint32_t pub, uint32_t dev, uint64_t seq);

/* Account a device's end marker: `count` messages were scheduled for it.
 * Gaps up to count-1 become lost (including the tail after the last one
 * received).  A repeated fin is ignored.  Returns 0 or an error as above. */
int il_seq_fin(il_seq *s, uint32_t pub, uint32_t dev, uint64_t count);

/* Per-device view, for reports and tests. */
typedef struct il_seq_dev_info {
    uint32_t pub, dev;
    uint64_t received_unique, lost, duplicates, reordered, stale, expected;
    int has_fin;
} il_seq_dev_info;

/* Look up one device; returns 0 and fills *out, or -1 if never seen. */
int il_seq_get(const il_seq *s, uint32_t pub, uint32_t dev,
               il_seq_dev_info *out);

/* Call fn for every device (table order). */
void il_seq_foreach(const il_seq *s,
                    void (*fn)(const il_seq_dev_info *d, void *ud), void *ud);

#endif
