/*
 * measure.h - what a receiving end does with every message.
 *
 * The subscriber and the publisher's round-trip mode measure the same way:
 * decode the envelope (a malformed message is counted, never fatal), account
 * its sequence number, and record latency from the intended send time
 * (coordinated-omission free), from the actual send time (service latency),
 * the send lag, and each hop's share when transformers stamped it.  Every
 * distribution is recorded into a per-interval histogram (for the live
 * progress line and per-second results) that is merged exactly into the run's
 * total at each roll; percentiles always come from those merged histograms.
 *
 * End markers: each publisher ends every device's stream with a fin marker
 * carrying the device's message count and the publisher's device count, so
 * the tail loss is known and the receiver knows when every publisher it has
 * seen is done.
 *
 * Memory: il_meas_new allocates the whole state (histograms are fixed-size);
 * il_meas_free releases it.  il_meas_message never allocates except when a
 * device is seen for the first time.
 */
#ifndef IL_MEASURE_H
#define IL_MEASURE_H

#include "envelope.h"
#include "histogram.h"
#include "seqtrack.h"

#include <stdint.h>
#include <stdio.h>

#define IL_MEAS_SEGMENTS 4 /* per-hop segments tracked (publisher->hop1, ...) */
#define IL_MEAS_PUBS 256   /* publishers whose end markers are followed */

typedef struct il_meas_pub {
    uint32_t pub;
    uint32_t devices; /* announced by its fin markers */
    uint64_t fins;    /* distinct devices that sent a fin */
} il_meas_pub;

typedef struct il_meas_dist {
    il_hist cur;   /* this interval */
    il_hist total; /* the run so far, excluding cur */
} il_meas_dist;

typedef struct il_meas {
    il_seq seq;
    il_meas_dist lat;   /* t_recv - t_intended */
    il_meas_dist svc;   /* t_recv - t_sent */
    il_meas_dist lag;   /* t_sent - t_intended */
    il_meas_dist seg[IL_MEAS_SEGMENTS];
    uint32_t max_hops;  /* most hop stamps seen on one message */
    uint64_t malformed;
    uint64_t untracked; /* old-format messages: latency only, no sequence */
    uint64_t fins;
    uint64_t too_many_pubs; /* fin markers of publishers beyond IL_MEAS_PUBS */
    uint64_t received_cur;  /* arrivals this interval */
    uint64_t malformed_cur;
    il_meas_pub pubs[IL_MEAS_PUBS];
    int npubs;
    int64_t first_us, last_us; /* first and last arrival */
    int64_t all_ended_us;      /* when every publisher seen had ended, or 0 */
} il_meas;

/* Allocate an empty state.  NULL when out of memory. */
il_meas *il_meas_new(void);
void il_meas_free(il_meas *m);

/* Account one received message.  t_recv_us is its receive time. */
void il_meas_message(il_meas *m, const void *data, size_t len, int64_t t_recv_us);

/* The same for a caller that decoded the message itself: e is its
 * envelope, or NULL when it did not decode (counted as malformed). */
void il_meas_envelope(il_meas *m, const il_env *e, int64_t t_recv_us);

/* Close the interval: merge every cur into its total and clear cur. */
void il_meas_roll(il_meas *m);

/* 1 when at least one publisher was seen and every publisher seen has sent
 * the fin marker of each of its devices. */
int il_meas_all_ended(const il_meas *m);

/* Merged view of a distribution (total + cur) into out. */
void il_meas_total(const il_meas_dist *d, il_hist *out);

/* One progress line for the current interval (call before il_meas_roll). */
void il_meas_progress(il_meas *m, FILE *f, const char *who, double elapsed_s,
                      double interval_s);

/* Final report sections.  `scratch` must hold one il_hist. */
void il_meas_report_text(il_meas *m, FILE *f, il_hist *scratch);
/* JSON members (no braces), starting with a comma-less first member. */
void il_meas_report_json(il_meas *m, FILE *f, il_hist *scratch);

#endif
